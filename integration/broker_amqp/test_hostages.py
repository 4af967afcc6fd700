"""No hostage messages: a busy runner gives back what arrives for its other queues at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conveyor.broker_amqp import AmqpBroker
from integration.broker_amqp._runners import (
    Harness,
    Quick,
    Sleep,
    fast_settings,
    journal,
    wait_until,
)
from integration.broker_amqp.conftest import queue_depth

#: No safety poll from the store and no sweeps during the test: only the broker dispatches.
BROKER_ONLY = {"sweep_interval": 120.0}


@pytest.fixture
def harness(make_broker: Callable[..., AmqpBroker]) -> Iterator[Harness]:
    h = Harness(make_broker())
    yield h
    h.stop()


def test_a_task_submitted_while_one_runner_is_busy_starts_on_the_idle_runner_meanwhile(
    harness: Harness,
) -> None:
    # Given: R1 and R2, both registered for A (Sleep) and B (Quick); R1 busy on an 8 s task A
    log = journal()
    r1 = harness.start_runner([Sleep, Quick], fast_settings(**BROKER_ONLY), name="r1")
    harness.submit(Sleep("A", 8.0))
    assert wait_until(lambda: log.started("A") is not None, 10)
    r2 = harness.start_runner([Sleep, Quick], fast_settings(**BROKER_ONLY), name="r2")
    time.sleep(0.5)  # R2 consumes its queues

    # When: B tasks are submitted one after the other while R1 is busy
    for i in range(4):
        _, (task_id,) = harness.submit(Quick(f"B{i}"))
        # Then: each starts on R2 while R1 is still busy (the broker round-robins B's consumers,
        # so about half of them first reach the busy R1, which must give them back at once)
        assert wait_until(lambda i=i: log.started(f"B{i}") is not None, 10), f"B{i} never ran"
        started = log.started(f"B{i}")
        a = log.started("A")
        assert started is not None and a is not None
        assert a.ended is None or started.started < a.ended, f"B{i} waited for A"
        assert wait_until(lambda t=task_id: harness.reads.get_task(t).runner_id == r2.id, 10)
    a = log.started("A")
    assert a is not None and a.ended is None, "A was still running on R1 meanwhile"
    assert harness.reads.get_task(task_id).runner_id == r2.id
    assert r1.id != r2.id
    # RabbitMQ offers B0 to R1 first (its B consumer is the older one): the give-back path ran
    assert harness.broker.stats.given_back >= 1


def test_a_busy_runner_puts_a_message_for_its_other_queue_back_at_once(
    harness: Harness, pika_channel: Any
) -> None:
    # Given: one runner, busy on A, also consuming B's queue
    log = journal()
    harness.start_runner([Sleep, Quick], fast_settings(**BROKER_ONLY))
    harness.submit(Sleep("A", 4.0))
    assert wait_until(lambda: log.started("A") is not None, 10)
    b_queue = harness.broker.topology.queue("default", "it.Quick", 1, 0).name

    # When: B is published
    harness.submit(Quick("B"))

    # Then: B is back in its queue (ready for any other runner) within a second, not held
    assert wait_until(lambda: queue_depth(pika_channel, b_queue) == 1, 1.0, interval=0.05)
    assert harness.broker.stats.given_back >= 1
    assert log.started("B") is None
    # and the runner takes it itself once idle
    assert wait_until(lambda: log.started("B") is not None, 10)
    a, b = log.started("A"), log.started("B")
    assert a is not None and b is not None and a.ended is not None
    assert b.started >= a.ended


def test_a_runner_busy_on_a_task_it_claimed_from_the_store_holds_no_message(
    harness: Harness, pika_channel: Any
) -> None:
    # Given: A in the store without its message (lost), so the runner's safety net claims it
    # from SQL, and the runner busy on it
    log = journal()
    harness.submit(Sleep("A", 4.0))
    a_queue = harness.broker.topology.queue("default", "it.Sleep", 1, 0).name
    pika_channel.queue_purge(a_queue)
    harness.start_runner([Sleep, Quick], fast_settings(**BROKER_ONLY))
    assert wait_until(lambda: log.started("A") is not None, 10)
    b_queue = harness.broker.topology.queue("default", "it.Quick", 1, 0).name

    # When: B is published while A runs
    harness.submit(Quick("B"))

    # Then: B stays ready in its queue for any idle runner instead of waiting in this busy
    # runner's prefetch until A ends
    assert wait_until(lambda: queue_depth(pika_channel, b_queue) == 1, 2.0, interval=0.05)
    a = log.started("A")
    assert a is not None and a.ended is None, "A still runs"
    assert log.started("B") is None
    # and the runner takes B through the broker once it is idle again
    assert wait_until(lambda: log.started("B") is not None, 15)
    b = log.started("B")
    assert b is not None and a.ended is not None and b.started >= a.ended
