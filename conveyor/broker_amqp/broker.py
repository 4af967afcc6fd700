# mypy: disallow-untyped-calls=False
"""``AmqpBroker``: the Broker port on RabbitMQ (see the package docstring for the design)."""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conveyor.broker_amqp._connection import close_quietly, open_connection
from conveyor.broker_amqp._consumer import (
    AmqpConsumer,
    ConsumerSettings,
    ConsumerStats,
    ack_deadlines,
)
from conveyor.broker_amqp._publisher import Publisher
from conveyor.broker_amqp._topology import QueueType, Topology
from conveyor.core.errors import BrokerUnavailableError
from conveyor.core.identifiers import TaskIdentifier, validate_slug
from conveyor.core.model import DispatchMessage, RegisteredIdentifier
from conveyor.urls import mask_url

log = logging.getLogger(__name__)

#: Default queue type; see "Queue type" in the package docstring for the measurements.
DEFAULT_QUEUE_TYPE: QueueType = "quorum"


class AmqpBroker:
    """Dispatch through RabbitMQ: durable per-version queues, confirmed publishing, prefetch-1
    consumers that never hold hostages.

    Args:
        url: ``amqp://user:password@host:port/vhost`` (``amqps://`` for TLS).
        namespace: prefix of every exchange and queue name, so installations can share a vhost.
        queue_type: ``"quorum"`` (default) or ``"classic"``; an existing queue of the other type
            makes declarations fail with :class:`AmqpTopologyError`, which says how to fix it.
        heartbeat: AMQP heartbeat in seconds, served by background threads (0 disables).
        consumer_timeout: the broker's ``consumer_timeout`` in seconds (``rabbitmq.conf``; it
            cannot be read over AMQP). Default: RabbitMQ's 30 minutes; at least 1 s.
        early_ack_margin: a delivery held this long before ``consumer_timeout`` is acked early
            (at most a quarter of ``consumer_timeout``: with a 20 s timeout, after 15 s).
        connect_timeout: seconds to wait for a TCP/AMQP connection.
        confirm_timeout: seconds to wait for publisher confirms before giving up.
        publish_window: unconfirmed messages allowed in flight while publishing a batch.
        reconnect_max_delay: upper bound of the consumers' reconnect back-off.
    """

    requires_publish = True

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "conveyor",
        queue_type: QueueType = DEFAULT_QUEUE_TYPE,
        heartbeat: float = 10.0,
        consumer_timeout: float = 1800.0,
        early_ack_margin: float = 60.0,
        connect_timeout: float = 5.0,
        confirm_timeout: float = 30.0,
        publish_window: int = 4000,
        reconnect_max_delay: float = 5.0,
    ) -> None:
        if not heartbeat >= 0:
            raise ValueError(f"heartbeat must be 0 s or more, got {heartbeat!r}")
        ack_deadlines(consumer_timeout, early_ack_margin)  # raises a ValueError naming the value
        self.url = url
        self.topology = Topology(namespace, queue_type)
        self.namespace = namespace
        self.queue_type: QueueType = queue_type
        self._consumer_settings = ConsumerSettings(
            url=url,
            topology=self.topology,
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            confirm_timeout=confirm_timeout,
            consumer_timeout=consumer_timeout,
            early_ack_margin=early_ack_margin,
            reconnect_max_delay=reconnect_max_delay,
        )
        self._publisher = Publisher(
            url,
            self.topology,
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            confirm_timeout=confirm_timeout,
            window=publish_window,
        )
        self._lock = threading.Lock()
        self._consumers: weakref.WeakSet[AmqpConsumer] = weakref.WeakSet()
        #: Counters summed over every consumer this broker created.
        self.stats = ConsumerStats()
        self._closed = False

    # -- Broker port ------------------------------------------------------------------------------
    def publish(self, messages: Sequence[DispatchMessage]) -> None:
        """Publish durably with confirms; declares (once per process) each message's exchange,
        exact-version queue and binding first, so the message waits for a runner.

        Raises:
            BrokerUnavailableError: unreachable, not confirmed, nacked or unroutable.
            AmqpTopologyError: a queue exists with another type or arguments.
        """
        self._publisher.publish(messages)

    def consumer(self, cluster: str, identifiers: Sequence[RegisteredIdentifier]) -> AmqpConsumer:
        """Consume the queues of ``cluster`` for every (name, major, minor ≤ max_minor).

        Connects and declares before returning. When RabbitMQ is unreachable the consumer is
        returned anyway and keeps reconnecting in the background (``receive`` returns None).

        Raises:
            AmqpTopologyError: a queue exists with another type or arguments.
            ValueError: an invalid cluster slug.
        """
        with self._lock:
            if self._closed:
                raise BrokerUnavailableError("this AmqpBroker is closed")
        validate_slug(cluster)
        queues = [
            self.topology.queue(cluster, ident.name, ident.major, minor)
            for ident in identifiers
            for minor in range(ident.max_minor + 1)
        ]
        consumer = AmqpConsumer(self._consumer_settings, cluster, queues, self.stats)
        with self._lock:
            self._consumers.add(consumer)
        return consumer

    def close(self) -> None:
        """Close every consumer (their unsettled deliveries go back) and the publisher."""
        with self._lock:
            self._closed = True
            consumers = list(self._consumers)
        for consumer in consumers:
            consumer.close()
        self._publisher.close()

    # -- extras -----------------------------------------------------------------------------------
    def dead_letter(self, body: bytes, headers: Mapping[str, Any] | None, reason: str) -> None:
        """Publish a message to the ``{namespace}.dead`` queue with ``reason`` in its headers.

        Raises:
            BrokerUnavailableError: not confirmed.
        """
        self._publisher.dead_letter(body, headers, reason)

    def queue_depths(
        self, cluster: str, identifiers: Iterable[TaskIdentifier | RegisteredIdentifier]
    ) -> dict[TaskIdentifier, int]:
        """Messages waiting per exact version (for the monitor's reconciliation and metrics).

        Raises:
            BrokerUnavailableError: RabbitMQ is unreachable.
        """
        return self._publisher.queue_depths(cluster, identifiers)

    @property
    def published(self) -> int:
        """Messages confirmed by RabbitMQ through this broker."""
        return self._publisher.published

    def __repr__(self) -> str:
        return (
            f"<AmqpBroker namespace={self.namespace!r} queue_type={self.queue_type!r} "
            f"url={mask_url(self.url)!r}>"
        )


def server_version(url: str, connect_timeout: float = 5.0) -> str:
    """Connect and return RabbitMQ's version: the start-up check of workers and ``doctor``.

    Every entry of a failover list is tried, and for ``connect_timeout`` seconds the list is
    tried again with jittered back-off: a process started while its broker (re)starts waits for
    it, as it waits for its database, instead of exiting.

    Raises:
        BrokerUnavailableError: unreachable, refused or authentication failed (URL masked).
    """
    conn = open_connection(
        url, heartbeat=0, connect_timeout=connect_timeout, name="probe", retry_for=connect_timeout
    )
    try:
        version = conn.connection.server_properties.get("version", "?")
        return version.decode() if isinstance(version, bytes) else str(version)
    finally:
        close_quietly(conn, graceful=True)
