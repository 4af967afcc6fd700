"""The broker port's contract (``conveyor.core.ports.Broker``/``Consumer``/``Delivery``).

Subclass ``BrokerContract`` and provide two fixtures: ``broker``, a fresh broker isolated from
other tests (its own namespace or vhost), and ``second_broker``, another connection to the same
namespace (the same object is fine for an in-process broker). The in-memory broker runs it in
``tests/``, the AMQP adapter against the real RabbitMQ in ``integration/``, unchanged.
"""

from __future__ import annotations

import time

import pytest

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import DispatchMessage, RegisteredIdentifier
from conveyor.core.ports import Broker

#: How long a test waits for a message that should arrive.
WAIT = 5.0


def message(name: str = "Leaf", version: str = "v1.0", cluster: str = "default") -> DispatchMessage:
    return DispatchMessage(TaskId(uuid7()), JobId(uuid7()), cluster, TaskIdentifier(name, version))


def receive_all(consumer: object, expected: int, timeout: float = WAIT) -> list[DispatchMessage]:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        delivery = consumer.receive(0.2)  # type: ignore[attr-defined]
        if delivery is not None:
            got.append(
                DispatchMessage(delivery.task_id, JobId(uuid7()), "default", delivery.identifier)
            )
            delivery.ack()
    return got


class BrokerContract:
    @pytest.fixture
    def broker(self) -> Broker:
        raise NotImplementedError

    @pytest.fixture
    def second_broker(self, broker: Broker) -> Broker:
        raise NotImplementedError

    def test_requires_publish(self, broker: Broker) -> None:
        assert broker.requires_publish is True

    def test_a_message_waits_for_a_consumer_that_does_not_exist_yet(self, broker: Broker) -> None:
        sent = message()
        broker.publish([sent])
        consumer = broker.consumer("default", [RegisteredIdentifier("Leaf", 1, 0)])
        try:
            delivery = consumer.receive(WAIT)
            assert delivery is not None
            assert delivery.task_id == sent.task_id
            assert delivery.identifier == sent.identifier
            delivery.ack()
            assert consumer.receive(0.3) is None
        finally:
            consumer.close()

    def test_receive_returns_none_after_its_timeout_when_idle(self, broker: Broker) -> None:
        consumer = broker.consumer("default", [RegisteredIdentifier("Idle", 1, 0)])
        try:
            started = time.monotonic()
            assert consumer.receive(0.3) is None
            assert time.monotonic() - started >= 0.25  # it waited (about) its timeout
        finally:
            consumer.close()

    def test_a_runner_at_v1_3_takes_v1_0_to_v1_3_only(self, broker: Broker) -> None:
        fits = [message(version=f"v1.{minor}") for minor in range(4)]
        misses = [message(version="v1.4"), message(version="v2.0"), message(cluster="other")]
        broker.publish(fits + misses)
        consumer = broker.consumer("default", [RegisteredIdentifier("Leaf", 1, 3)])
        try:
            got = receive_all(consumer, len(fits))
            assert sorted(m.task_id for m in got) == sorted(m.task_id for m in fits)
            assert consumer.receive(0.5) is None
        finally:
            consumer.close()

    @pytest.mark.parametrize(
        "name",
        ["a.b.c", "*", "#", "a.*.#", "名前-ü-🚀", "x" * 256, "with space", "Leaf"],
    )
    def test_any_valid_name_routes_exactly(self, broker: Broker, name: str) -> None:
        mine = message(name=name)
        lookalike = message(name=(name + ".x")[-256:])
        broker.publish([lookalike, mine])
        consumer = broker.consumer("default", [RegisteredIdentifier(name, 1, 0)])
        try:
            got = receive_all(consumer, 1)
            assert [m.task_id for m in got] == [mine.task_id]
            assert consumer.receive(0.3) is None
        finally:
            consumer.close()

    def test_a_requeued_delivery_goes_to_another_consumer(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        sent = message()
        broker.publish([sent])
        regs = [RegisteredIdentifier("Leaf", 1, 0)]
        first = broker.consumer("default", regs)
        second = second_broker.consumer("default", regs)
        try:
            delivery = first.receive(WAIT)
            assert delivery is not None
            delivery.requeue()
            first.close()
            again = second.receive(WAIT)
            assert again is not None and again.task_id == sent.task_id
            again.ack()
        finally:
            second.close()

    def test_closing_a_consumer_returns_its_unsettled_delivery(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        sent = message()
        broker.publish([sent])
        regs = [RegisteredIdentifier("Leaf", 1, 0)]
        first = broker.consumer("default", regs)
        delivery = first.receive(WAIT)
        assert delivery is not None
        first.close()
        second = second_broker.consumer("default", regs)
        try:
            again = second.receive(WAIT)
            assert again is not None and again.task_id == sent.task_id
            again.ack()
        finally:
            second.close()

    def test_no_hostage_a_busy_consumer_does_not_hold_other_messages(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        regs = [RegisteredIdentifier("A", 1, 0), RegisteredIdentifier("B", 1, 0)]
        busy = broker.consumer("default", regs)
        idle = second_broker.consumer("default", regs)
        try:
            broker.publish([message(name="A")])
            held = busy.receive(WAIT)
            assert held is not None  # busy now "executes" A without settling it
            b = message(name="B")
            broker.publish([b])
            # the idle consumer gets B while A is still held (a hostage would wait for A)
            got = idle.receive(WAIT)
            assert got is not None and got.task_id == b.task_id
            got.ack()
            held.ack()
        finally:
            busy.close()
            idle.close()

    def test_a_paused_consumer_holds_no_message_until_it_receives_again(
        self, broker: Broker, second_broker: Broker
    ) -> None:
        regs = [RegisteredIdentifier("Leaf", 1, 0)]
        paused = broker.consumer("default", regs)
        other = second_broker.consumer("default", regs)
        try:
            assert paused.receive(0.3) is None  # consuming, idle
            paused.pause()  # its runner now runs a task it claimed from the store
            sent = message()
            broker.publish([sent])
            got = other.receive(WAIT)
            assert got is not None and got.task_id == sent.task_id
            got.ack()
            other.close()
            again = message()
            broker.publish([again])
            # back in receive: it takes messages again
            mine = paused.receive(WAIT)
            assert mine is not None and mine.task_id == again.task_id
            mine.ack()
        finally:
            paused.close()
            other.close()

    def test_a_fan_out_is_delivered_completely(self, broker: Broker) -> None:
        sent = [message() for _ in range(500)]
        broker.publish(sent)
        consumer = broker.consumer("default", [RegisteredIdentifier("Leaf", 1, 0)])
        try:
            got = receive_all(consumer, len(sent), timeout=30)
            assert sorted(m.task_id for m in got) == sorted(m.task_id for m in sent)
        finally:
            consumer.close()
