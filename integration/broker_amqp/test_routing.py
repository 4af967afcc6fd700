"""Routing end to end: any task name routes exactly, versions follow the compatibility rule,
and a task nobody can run yet waits in its own durable queue."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conveyor.broker_amqp import AmqpBroker
from conveyor.core.context import ExecutionContext
from conveyor.core.task import Task
from integration.broker_amqp import _runners
from integration.broker_amqp._runners import Harness, fast_settings, journal, wait_until
from integration.broker_amqp.conftest import queue_depth

NAMES = ["a.b.c", "*", "#", "a.*.#", "名前-ü-🚀", "x" * 256, "é" * 256, "with space"]


def task_class(name: str, version: str) -> type[Task]:
    """A task class with this identifier that journals ``label`` when it runs."""

    def execute(self: Any, context: ExecutionContext) -> None:
        _runners.JOURNAL.start(self.label)

    return type(  # type: ignore[return-value]
        f"Routed_{abs(hash((name, version)))}",
        (Task,),
        {
            "__annotations__": {"label": str},
            "__module__": __name__,
            "identifier": staticmethod(lambda: (name, version)),
            "execute": execute,
        },
    )


@pytest.fixture
def harness(make_broker: Callable[..., AmqpBroker]) -> Iterator[Harness]:
    h = Harness(make_broker())
    yield h
    h.stop()


def test_names_with_dots_wildcards_unicode_and_256_characters_route_exactly(
    harness: Harness, pika_channel: Any
) -> None:
    log = journal()
    mine = {name: task_class(name, "v1.0") for name in NAMES}
    lookalikes = {name: task_class((name + ".x")[-256:], "v1.0") for name in NAMES}
    harness.start_runner(list(mine.values()), fast_settings())

    for i, name in enumerate(NAMES):
        harness.submit(lookalikes[name](f"lookalike-{i}"), mine[name](f"mine-{i}"))

    assert wait_until(lambda: len(log.labels()) == len(NAMES), 15)
    time.sleep(1.0)
    assert sorted(log.labels()) == sorted(f"mine-{i}" for i in range(len(NAMES)))
    for name in NAMES:
        spec = harness.broker.topology.queue("default", (name + ".x")[-256:], 1, 0)
        assert queue_depth(pika_channel, spec.name) == 1, name  # waits for its own runner
        assert len(spec.name.encode()) <= 255 and len(spec.routing_key.encode()) <= 255


def test_a_runner_at_v1_3_takes_v1_0_to_v1_3_and_later_versions_wait_in_their_queues(
    harness: Harness, pika_channel: Any
) -> None:
    log = journal()
    versions = ["v1.0", "v1.1", "v1.2", "v1.3", "v1.4", "v2.0"]
    classes = {v: task_class("it.Versioned", v) for v in versions}
    harness.start_runner([classes["v1.3"]], fast_settings())

    harness.submit(*(classes[v](v) for v in versions))

    assert wait_until(lambda: len(log.labels()) == 4, 15)
    time.sleep(1.0)
    assert sorted(log.labels()) == ["v1.0", "v1.1", "v1.2", "v1.3"]
    depths = harness.broker.queue_depths(
        "default", [c._conveyor_identifier for c in classes.values()]
    )  # type: ignore[attr-defined]
    assert {str(ident): n for ident, n in depths.items()} == {
        "it.Versioned@v1.0": 0,
        "it.Versioned@v1.1": 0,
        "it.Versioned@v1.2": 0,
        "it.Versioned@v1.3": 0,
        "it.Versioned@v1.4": 1,
        "it.Versioned@v2.0": 1,
    }
    v14 = harness.broker.topology.queue("default", "it.Versioned", 1, 4).name
    assert queue_depth(pika_channel, v14) == 1

    # a runner for v1.4 shows up later and takes the task that waited for it
    harness.start_runner([classes["v1.4"]], fast_settings())
    assert wait_until(lambda: "v1.4" in log.labels(), 10)
    time.sleep(0.5)
    assert "v2.0" not in log.labels()
    v20 = harness.broker.topology.queue("default", "it.Versioned", 2, 0).name
    assert queue_depth(pika_channel, v20) == 1
