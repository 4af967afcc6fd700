"""``amqp://a;amqp://b`` failover lists against the real RabbitMQ.

A dead first entry (a closed port) must not stop publishing, consuming or the start-up probe,
and a node that dies under a running consumer and publisher (a TCP proxy to the real broker,
killed mid-test) must be replaced by the next entry of the list.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import kombu
import pytest

from conveyor.broker_amqp import AmqpBroker, server_version
from conveyor.core.model import DispatchMessage, RegisteredIdentifier
from tests.contract.broker_contract import message

LEAF = [RegisteredIdentifier("Leaf", 1, 0)]
#: Seconds to wait for a delivery that must arrive (a bound on waiting, not a measurement).
WAIT = 30.0


def dead_entry(amqp_url: str, port: int = 1) -> str:
    """The test vhost at a port nobody listens on."""
    parts = urlsplit(amqp_url)
    return parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}").geturl()


class Proxy:
    """A TCP forwarder to the real broker that the test can kill, like a node dying."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._killed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            with self._lock:
                if self._killed:
                    client.close()
                    upstream.close()
                    return
                self.accepted += 1
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def kill(self) -> None:
        """Stop listening (the port now refuses) and cut every forwarded connection."""
        with self._lock:
            self._killed = True
            sockets = list(self._sockets)
        self._listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def entry(self, amqp_url: str) -> str:
        parts = urlsplit(amqp_url)
        return parts._replace(
            netloc=f"{parts.username}:{parts.password}@127.0.0.1:{self.port}"
        ).geturl()


@pytest.fixture
def proxy(amqp_url: str) -> Iterator[Proxy]:
    parts = urlsplit(amqp_url)
    running = Proxy((parts.hostname or "127.0.0.1", parts.port or 5672))
    yield running
    running.kill()


@pytest.fixture
def broker_on(amqp_url: str) -> Iterator[Callable[[str], AmqpBroker]]:
    """Brokers on a given URL list, in a namespace of their own, cleaned up afterwards."""
    made: list[AmqpBroker] = []
    namespace = f"f{uuid.uuid4().hex[:12]}"

    def make(url: str) -> AmqpBroker:
        broker = AmqpBroker(url, namespace=namespace, connect_timeout=2.0)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()
    conn = kombu.Connection(amqp_url, connect_timeout=3)
    try:
        channel = conn.channel()
        for broker in made:
            for queue in broker.topology.declared_queues:
                with contextlib.suppress(Exception):
                    channel.queue_delete(queue)
            for exchange in broker.topology.declared_exchanges:
                with contextlib.suppress(Exception):
                    channel.exchange_delete(exchange)
    except Exception:  # the vhost is deleted at the end of the session anyway
        pass
    finally:
        conn.release()


def receive(consumer: Any, expected: DispatchMessage) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        delivery = consumer.receive(0.2)
        if delivery is None:
            continue
        delivery.ack()
        if delivery.task_id == expected.task_id:
            return
    raise AssertionError(f"{expected.task_id} was never delivered")


def test_a_dead_first_entry_still_publishes_and_consumes(
    amqp_url: str, broker_on: Callable[[str], AmqpBroker]
) -> None:
    url = f"{dead_entry(amqp_url)};{amqp_url}"
    publisher, consumer_side = broker_on(url), broker_on(url)
    consumer = consumer_side.consumer("default", LEAF)
    sent = message()
    publisher.publish([sent])
    receive(consumer, sent)
    assert publisher.published == 1
    consumer.close()


def test_the_start_up_probe_skips_a_dead_first_entry(amqp_url: str) -> None:
    version = server_version(f"{dead_entry(amqp_url)};{dead_entry(amqp_url, 2)};{amqp_url}", 2.0)
    assert version[0].isdigit()


def test_a_node_dying_under_a_consumer_and_a_publisher_fails_over_to_the_next(
    amqp_url: str, proxy: Proxy, broker_on: Callable[[str], AmqpBroker]
) -> None:
    url = f"{proxy.entry(amqp_url)};{amqp_url}"
    publisher, consumer_side = broker_on(url), broker_on(url)
    consumer = consumer_side.consumer("default", LEAF)
    first = message()
    publisher.publish([first])
    receive(consumer, first)
    assert proxy.accepted == 2, "both connections went through the first entry"

    proxy.kill()  # the node of the first entry dies; the second is up
    second = message()
    publisher.publish([second])  # reconnects (to the second entry) and retries
    receive(consumer, second)  # the consumer's I/O thread reconnected there too
    assert consumer_side.stats.connection_losses >= 1
    consumer.close()
