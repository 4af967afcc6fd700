"""Poison messages (published raw with pika) never crash a runner nor loop.

Each one ends dead-lettered to ``{namespace}.dead`` (no usable task id) or dropped by the runner
(unknown task, identifier the runner does not have), with exactly one clear log line.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pytest

from conveyor.broker_amqp import AmqpBroker
from conveyor.core.model import JobState
from integration.broker_amqp._runners import Harness, Quick, fast_settings, journal, wait_until
from integration.broker_amqp.conftest import queue_depth


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_poison_messages_are_dead_lettered_or_dropped_with_one_log_line_each(
    make_broker: Callable[..., AmqpBroker],
    pika_channel: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor")  # what `conveyor worker -v` shows
    log = journal()
    broker = make_broker()
    harness = Harness(broker)
    spec = broker.topology.queue("default", "it.Quick", 1, 0)
    dead = broker.topology.dead_letter_queue
    unknown, mismatched = uuid.uuid4(), uuid.uuid4()
    good_headers = {"x-conveyor-name": "it.Quick", "x-conveyor-version": "v1.0"}
    poison: list[tuple[bytes, dict[str, Any] | None]] = [
        (b"\xff\x00 not json", None),
        (body(job_id=str(uuid.uuid4())), good_headers),
        (body(task_id="not-a-uuid"), good_headers),
        (
            body(task_id=str(uuid.uuid4())),
            {"x-conveyor-name": "it.Quick", "x-conveyor-version": "1"},
        ),
        (body(task_id=str(unknown)), good_headers),
        (body(task_id=str(mismatched)), {**good_headers, "x-conveyor-name": "it.Other"}),
        (body(task_id=str(uuid.uuid4()), pad="x" * 100_000), good_headers),
        (body(task_id=str(uuid.uuid4())), {**good_headers, "x-conveyor-name": b"\xff\xfeQuick"}),
    ]
    try:
        # Given: a runner consuming it.Quick@v1.0
        runner = harness.start_runner([Quick], fast_settings())
        assert wait_until(lambda: spec.name in broker.topology.declared_queues, 10)
        time.sleep(0.3)

        # When: poison is published straight to its queue's exchange and key
        for payload, headers in poison:
            pika_channel.basic_publish(
                spec.exchange,
                spec.routing_key,
                payload,
                pika.BasicProperties(headers=headers, delivery_mode=2),
            )

        # Then: six are dead-lettered, two dropped by the runner, none left in the queue
        assert wait_until(lambda: queue_depth(pika_channel, dead) == 6, 10)
        assert wait_until(lambda: queue_depth(pika_channel, spec.name) == 0, 10)
        time.sleep(1.0)  # nothing loops: no further deliveries or log lines appear

        # and the runner is alive and still runs real tasks
        job_id, _ = harness.submit(Quick("after"))
        assert harness.wait_job(job_id, 10) is JobState.COMPLETED
        assert log.labels() == ["after"]
        assert runner.thread.is_alive() and not runner.errors
    finally:
        harness.stop()

    messages = [r.getMessage() for r in caplog.records if r.name.startswith("conveyor")]
    dead_lettered = [m for m in messages if m.startswith("dead-lettered a message")]
    assert len(dead_lettered) == 6, messages
    for reason in (
        "not valid JSON",
        "no task_id",
        "is not a UUID",
        "identifier is invalid",
        "more than a dispatch message's",
        "header is not UTF-8 text",
    ):
        assert sum(reason in m for m in dead_lettered) == 1, (reason, dead_lettered)
    assert sum(str(unknown) in m and "no such task" in m for m in messages) == 1
    assert sum(str(unknown) in m for m in messages) == 1
    assert sum(str(mismatched) in m and "not registered" in m for m in messages) == 1
    assert sum(str(mismatched) in m for m in messages) == 1
    assert broker.stats.dead_lettered == 6

    # the dead letters keep their body and say why and where they came from
    _method, properties, first = pika_channel.basic_get(dead, auto_ack=True)
    assert first == b"\xff\x00 not json"
    assert "not valid JSON" in properties.headers["x-conveyor-dead-reason"]
    assert properties.headers["x-conveyor-dead-source"] == spec.name


def test_dead_letter_publishes_to_the_dead_queue_with_the_reason(
    make_broker: Callable[..., AmqpBroker], pika_channel: Any
) -> None:
    broker = make_broker()
    broker.dead_letter(b"payload", {"x-origin": "test"}, "operator said so")
    dead = broker.topology.dead_letter_queue
    _method, properties, payload = pika_channel.basic_get(dead, auto_ack=True)
    assert payload == b"payload"
    assert properties.headers["x-origin"] == "test"
    assert properties.headers["x-conveyor-dead-reason"] == "operator said so"
    assert properties.delivery_mode == 2
