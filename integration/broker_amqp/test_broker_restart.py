"""A RabbitMQ restart in the middle of a job: the job completes, nothing is lost or run twice.

``rabbitmqctl stop_app``/``start_app`` closes every connection; durable queues keep their
persistent messages. Consumers reconnect with back-off (every old delivery tag void), publishes
that fail while the broker is down stay in the outbox, and every runner's sweep republishes them.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

import pytest

from conveyor.broker_amqp import AmqpBroker
from conveyor.core.model import JobState, TaskState
from conveyor.core.usecases import Policy
from integration.broker_amqp._runners import (
    FanOut,
    Harness,
    Parent,
    Quick,
    fast_settings,
    journal,
)
from integration.broker_amqp.conftest import RabbitCtl


def test_a_job_survives_a_broker_restart_without_losing_or_repeating_tasks(
    make_broker: Callable[..., AmqpBroker],
    rabbitmqctl: RabbitCtl,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given: two runners working through 30 parents of 0.3 s, each publishing one child when it
    # completes (so completions during the outage have messages to publish)
    caplog.set_level(logging.WARNING)
    log = journal()
    broker = make_broker(reconnect_max_delay=1.0, connect_timeout=2.0)
    harness = Harness(broker, Policy(publish_lease=2.0))
    parents = 30
    try:
        for name in ("r1", "r2"):
            harness.start_runner(
                [FanOut, Parent, Quick], fast_settings(sweep_interval=1.0), name=name
            )
        job_id, _ = harness.submit(FanOut(parents, 0.3))
        deadline = time.monotonic() + 30
        while sum(label.startswith("leaf-") for label in log.labels()) < 6:
            assert time.monotonic() < deadline, "the fan-out did not start"
            time.sleep(0.05)

        # When: RabbitMQ stops in the middle of the job, and comes back a few seconds later
        rabbitmqctl("stop_app")
        try:
            time.sleep(2.0)  # runners finish what they hold; their publishes fail meanwhile
        finally:
            rabbitmqctl("start_app")
            rabbitmqctl("await_startup")

        # Then: the job completes
        assert harness.wait_job(job_id, 120) is JobState.COMPLETED
    finally:
        harness.stop()

    # every task ran exactly once (side effects) and was recorded exactly once
    counts = collections.Counter(log.labels())
    assert {label: n for label, n in counts.items() if n != 1} == {}
    assert sum(label.startswith("leaf-") for label in counts) == parents
    assert sum(label.startswith("child-of-") for label in counts) == parents
    tasks = list(harness.reads.iter_tasks(job_id))
    assert len(tasks) == 1 + 2 * parents
    assert all(task.state is TaskState.COMPUTED for task in tasks)
    for task in tasks:
        outcomes = [a.outcome for a in harness.reads.task_attempts(task.id)]
        assert outcomes == ["computed"], (task.id, outcomes)
    # the restart was really seen: consumers reconnected, and completions during the outage
    # left their messages to the outbox sweep
    assert broker.stats.connection_losses >= 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("the outbox sweep will retry" in m for m in messages), messages
