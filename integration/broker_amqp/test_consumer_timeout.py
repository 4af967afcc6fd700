"""RabbitMQ 3.10's consumer_timeout: a task running longer than it runs and is recorded once.

The broker's timeout is lowered at runtime (``application:set_env``), and restored afterwards.
RabbitMQ reads it when a channel opens and checks it on the channel's tick (every
``channel_tick_interval``, 60 s by default): the fast tests also lower the tick to 1 s so the
timeout fires within a second of its value; the slow variant keeps the real one-minute tick.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest

from conveyor.broker_amqp import AmqpBroker
from conveyor.core.model import JobState, TaskState
from integration.broker_amqp._runners import Harness, Quick, Sleep, fast_settings, journal
from integration.broker_amqp.conftest import RabbitCtl


@pytest.fixture
def broker_settings(rabbitmqctl: RabbitCtl) -> Iterator[Callable[..., None]]:
    """Set ``rabbit`` application env values for this test; the originals are put back."""
    originals: dict[str, str] = {}

    def set_env(**values: int) -> None:
        for key, value in values.items():
            if key not in originals:
                current = rabbitmqctl.eval(f"application:get_env(rabbit, {key}).")
                match = re.fullmatch(r"\{ok,(\d+)\}", current)
                originals[key] = match.group(1) if match else "undefined"
            rabbitmqctl.eval(f"application:set_env(rabbit, {key}, {value}).")

    try:
        yield set_env
    finally:
        for key, original in originals.items():
            if original == "undefined":
                rabbitmqctl.eval(f"application:unset_env(rabbit, {key}).")
            else:
                rabbitmqctl.eval(f"application:set_env(rabbit, {key}, {original}).")


def run_one_long_task(harness: Harness, seconds: float, timeout: float) -> None:
    log = journal()
    harness.start_runner([Sleep], fast_settings(lease=10.0))
    job_id, (task_id,) = harness.submit(Sleep("long", seconds))
    assert harness.wait_job(job_id, timeout) is JobState.COMPLETED
    # executed once (side effect), recorded once (one attempt, COMPUTED)
    assert log.count("long") == 1
    assert harness.task_state(task_id) is TaskState.COMPUTED
    attempts = harness.reads.task_attempts(task_id)
    assert [a.outcome for a in attempts] == ["computed"]


def test_a_task_longer_than_the_consumer_timeout_completes_once_after_an_early_ack(
    make_broker: Callable[..., AmqpBroker], broker_settings: Callable[..., None]
) -> None:
    # Given: the broker times deliveries out after 3 s (checked every second), and the adapter
    # knows it: it acks early 2 s before, i.e. after 1 s
    broker_settings(consumer_timeout=3000, channel_tick_interval=1000)
    harness = Harness(make_broker(consumer_timeout=3.0, early_ack_margin=2.0))
    try:
        # When: a task runs for 8 s (past the timeout, over several broker ticks)
        run_one_long_task(harness, seconds=8.0, timeout=30)
    finally:
        harness.stop()
    # Then: the delivery was acked early and the channel was never closed by the broker
    assert harness.broker.stats.early_acks == 1
    assert harness.broker.stats.connection_losses == 0


def test_without_the_early_ack_the_broker_closes_the_channel_and_the_claim_absorbs_it(
    make_broker: Callable[..., AmqpBroker], broker_settings: Callable[..., None]
) -> None:
    """The control experiment: it proves the test setup really triggers the timeout, and that
    even then the task runs once (the redelivered message meets a live lease and is dropped)."""
    broker_settings(consumer_timeout=3000, channel_tick_interval=1000)
    harness = Harness(make_broker(consumer_timeout=1800.0, early_ack_margin=0.0))
    try:
        run_one_long_task(harness, seconds=8.0, timeout=30)
    finally:
        harness.stop()
    assert harness.broker.stats.early_acks == 0
    assert harness.broker.stats.connection_losses >= 1  # 406 PRECONDITION_FAILED: timed out


@pytest.mark.slow
def test_with_the_real_one_minute_tick_a_task_outliving_the_timeout_completes_once(
    make_broker: Callable[..., AmqpBroker], broker_settings: Callable[..., None]
) -> None:
    # consumer_timeout 5 s; RabbitMQ checks once a minute, so the task must outlive a tick
    broker_settings(consumer_timeout=5000)
    harness = Harness(make_broker(consumer_timeout=5.0, early_ack_margin=3.0))
    try:
        run_one_long_task(harness, seconds=75.0, timeout=120)
    finally:
        harness.stop()
    assert harness.broker.stats.early_acks == 1
    assert harness.broker.stats.connection_losses == 0


def test_a_timeout_shorter_than_the_default_margin_still_dispatches_every_task_once(
    make_broker: Callable[..., AmqpBroker], broker_settings: Callable[..., None]
) -> None:
    """``CONVEYOR_AMQP_CONSUMER_TIMEOUT`` of 60 s or less once made the margins 0: every delivery
    was given back at once (a livelock only the SQL safety net got through). Here the safety net
    is off, so only the broker can dispatch."""
    # Given: a 3 s broker timeout (ticks every second), the adapter told so, default margin 60 s
    broker_settings(consumer_timeout=3000, channel_tick_interval=1000)
    harness = Harness(make_broker(consumer_timeout=3.0))
    log = journal()
    harness.start_runner([Sleep, Quick], fast_settings(lease=10.0, sweep_interval=120.0))
    try:
        # When: short tasks, and one that outlives the timeout
        quick_job, _ = harness.submit(*(Quick(f"q{i}") for i in range(30)))
        # Then: all of them run, once each, through the broker
        assert harness.wait_job(quick_job, 60) is JobState.COMPLETED
        long_job, _ = harness.submit(Sleep("long", 5.0))
        assert harness.wait_job(long_job, 60) is JobState.COMPLETED
    finally:
        harness.stop()
    assert sorted(log.labels()) == sorted([f"q{i}" for i in range(30)] + ["long"])
    stats = harness.broker.stats
    assert stats.early_acks == 1  # the long one, acked early before the broker's 3 s
    assert stats.connection_losses == 0  # the broker never timed a delivery out
    # no give-back churn: the livelock gave back every delivery (thousands here); at most the
    # start-up safety poll, which may claim a task from SQL and hand back what was prefetched
    assert stats.given_back <= 3
