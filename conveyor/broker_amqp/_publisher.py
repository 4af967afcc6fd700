"""The publishing side: one confirm-mode connection per broker, shared under a lock.

Several threads (a client, runners completing tasks, the outbox sweep) may publish through one
``AmqpBroker``; they take turns on one connection. RabbitMQ applies flow control per connection,
so publishing on its own connection also keeps a throttled publisher from stalling consumers.

While idle, a small keeper thread answers heartbeats (the broker would otherwise drop an idle
publisher connection after two missed heartbeats and log a warning each time).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import amqp
import amqp.exceptions
from kombu.connection import Connection

from conveyor.broker_amqp._codec import PERSISTENT, REASON_HEADER, SOURCE_HEADER, encode
from conveyor.broker_amqp._confirms import ConfirmTracker
from conveyor.broker_amqp._connection import (
    TRANSPORT_ERRORS,
    close_quietly,
    open_connection,
    pump,
)
from conveyor.broker_amqp._frames import WRITE_BATCH, FrameEncoder, dispatch_message, write_frames
from conveyor.broker_amqp._topology import QueueSpec, Topology
from conveyor.core.errors import BrokerUnavailableError
from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import DispatchMessage, RegisteredIdentifier

log = logging.getLogger(__name__)


class Publisher:
    """Publishes dispatch messages and dead letters with batched confirms (thread-safe)."""

    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        heartbeat: float,
        connect_timeout: float,
        confirm_timeout: float,
        window: int,
    ) -> None:
        self._url = url
        self._topology = topology
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._confirm_timeout = confirm_timeout
        self._window = max(window, 1)
        self._lock = threading.RLock()
        self._conn: Connection | None = None
        #: The py-amqp connection under ``_conn`` (kombu's ``.connection`` would reconnect).
        self._amqp: Any = None
        self._channel: Any = None
        self._confirms: ConfirmTracker | None = None
        self._declared_exchanges: set[str] = set()
        self._declared_queues: set[str] = set()
        self._closed = False
        self._keeper: threading.Thread | None = None
        self._keeper_stop = threading.Event()
        #: Messages confirmed by the broker since start (for tests and metrics).
        self.published = 0

    # -- public ---------------------------------------------------------------------------------
    def publish(self, messages: Sequence[DispatchMessage]) -> None:
        """Publish persistently and wait until every message is confirmed and routed.

        A failed attempt (connection lost, exchange or queue deleted meanwhile, unroutable) is
        retried once on a fresh connection with fresh declarations; duplicates are harmless.

        Raises:
            BrokerUnavailableError: not confirmed, nacked or unroutable after the retry.
            AmqpTopologyError: a queue exists with another type or arguments.
        """
        if not messages:
            return
        with self._lock:
            self._check_open()
            todo = list(messages)
            for attempt in (1, 2):
                try:
                    returned = self._publish_once(todo)
                except BrokerUnavailableError:
                    self._reset()
                    raise
                except TRANSPORT_ERRORS as exc:
                    self._reset()
                    if attempt == 2:
                        raise BrokerUnavailableError(
                            f"publishing {len(todo)} messages to RabbitMQ failed: {exc!r}"
                        ) from exc
                    log.info("publishing failed (%r); retrying on a new connection", exc)
                    continue
                if not returned:
                    return
                # Unroutable: a queue or binding vanished since we declared it. Redeclare those.
                todo = [m for m in todo if str(m.task_id) in returned]
                for message in todo:
                    spec = self._topology.queue_for(message.cluster, message.identifier)
                    self._declared_queues.discard(spec.name)
            reasons = sorted(set(returned.values()))
            raise BrokerUnavailableError(
                f"RabbitMQ could not route {len(todo)} messages (first task "
                f"{todo[0].task_id}, {todo[0].identifier}): {'; '.join(reasons)[:500]}"
            )

    def dead_letter(
        self,
        body: bytes,
        headers: Mapping[str, Any] | None,
        reason: str,
        source: str | None = None,
    ) -> None:
        """Publish a message to ``{namespace}.dead`` with the reason in its headers (confirmed).

        Raises:
            BrokerUnavailableError: not confirmed.
        """
        with self._lock:
            self._check_open()
            try:
                channel, confirms = self._ensure_channel()
                queue = self._topology.dead_letter_queue
                if queue not in self._declared_queues:
                    self._topology.declare_dead_letter_queue(channel)
                    self._declared_queues.add(queue)
                message = dead_letter_message(body, headers, reason, source)
                confirms.reset()
                channel.basic_publish(message, exchange="", routing_key=queue, mandatory=True)
                confirms.published(message.properties["message_id"])
                confirms.wait(self._conn_amqp(), at_most=0, timeout=self._confirm_timeout)
                if confirms.nacked or confirms.returned:
                    raise BrokerUnavailableError(f"dead letter to {queue} was not accepted")
            except BrokerUnavailableError:
                self._reset()
                raise
            except TRANSPORT_ERRORS as exc:
                self._reset()
                raise BrokerUnavailableError(f"dead-lettering failed: {exc!r}") from exc

    def queue_depths(
        self,
        cluster: str,
        identifiers: Iterable[TaskIdentifier | RegisteredIdentifier],
    ) -> dict[TaskIdentifier, int]:
        """Messages ready in each exact-version queue (passive declares; 0 if it does not exist).

        A :class:`RegisteredIdentifier` stands for every minor up to its ``max_minor``.

        Raises:
            BrokerUnavailableError: RabbitMQ is unreachable.
        """
        specs = []
        for ident in identifiers:
            if isinstance(ident, RegisteredIdentifier):
                specs += [
                    self._topology.queue(cluster, ident.name, ident.major, minor)
                    for minor in range(ident.max_minor + 1)
                ]
            else:
                specs.append(self._topology.queue_for(cluster, ident))
        depths: dict[TaskIdentifier, int] = {}
        with self._lock:
            self._check_open()
            try:
                self._ensure_channel()
                conn = self._conn_amqp()
                channel = conn.channel()
                try:
                    for spec in specs:
                        try:
                            _, count, _ = channel.queue_declare(spec.name, passive=True)
                        except amqp.exceptions.NotFound:
                            count = 0
                            channel = conn.channel()  # a 404 closed the previous one
                        depths[spec.identifier] = depths.get(spec.identifier, 0) + int(count)
                finally:
                    if channel.is_open:
                        channel.close()
            except TRANSPORT_ERRORS as exc:
                self._reset()
                raise BrokerUnavailableError(f"reading queue depths failed: {exc!r}") from exc
        return depths

    def close(self) -> None:
        self._keeper_stop.set()
        with self._lock:
            self._closed = True
            self._reset(graceful=True)
        keeper = self._keeper
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(timeout=5)

    # -- internals ------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise BrokerUnavailableError("this AmqpBroker is closed")

    def _conn_amqp(self) -> Any:
        if self._amqp is None:
            raise BrokerUnavailableError("the RabbitMQ publisher connection is closed")
        return self._amqp

    def _ensure_channel(self) -> tuple[Any, ConfirmTracker]:
        if self._channel is not None and self._confirms is not None and self._channel.is_open:
            return self._channel, self._confirms
        self._reset()
        self._conn = open_connection(
            self._url,
            heartbeat=self._heartbeat,
            connect_timeout=self._connect_timeout,
            name="conveyor publisher",
        )
        self._amqp = self._conn.connection
        self._channel = self._amqp.channel()
        self._confirms = ConfirmTracker(self._channel)
        self._start_keeper()
        return self._channel, self._confirms

    def _reset(self, graceful: bool = False) -> None:
        """Drop the connection; the next use reconnects and redeclares what it needs.

        Declarations are forgotten too: after a broker restart durable entities survive, but
        an operator may have deleted a queue, and a redeclare is cheap next to a lost message.
        """
        conn, self._conn = self._conn, None
        self._amqp = None
        self._channel = None
        self._confirms = None
        self._declared_exchanges.clear()
        self._declared_queues.clear()
        close_quietly(conn, graceful=graceful)

    def _specs(self, messages: Sequence[DispatchMessage]) -> list[QueueSpec]:
        """Each message's queue (computed once per distinct cluster and identifier)."""
        cache: dict[tuple[str, TaskIdentifier], QueueSpec] = {}
        specs = []
        for message in messages:
            key = (message.cluster, message.identifier)
            spec = cache.get(key)
            if spec is None:
                spec = cache[key] = self._topology.queue_for(*key)
            specs.append(spec)
        return specs

    def _declare(self, channel: Any, specs: Sequence[QueueSpec]) -> None:
        topology = self._topology
        for spec in specs:
            if spec.name in self._declared_queues:
                continue
            if spec.exchange not in self._declared_exchanges:
                topology.declare_exchange(channel, spec.cluster)
                self._declared_exchanges.add(spec.exchange)
            topology.declare_queue(channel, spec)
            self._declared_queues.add(spec.name)

    def _publish_once(self, messages: Sequence[DispatchMessage]) -> dict[str, str]:
        """Publish a batch; the unroutable ones (task id → reason). Raises on nacks/timeouts.

        Frames are encoded by :class:`~._frames.FrameEncoder` and written :data:`WRITE_BATCH`
        messages per socket write: py-amqp's ``basic_publish`` (properties serialised and one
        write per message) was most of a 100k fan-out's CPU time (see :mod:`._frames`).
        """
        channel, confirms = self._ensure_channel()
        specs = self._specs(messages)
        self._declare(channel, specs)
        conn = self._conn_amqp()
        window = self._window
        confirms.reset()
        encoder = FrameEncoder(channel.channel_id, conn.frame_max)
        pending: list[bytes] = []

        def flush() -> None:
            if pending:
                write_frames(conn, b"".join(pending))
                pending.clear()

        for message, spec in zip(messages, specs, strict=True):
            body, headers = encode(message)
            message_id = str(message.task_id)
            frames = encoder.frames(spec, headers, body, message_id)
            if frames is None:  # too large for one frame (never for dispatch messages)
                flush()
                channel.basic_publish(
                    dispatch_message(body, headers, message_id),
                    exchange=spec.exchange,
                    routing_key=spec.routing_key,
                    mandatory=True,
                )
            else:
                pending.append(frames)
                if len(pending) >= WRITE_BATCH:
                    flush()
            confirms.published(message_id)
            if len(confirms.pending) >= window:
                flush()
                confirms.wait(conn, at_most=window // 2, timeout=self._confirm_timeout)
        flush()
        confirms.wait(conn, at_most=0, timeout=self._confirm_timeout)
        if confirms.nacked:
            raise BrokerUnavailableError(
                f"RabbitMQ nacked {len(confirms.nacked)} of {len(messages)} published messages"
            )
        self.published += len(messages) - len(confirms.returned)
        return dict(confirms.returned)

    # -- heartbeats while idle --------------------------------------------------------------------
    def _start_keeper(self) -> None:
        if not self._heartbeat or (self._keeper is not None and self._keeper.is_alive()):
            return
        self._keeper = threading.Thread(
            target=self._keep_alive, name="conveyor-amqp-publisher-heartbeat", daemon=True
        )
        self._keeper.start()

    def _keep_alive(self) -> None:
        interval = max(self._heartbeat / 4, 0.2)
        while not self._keeper_stop.wait(interval):
            if not self._lock.acquire(blocking=False):
                continue  # publishing right now: traffic flows, nothing to do
            try:
                if self._amqp is None:
                    continue
                try:
                    pump(self._amqp)
                    self._amqp.heartbeat_tick(rate=2)
                except TRANSPORT_ERRORS as exc:
                    log.info("idle publisher connection lost (%r); reconnecting on next use", exc)
                    self._reset()
            finally:
                self._lock.release()


#: Header value types py-amqp can encode (what it decoded from the original message).
_HEADER_TYPES = (bytes, bytearray, str, int, float, bool, dict, list, tuple, dt.datetime, Decimal)


def dead_letter_message(
    body: bytes, headers: Mapping[str, Any] | None, reason: str, source: str | None
) -> amqp.Message:
    """The message sent to the dead-letter queue: the original body, its headers, and why."""
    merged: dict[str, Any] = {}
    for key, value in (headers or {}).items():
        if value is None or isinstance(value, _HEADER_TYPES):
            merged[str(key)] = value
    merged[REASON_HEADER] = reason[:1000]
    if source is not None:
        merged[SOURCE_HEADER] = source
    return amqp.Message(
        bytes(body),
        delivery_mode=PERSISTENT,
        application_headers=merged,
        message_id=f"dead-{uuid.uuid4()}",
    )
