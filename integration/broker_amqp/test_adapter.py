"""Adapter behaviour beyond the port contract: topology errors, publishing failures and
recovery, thread safety, void delivery tags after a reconnect, queue depths."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from conveyor.broker_amqp import AmqpBroker, AmqpTopologyError
from conveyor.core.errors import BrokerUnavailableError
from conveyor.core.model import RegisteredIdentifier
from integration.broker_amqp._runners import wait_until
from integration.broker_amqp.conftest import RabbitCtl, close_connections, queue_depth
from tests.contract.broker_contract import message

LEAF = [RegisteredIdentifier("Leaf", 1, 0)]


def test_redeclaring_queues_with_another_type_fails_with_a_clear_error(
    make_broker: Callable[..., AmqpBroker],
) -> None:
    make_broker(queue_type="classic").publish([message()])
    quorum = make_broker(queue_type="quorum")

    with pytest.raises(AmqpTopologyError) as publishing:
        quorum.publish([message()])
    with pytest.raises(AmqpTopologyError) as consuming:
        quorum.consumer("default", LEAF)

    for error in (publishing.value, consuming.value):
        text = str(error)
        assert "already exists as a classic queue" in text
        assert "configured for quorum queues" in text
        assert "queue_type='classic'" in text
        assert "rabbitmqctl delete_queue" in text
    assert isinstance(publishing.value, BrokerUnavailableError)  # callers keep it in the outbox
    quorum.publish([])  # the broker stays usable


def test_publishing_to_an_unreachable_broker_raises_broker_unavailable_quickly() -> None:
    broker = AmqpBroker("amqp://guest:guest@127.0.0.1:1//", connect_timeout=1.0)
    try:
        with pytest.raises(BrokerUnavailableError, match="cannot connect"):
            broker.publish([message()])
    finally:
        broker.close()


def test_a_consumer_of_an_unreachable_broker_waits_instead_of_failing() -> None:
    broker = AmqpBroker("amqp://guest:guest@127.0.0.1:1//", connect_timeout=0.5)
    try:
        consumer = broker.consumer("default", LEAF)
        assert consumer.receive(0.2) is None
        consumer.close()
    finally:
        broker.close()


def test_publishing_recovers_when_a_queue_or_binding_was_deleted_behind_its_back(
    make_broker: Callable[..., AmqpBroker], pika_channel: Any
) -> None:
    broker = make_broker()
    spec = broker.topology.queue("default", "Leaf", 1, 0)
    broker.publish([message()])
    pika_channel.queue_unbind(spec.name, spec.exchange, spec.routing_key)
    broker.publish([message()])  # returned as unroutable, redeclared, published again
    assert queue_depth(pika_channel, spec.name) == 2
    pika_channel.queue_delete(spec.name)
    broker.publish([message()])
    assert queue_depth(pika_channel, spec.name) == 1


def test_an_unroutable_message_raises_instead_of_vanishing(
    make_broker: Callable[..., AmqpBroker], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = make_broker()
    # a topology that "forgets" to bind: the broker returns every message
    monkeypatch.setattr(broker.topology, "declare_queue", lambda channel, spec: None)
    with pytest.raises(BrokerUnavailableError, match="could not route 1 messages"):
        broker.publish([message()])


def test_several_threads_publish_through_one_broker(
    make_broker: Callable[..., AmqpBroker], pika_channel: Any
) -> None:
    broker = make_broker()
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            for _ in range(10):
                broker.publish([message() for _ in range(50)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert queue_depth(pika_channel, broker.topology.queue("default", "Leaf", 1, 0).name) == 2000
    assert broker.published == 2000


def test_an_old_delivery_is_void_after_a_reconnect(
    make_broker: Callable[..., AmqpBroker], rabbitmqctl: RabbitCtl, pika_channel: Any
) -> None:
    # Given: a consumer holding an unsettled delivery
    broker = make_broker(reconnect_max_delay=0.5)
    sent = message()
    broker.publish([sent])
    consumer = broker.consumer("default", LEAF)
    try:
        old = consumer.receive(5)
        assert old is not None and old.task_id == sent.task_id
        # When: its connection is closed by the broker (the message goes back to the queue)
        assert close_connections(rabbitmqctl, "conveyor consumer") == 1
        deadline = time.monotonic() + 10
        while broker.stats.connections < 2:
            assert time.monotonic() < deadline, "the consumer did not reconnect"
            time.sleep(0.05)
        # Then: acking the old delivery sends nothing on the new channel...
        old.ack()
        # ...and the redelivered message comes again, with a tag of the new channel
        again = consumer.receive(5)
        assert again is not None and again.task_id == sent.task_id and again.redelivered
        again.ack()
        time.sleep(0.5)
        queue = broker.topology.queue("default", "Leaf", 1, 0).name
        assert queue_depth(pika_channel, queue) == 0
        assert broker.stats.connection_losses == 1  # no 406 "unknown delivery tag" on top
        assert consumer.receive(0.3) is None
    finally:
        consumer.close()


def test_queue_depths_count_ready_messages_per_exact_version(
    make_broker: Callable[..., AmqpBroker],
) -> None:
    broker = make_broker()
    broker.publish([message(version="v1.0"), message(version="v1.0"), message(version="v1.2")])
    depths = broker.queue_depths("default", [RegisteredIdentifier("Leaf", 1, 3)])
    assert {str(k): v for k, v in depths.items()} == {
        "Leaf@v1.0": 2,
        "Leaf@v1.1": 0,  # never declared: counts as empty
        "Leaf@v1.2": 1,
        "Leaf@v1.3": 0,
    }


def test_close_returns_the_held_delivery_and_later_settles_are_no_ops(
    make_broker: Callable[..., AmqpBroker], pika_channel: Any
) -> None:
    broker = make_broker()
    broker.publish([message()])
    consumer = broker.consumer("default", LEAF)
    held = consumer.receive(5)
    assert held is not None
    broker.close()  # closes its consumers too
    held.ack()
    held.requeue()
    queue = broker.topology.queue("default", "Leaf", 1, 0).name
    # the broker requeues asynchronously, right after the reject
    assert wait_until(lambda: queue_depth(pika_channel, queue) == 1, 2)
    assert consumer.receive(0.1) is None
    with pytest.raises(BrokerUnavailableError):
        broker.publish([message()])


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="queue_type"):
        AmqpBroker("amqp://localhost//", queue_type="lazy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="namespace"):
        AmqpBroker("amqp://localhost//", namespace="has.dots and spaces")


def test_a_backlog_in_one_version_does_not_starve_another(
    make_broker: Callable[..., AmqpBroker],
) -> None:
    # Given: a consumer at v1.1 working through a backlog of v1.0 messages (5 ms each)
    broker = make_broker(queue_type="classic")
    broker.publish([message(version="v1.0") for _ in range(1000)])
    consumer = broker.consumer("default", [RegisteredIdentifier("Leaf", 1, 1)])
    try:
        first = consumer.receive(5)
        assert first is not None
        time.sleep(0.005)
        first.ack()
        time.sleep(0.2)
        # When: one v1.1 message arrives (while a v1.0 one is held: it is given back)
        late = message(version="v1.1")
        broker.publish([late])
        # Then: it is taken long before the backlog is drained
        taken = 0
        while True:
            delivery = consumer.receive(5)
            assert delivery is not None
            taken += 1
            if delivery.task_id == late.task_id:
                delivery.ack()
                break
            time.sleep(0.005)
            delivery.ack()
        assert taken < 700
    finally:
        consumer.close()
