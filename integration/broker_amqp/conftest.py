"""Fixtures for the RabbitMQ adapter's integration tests.

The session gets its own vhost (``rabbitmqctl add_vhost`` + ``set_permissions``, deleted at the
end), and every test its own namespace inside it, with every exchange and queue it declared
deleted afterwards. RabbitMQ unreachable: ``pytest.fail`` when ``CI`` is set, else skip.

Environment: ``CONVEYOR_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672``, without
a vhost), ``CONVEYOR_TEST_AMQP_USER`` (the user granted the test vhost, default ``guest``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kombu
import pika
import pytest

from conveyor.broker_amqp import AmqpBroker
from integration.conftest import BASE_URL, RabbitCtl, unavailable

__all__ = ["BASE_URL", "RabbitCtl", "unavailable"]


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_broker(amqp_url: str, namespace: str) -> Iterator[Callable[..., AmqpBroker]]:
    """Build brokers for this test's namespace; closes them and deletes what they declared."""
    made: list[AmqpBroker] = []

    def make(**kwargs: Any) -> AmqpBroker:
        kwargs.setdefault("namespace", namespace)
        broker = AmqpBroker(amqp_url, **kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()
    queues = set().union(*(b.topology.declared_queues for b in made)) if made else set()
    exchanges = set().union(*(b.topology.declared_exchanges for b in made)) if made else set()
    if queues or exchanges:
        conn = kombu.Connection(amqp_url, connect_timeout=3)
        try:
            channel = conn.channel()
            for queue in queues:
                channel.queue_delete(queue)
            for exchange in exchanges:
                channel.exchange_delete(exchange)
        except Exception:  # the vhost is deleted at the end of the session anyway
            pass
        finally:
            conn.release()


@pytest.fixture
def pika_channel(amqp_url: str) -> Iterator[Any]:
    """A pika channel on the test vhost (for publishing raw messages and reading depths)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield connection.channel()
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def queue_depth(channel: Any, queue: str) -> int:
    """Messages ready in ``queue`` (a passive declare through pika)."""
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def close_connections(rabbitmqctl: RabbitCtl, name_part: str) -> int:
    """Force-close this vhost's connections whose client-given name contains ``name_part``."""
    closed = 0
    for pid, vhost, properties in rabbitmqctl.rows(
        "list_connections", "pid", "vhost", "client_properties"
    ):
        if vhost == rabbitmqctl.vhost and name_part in properties:
            rabbitmqctl("close_connection", pid, "closed by a conveyor test")
            closed += 1
    return closed
