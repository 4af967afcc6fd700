"""Submissions published by the outbox relay: the submitter returns after its commit."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from conveyor.core.errors import BrokerUnavailableError
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import DispatchMessage, NewTask
from conveyor.core.reads import ReadService
from conveyor.core.relay import OutboxRelay
from conveyor.core.service import Orchestrator
from conveyor.memory.broker import InMemoryBroker
from conveyor.memory.store import InMemoryStore


def reads_of(service: Orchestrator) -> ReadService:
    """The read service over ``service``'s store (reads are not the orchestrator's)."""
    return ReadService(service.store)


LEAF = TaskIdentifier("Leaf", "v1.0")


def spec() -> NewTask:
    return NewTask(TaskId(uuid7()), "default", LEAF, b'"x"', "Leaf")


class GatedBroker(InMemoryBroker):
    """Publishes only while the gate is open (a slow or unreachable broker)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.down = False
        self.batches: list[int] = []

    def publish(self, messages: Sequence[DispatchMessage]) -> None:
        self.gate.wait(10)
        if self.down:
            raise BrokerUnavailableError("broker down")
        self.batches.append(len(messages))
        super().publish(messages)


def test_submit_returns_before_the_publish_and_the_relay_batches_what_accumulated() -> None:
    broker = GatedBroker()
    service = Orchestrator(InMemoryStore(), broker, relay=True)
    broker.gate.clear()  # the broker is slow: the first publish waits
    first = spec()
    service.submit_job("a", [first])  # returns although nothing could be published
    specs = [spec() for _ in range(50)]
    for s in specs:
        service.submit_job("b", [s])
    assert broker.depth() == 0
    broker.gate.set()
    assert service.relay is not None and service.relay.flush(10)
    assert broker.depth() == 51
    assert len(broker.batches) <= 3  # 51 submissions, a handful of confirmed batches
    for s in [first, *specs]:
        task = reads_of(service).get_task(s.id)
        assert task is not None and not task.publish_pending and task.published_at is not None
    service.close()


def test_close_flushes_the_relay() -> None:
    broker = GatedBroker()
    service = Orchestrator(InMemoryStore(), broker, relay=True)
    specs = [spec() for _ in range(20)]
    for s in specs:
        service.submit_job("c", [s])
    service.close()
    assert broker.published == 20


def test_a_publish_that_fails_is_left_to_the_outbox_sweep() -> None:
    broker = GatedBroker()
    store = InMemoryStore()
    service = Orchestrator(store, broker, relay=True)
    broker.down = True
    root = spec()
    service.submit_job("d", [root])
    assert service.relay is not None and service.relay.flush(10)
    task = reads_of(service).get_task(root.id)
    assert task is not None and task.publish_pending  # still in the outbox
    broker.down = False
    other = spec()
    service.submit_job("e", [other])  # the relay goes on after a failure
    assert service.relay.flush(10)
    assert broker.depth() == 1
    service.close()


def test_without_a_broker_to_publish_to_there_is_no_relay() -> None:
    from conveyor.core.polling import PollingDispatcher

    service = Orchestrator(InMemoryStore(), PollingDispatcher(), relay=True)
    assert service.relay is None
    service.submit_job("f", [spec()])


def test_a_closed_relay_refuses_new_messages() -> None:
    relay = OutboxRelay(lambda batch: len(batch))
    relay.close()
    try:
        relay.put([DispatchMessage(TaskId(uuid7()), uuid7(), "default", LEAF)])  # type: ignore[arg-type]
    except RuntimeError as exc:
        assert "closed" in str(exc)
    else:
        raise AssertionError("put after close must fail")
