"""Cluster isolation holds in the claim, whatever arrives on a queue (real RabbitMQ).

A message naming a task of cluster ``other``, published raw onto the ``default`` cluster's
queue with matching identifier headers, reaches a runner of ``default``: that runner must not
run it (one warning naming the task and both clusters), and the task stays QUEUED for a
runner of ``other``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pika
import pytest

from conveyor.broker_amqp import AmqpBroker
from conveyor.caches import NoCache
from conveyor.core.context import new_task_spec
from conveyor.core.model import TaskState
from conveyor.core.registry import Runner
from conveyor.core.runner import TaskRunner
from integration.broker_amqp._runners import Harness, Quick, fast_settings, journal, wait_until
from integration.broker_amqp.conftest import queue_depth


def test_a_message_for_another_clusters_task_on_this_queue_is_not_run(
    make_broker: Callable[..., AmqpBroker],
    pika_channel: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor")  # what `conveyor worker -v` shows
    log = journal()
    broker = make_broker()
    harness = Harness(broker)
    harness.service.create_cluster("other")
    default_queue = broker.topology.queue("default", "it.Quick", 1, 0)
    try:
        # Given: a runner of `default` consuming it.Quick@v1.0, and a task of `other`
        runner = harness.start_runner([Quick], fast_settings())
        assert wait_until(lambda: default_queue.name in broker.topology.declared_queues, 10)
        spec = new_task_spec(Quick("foreign"), cluster="other")
        job = harness.service.submit_job("elsewhere", [spec])

        # When: a message naming it is published raw onto the `default` queue
        body = json.dumps(
            {
                "task_id": str(spec.id),
                "job_id": str(job.id),
                "cluster": "default",
                "name": "it.Quick",
                "version": "v1.0",
            }
        ).encode()
        headers = {"x-conveyor-name": "it.Quick", "x-conveyor-version": "v1.0"}
        pika_channel.basic_publish(
            default_queue.exchange,
            default_queue.routing_key,
            body,
            pika.BasicProperties(headers=headers, delivery_mode=2),
        )

        # Then: the runner of `default` drops it with a warning and does not run it
        def dropped() -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if "drops the message" in r.getMessage() and str(spec.id) in r.getMessage()
            ]

        assert wait_until(lambda: len(dropped()) == 1, 15)
        assert wait_until(lambda: queue_depth(pika_channel, default_queue.name) == 0, 10)
        time.sleep(0.5)  # nothing loops: no second delivery, no execution
        (record,) = dropped()
        assert record.levelno == logging.WARNING
        assert "cluster 'other'" in record.getMessage()
        assert "runner's cluster 'default'" in record.getMessage()
        assert log.labels() == []
        task = harness.reads.get_task(spec.id)
        assert task is not None and task.state is TaskState.QUEUED and task.attempt == 0
        assert runner.thread.is_alive() and not runner.errors

        # and a runner of `other` still runs it, from its own queue
        other = TaskRunner(harness.service, "other", Runner([Quick]), NoCache(), fast_settings())
        other.run_all()
        assert log.labels() == ["foreign"]
        task = harness.reads.get_task(spec.id)
        assert task is not None and task.state is TaskState.COMPUTED and task.attempt == 1
        assert task.runner_id == other.id
    finally:
        harness.stop()
