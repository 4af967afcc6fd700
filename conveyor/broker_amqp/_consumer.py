"""The consuming side: one connection and one I/O thread per runner subscription.

The runner's thread calls ``receive`` only between tasks, so it cannot serve the connection:
an I/O thread owns the connection and channels, answers heartbeats while user code blocks, and
does every AMQP call (ack, reject, consume, cancel). The runner's thread only exchanges
deliveries with it through a condition variable, and settles them by queueing a command and
poking a wake-up socket that the I/O thread ``select``s on together with the AMQP socket.

State machine (see ``conveyor.core.ports.Consumer``: at most one unsettled delivery):

* *idle*: every queue is consumed with ``prefetch_count=1`` per consumer. The first delivery
  becomes *ready* and the runner's ``receive`` takes it (it is then *held*).
* *no hostages*: any other delivery arriving while one is ready or held is given back at once:
  cancel that queue's consumer, then ``basic.reject(requeue=True)``; that queue is *paused* and
  consumed again when the runner is idle in ``receive`` (after a short delay that lets the
  current queue's next message win, so a backlog is drained without a requeue per message; a
  queue paused for ``MAX_PAUSE`` gets its turn first, so one busy version cannot starve another).
* *paused*: the runner works without a delivery (a task claimed straight from the store) and
  says so with ``pause()``: every consumer is cancelled, a ready delivery is given back, and any
  message still in flight is given back as it arrives, until the next ``receive``.
* *consumer timeout*: RabbitMQ 3.10 closes the channel of a delivery unacked past its
  ``consumer_timeout``. Before ``consumer_timeout - margin`` a held delivery is acked early and
  every consumer is cancelled until the runner is idle again; its later ``ack()`` is a no-op and
  ``requeue()`` republishes nothing (the store's lease protects the task from then on). A ready
  delivery the runner has not taken is given back before the same deadline (at the latest after
  ``READY_MAX_AGE``). The margin is ``early_ack_margin`` but at most a quarter of the timeout
  (:func:`ack_deadlines`), so any timeout of ``MIN_CONSUMER_TIMEOUT`` or more works.
* *channel errors, lost connections*: the I/O thread reconnects with back-off, redeclares and
  consumes again. Every delivery of the old channel is void (an ``ack()`` of it sends nothing:
  its tag could name another message on the new channel); the broker requeued its message.
* *poison*: a message without a usable task id is dead-lettered (confirmed) and acked, never
  delivered.

Why one module of ~700 lines: the states above are one state machine over one lock, one
connection and one command queue, and every transition reads the others (a give-back pauses a
queue, a rotation cancels consumers a pause resumes, a reconnect voids every delivery). Split
into files, each half would need the other's private state; the pure parts that stand alone
live elsewhere (``_codec``, ``_connection``, ``_confirms``, ``_topology``, ``ack_deadlines``).
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from kombu.connection import Connection

from conveyor.broker_amqp._codec import Decoded, PoisonMessage, decode
from conveyor.broker_amqp._confirms import ConfirmTracker
from conveyor.broker_amqp._connection import (
    TRANSPORT_ERRORS,
    backoff_delays,
    close_quietly,
    open_connection,
    pump,
    readable,
)
from conveyor.broker_amqp._publisher import dead_letter_message
from conveyor.broker_amqp._topology import AmqpTopologyError, QueueSpec, Topology
from conveyor.core.errors import BrokerUnavailableError
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier

log = logging.getLogger(__name__)

#: Seconds an idle ``receive`` waits for the current queue's next message before it consumes
#: the queues it paused again.
RESUME_DELAY: Final = 0.02
#: A queue paused this long is consumed ahead of the active ones at the next ``receive``.
MAX_PAUSE: Final = 1.0
#: Longest time a delivery waits for the runner to ``receive`` it before it is given back.
READY_MAX_AGE: Final = 30.0
#: The early ack comes at most this fraction of ``consumer_timeout`` early: a margin of 60 s
#: with a 20 s timeout would ack (and give back) every delivery at once.
MAX_MARGIN_FRACTION: Final = 0.25
#: The shortest broker ``consumer_timeout`` served: below it a ready delivery would have to be
#: taken within a fraction of a second of its arrival, while a runner is still between two
#: ``receive`` calls (heartbeats, sweeps), and would be given back over and over.
MIN_CONSUMER_TIMEOUT: Final = 1.0

#: Failures after which the consumer reconnects.
_RECOVERABLE: Final[tuple[type[BaseException], ...]] = (*TRANSPORT_ERRORS, BrokerUnavailableError)

_consumer_ids = itertools.count(1)


def ack_deadlines(consumer_timeout: float, early_ack_margin: float) -> tuple[float, float]:
    """Seconds after its arrival at which a held delivery is acked early, and after which a
    ready one nobody received is given back: both before RabbitMQ's ``consumer_timeout``.

    Raises:
        ValueError: ``consumer_timeout`` below :data:`MIN_CONSUMER_TIMEOUT` or a negative margin.
    """
    if not consumer_timeout >= MIN_CONSUMER_TIMEOUT:
        raise ValueError(
            f"the broker's consumer_timeout must be at least {MIN_CONSUMER_TIMEOUT:g} s, got "
            f"{consumer_timeout!r} (give it in seconds: RabbitMQ's consumer_timeout = 20000 in "
            "rabbitmq.conf is 20 s)"
        )
    if not early_ack_margin >= 0:
        raise ValueError(f"early_ack_margin must be 0 s or more, got {early_ack_margin!r}")
    margin = min(early_ack_margin, consumer_timeout * MAX_MARGIN_FRACTION)
    early_after = consumer_timeout - margin
    return early_after, min(READY_MAX_AGE, early_after)


@dataclass(frozen=True, slots=True)
class ConsumerSettings:
    """What a consumer needs from its broker's configuration."""

    url: str
    topology: Topology
    heartbeat: float
    connect_timeout: float
    confirm_timeout: float
    consumer_timeout: float
    early_ack_margin: float
    reconnect_max_delay: float


@dataclass(slots=True)
class ConsumerStats:
    """Counters of one consumer (for tests, logs and metrics)."""

    connections: int = 0
    connection_losses: int = 0
    given_back: int = 0
    dead_lettered: int = 0
    early_acks: int = 0


class AmqpDelivery:
    """One message handed to the runner; settle it exactly once (see ``ports.Delivery``)."""

    __slots__ = (
        "_consumer",
        "decoded",
        "early_acked",
        "epoch",
        "queue",
        "received_at",
        "redelivered",
        "settled",
        "tag",
    )

    def __init__(
        self,
        consumer: AmqpConsumer,
        epoch: int,
        tag: int,
        queue: QueueSpec,
        decoded: Decoded,
        redelivered: bool,
    ) -> None:
        self._consumer = consumer
        self.epoch = epoch
        self.tag = tag
        self.queue = queue
        self.decoded = decoded
        self.redelivered = redelivered
        self.received_at = time.monotonic()
        self.settled = False
        self.early_acked = False

    @property
    def task_id(self) -> TaskId | None:
        return self.decoded.task_id

    @property
    def job_id(self) -> JobId | None:
        return self.decoded.job_id

    @property
    def identifier(self) -> TaskIdentifier | None:
        return self.decoded.identifier

    def ack(self) -> None:
        """Acknowledge (a no-op after an early ack or when the channel was lost meanwhile)."""
        self._consumer._settle(self, requeue=False)

    def requeue(self) -> None:
        """Give the message back at once (nothing after an early ack or a lost channel)."""
        self._consumer._settle(self, requeue=True)

    def __repr__(self) -> str:
        return f"<AmqpDelivery task={self.task_id} queue={self.queue.name} tag={self.tag}>"


class AmqpConsumer:
    """A runner's subscription: the queues of every (name, major, minor ≤ max_minor)."""

    def __init__(
        self,
        settings: ConsumerSettings,
        cluster: str,
        queues: Sequence[QueueSpec],
        stats: ConsumerStats | None = None,
    ) -> None:
        self._settings = settings
        self._topology = settings.topology
        self._cluster = cluster
        self._specs = {spec.name: spec for spec in queues}
        self._id = next(_consumer_ids)
        self.stats = stats or ConsumerStats()
        # Shared with the runner's thread, guarded by _cond.
        self._cond = threading.Condition()
        self._ready: AmqpDelivery | None = None
        self._held: AmqpDelivery | None = None
        self._closing = False
        self._error: AmqpTopologyError | None = None
        self._want_consume = False
        #: Between ``pause()`` and the next ``receive``: take no delivery at all.
        self._busy = False
        self._paused: dict[str, float] = {}
        self._commands: collections.deque[tuple[str, AmqpDelivery | None, list[str]]] = (
            collections.deque()
        )
        # I/O thread only.
        self._conn: Connection | None = None
        self._amqp: Any = None
        self._channel: Any = None
        self._dl_channel: Any = None
        self._dl_confirms: ConfirmTracker | None = None
        self._epoch = 0
        self._active: dict[str, str] = {}
        self._tags: dict[str, QueueSpec] = {}
        self._inbox: collections.deque[Any] = collections.deque()
        self._broken: str | None = None
        self._tag_counter = itertools.count(1)
        self._early_after, self._ready_max_age = ack_deadlines(
            settings.consumer_timeout, settings.early_ack_margin
        )
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"conveyor-amqp-consumer-{cluster}-{self._id}", daemon=True
        )
        self._thread.start()
        self._started.wait(settings.connect_timeout + 10.0)
        with self._cond:
            error = self._error
        if error is not None:
            self.close()
            raise AmqpTopologyError(str(error)) from error

    # -- the runner's side ---------------------------------------------------------------------
    def receive(self, timeout: float) -> AmqpDelivery | None:
        """Wait up to ``timeout`` seconds for one delivery (see the module docstring).

        Raises:
            RuntimeError: the previous delivery is not settled yet.
            AmqpTopologyError: the queues cannot be declared as configured (until fixed).
        """
        timeout = max(timeout, 0.0)
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._held is not None:
                raise RuntimeError("settle the previous delivery before receiving another")
            if self._error is not None:
                raise AmqpTopologyError(str(self._error))
            if self._closing:
                return None
            self._busy = False
            self._maybe_rotate()
            if self._ready is None:
                self._cond.wait_for(self._has_ready, min(RESUME_DELAY, timeout / 2))
            if self._ready is None and not self._closing:
                self._want_consume = True
                if self._paused:
                    self._wake()
                self._cond.wait_for(self._has_ready, max(deadline - time.monotonic(), 0.0))
                self._want_consume = False
            delivery = self._ready
            if delivery is None or self._closing:
                return None
            self._ready = None
            self._held = delivery
            return delivery

    def pause(self) -> None:
        """Take no delivery until the next ``receive``: the runner is busy with a task it
        claimed from the store (see the module docstring)."""
        with self._cond:
            if self._closing or self._busy:
                return
            self._busy = True
            ready, self._ready = self._ready, None
            self._commands.append(("pause", ready, []))
        self._wake()

    def close(self) -> None:
        """Stop consuming: an unsettled delivery is given back, consumers are cancelled and
        the connection is closed."""
        with self._cond:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
                self._cond.notify_all()
        self._wake()
        if not already and self._thread is not threading.current_thread():
            self._thread.join(timeout=self._settings.connect_timeout + 10.0)

    def _has_ready(self) -> bool:
        return self._ready is not None or self._closing

    def _maybe_rotate(self) -> None:
        """Fairness (lock held): when a queue has been paused for ``MAX_PAUSE`` while another
        keeps handing in messages, give the ready one back and consume the paused ones first."""
        if self._ready is None or not self._paused:
            return
        now = time.monotonic()
        starving = [name for name, since in self._paused.items() if now - since >= MAX_PAUSE]
        if starving:
            delivery, self._ready = self._ready, None
            self._commands.append(("rotate", delivery, starving))
            self._wake()

    def _settle(self, delivery: AmqpDelivery, *, requeue: bool) -> None:
        with self._cond:
            if delivery.settled:
                return
            delivery.settled = True
            if self._held is delivery:
                self._held = None
            self._commands.append(("requeue" if requeue else "ack", delivery, []))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- the I/O thread ------------------------------------------------------------------------
    def _run(self) -> None:
        delay = 0.0
        # Jittered, so the runners of a fleet that lost the same node do not reconnect in step.
        delays = backoff_delays(0.1, self._settings.reconnect_max_delay)
        lost_at: float | None = None
        try:
            while True:
                with self._cond:
                    if self._closing:
                        return
                if self._conn is None:
                    if delay and self._sleep(delay):
                        return
                    try:
                        self._connect()
                    except AmqpTopologyError as exc:
                        with self._cond:
                            self._error = exc
                            self._cond.notify_all()
                        log.error("RabbitMQ consumer for cluster %r: %s", self._cluster, exc)
                        delay = max(next(delays), min(1.0, self._settings.reconnect_max_delay))
                        continue
                    except BrokerUnavailableError as exc:
                        if lost_at is None:
                            lost_at = time.monotonic()
                            log.warning("%s; retrying with back-off", exc)
                        delay = next(delays)
                        continue
                    finally:
                        self._started.set()
                    with self._cond:
                        self._error = None
                    if lost_at is not None:
                        log.warning(
                            "RabbitMQ consumer for cluster %r reconnected after %.1fs",
                            self._cluster,
                            time.monotonic() - lost_at,
                        )
                        lost_at = None
                    delay = 0.0
                    delays = backoff_delays(0.1, self._settings.reconnect_max_delay)
                try:
                    self._step()
                except _RECOVERABLE as exc:
                    lost_at = time.monotonic()
                    self.stats.connection_losses += 1
                    log.warning(
                        "RabbitMQ consumer for cluster %r lost its channel (%r); reconnecting "
                        "(deliveries of the old channel are void, RabbitMQ requeued them)",
                        self._cluster,
                        exc,
                    )
                    self._teardown()
                    delay = 0.1
                except Exception:
                    lost_at = time.monotonic()
                    self.stats.connection_losses += 1
                    log.exception(
                        "RabbitMQ consumer for cluster %r failed; reconnecting", self._cluster
                    )
                    self._teardown()
                    delay = 1.0
        finally:
            self._shutdown()

    def _sleep(self, seconds: float) -> bool:
        """Back-off that a ``close`` interrupts; True if closing."""
        deadline = time.monotonic() + seconds
        while True:
            with self._cond:
                if self._closing:
                    return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([self._wake_r], [], [], remaining)
            self._drain_wake()

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass

    def _connect(self) -> None:
        settings = self._settings
        conn = open_connection(
            settings.url,
            heartbeat=settings.heartbeat,
            connect_timeout=settings.connect_timeout,
            name=f"conveyor consumer {self._cluster}#{self._id}",
        )
        try:
            amqp_conn = conn.connection
            channel = amqp_conn.channel()
            channel.basic_qos(0, 1, False)
            if self._specs:
                self._topology.declare_exchange(channel, self._cluster)
            for spec in self._specs.values():
                self._topology.declare_queue(channel, spec)
            self._topology.declare_dead_letter_queue(channel)
            dl_channel = amqp_conn.channel()
            dl_confirms = ConfirmTracker(dl_channel)
        except AmqpTopologyError:
            close_quietly(conn, graceful=False)
            raise
        except TRANSPORT_ERRORS as exc:
            close_quietly(conn, graceful=False)
            raise BrokerUnavailableError(f"setting up RabbitMQ consumers failed: {exc!r}") from exc
        self._conn, self._amqp, self._channel = conn, amqp_conn, channel
        self._dl_channel, self._dl_confirms = dl_channel, dl_confirms
        self._epoch += 1
        self._broken = None
        self.stats.connections += 1
        now = time.monotonic()
        with self._cond:
            self._paused = dict.fromkeys(self._specs, now)
            idle = self._held is None and self._ready is None and not self._busy
        if idle:  # busy (a task runs): consume again once the runner is idle in receive()
            try:
                self._resume(list(self._specs))
            except TRANSPORT_ERRORS as exc:
                self._teardown()
                raise BrokerUnavailableError(f"consuming from RabbitMQ failed: {exc!r}") from exc

    def _teardown(self) -> None:
        """After a failure: void every delivery of this channel and drop the connection."""
        conn = self._conn
        self._epoch += 1
        self._conn = self._amqp = self._channel = self._dl_channel = None
        self._dl_confirms = None
        self._active.clear()
        self._tags.clear()
        self._inbox.clear()
        with self._cond:
            self._ready = None  # its message is back in the queue once the channel is gone
            self._paused = {}
        close_quietly(conn, graceful=True)

    def _shutdown(self) -> None:
        with self._cond:
            self._closing = True
            ready, self._ready = self._ready, None
            held, self._held = self._held, None
            if held is not None:
                held.settled = True
            self._cond.notify_all()
        if self._channel is not None:
            try:
                self._run_commands()
                for name in list(self._active):
                    self._pause(name)
                for delivery in (ready, held):
                    if delivery is not None and self._valid(delivery) and not delivery.early_acked:
                        self._channel.basic_reject(delivery.tag, requeue=True)
            except TRANSPORT_ERRORS as exc:
                log.debug("closing consumer: %r", exc)
        conn = self._conn
        self._conn = self._amqp = self._channel = self._dl_channel = None
        close_quietly(conn, graceful=True)
        self._wake_r.close()
        self._wake_w.close()

    def _step(self) -> None:
        self._run_commands()
        self._process_inbox()
        self._run_timers()
        self._process_inbox()
        amqp_conn = self._amqp
        wait = 0.0 if readable(amqp_conn) else self._wait_time()
        if wait > 0:
            ready, _, _ = select.select([amqp_conn.transport.sock, self._wake_r], [], [], wait)
            if self._wake_r in ready:
                self._drain_wake()
        pump(amqp_conn)
        self._process_inbox()
        if self._broken is not None:
            raise BrokerUnavailableError(self._broken)
        amqp_conn.heartbeat_tick(rate=2)

    def _wait_time(self) -> float:
        now = time.monotonic()
        wait = min(self._settings.heartbeat / 4, 1.0) if self._settings.heartbeat else 1.0
        with self._cond:
            held, ready = self._held, self._ready
            if self._commands:
                return 0.0
            if self._want_consume and self._paused and held is None:
                return 0.0
        if held is not None and not held.early_acked and held.epoch == self._epoch:
            wait = min(wait, held.received_at + self._early_after - now)
        if ready is not None:
            wait = min(wait, ready.received_at + self._ready_max_age - now)
        return max(wait, 0.0)

    def _valid(self, delivery: AmqpDelivery | None) -> bool:
        return delivery is not None and delivery.epoch == self._epoch and self._channel is not None

    def _run_commands(self) -> None:
        while True:
            with self._cond:
                if not self._commands:
                    return
                kind, delivery, names = self._commands.popleft()
            valid = self._valid(delivery)
            if kind == "pause":
                for name in list(self._active):
                    self._pause(name)
                if valid and delivery is not None:
                    self.stats.given_back += 1
                    log.debug("busy without a delivery: giving %r back", delivery)
                    self._give_back(delivery)
                continue
            if kind == "rotate":
                self._rotate(names)
                if valid and delivery is not None:
                    self._give_back(delivery)
                continue
            if delivery is None:
                continue
            starving = self._starving() if valid else []
            if starving:
                # Before the ack frees its consumer's prefetch slot: otherwise the broker would
                # push that queue's next message at once, ahead of the starving queues again.
                self._rotate(starving)
            if not valid:
                log.debug("%s of %r: its channel is gone, nothing sent", kind, delivery)
            elif delivery.early_acked:
                log.debug("%s of %r: already acked early, nothing sent", kind, delivery)
            elif kind == "ack":
                self._channel.basic_ack(delivery.tag)
            else:
                self._give_back(delivery)

    def _starving(self) -> list[str]:
        """Queues paused for ``MAX_PAUSE`` or longer, while the runner is idle (fairness)."""
        now = time.monotonic()
        with self._cond:
            if self._held is not None or self._busy or self._closing:
                return []
            return [name for name, since in self._paused.items() if now - since >= MAX_PAUSE]

    def _rotate(self, starving: Sequence[str]) -> None:
        """Give queues paused for long their turn: cancel the active ones, consume those.
        If they turn out empty, the next idle ``receive`` consumes everything again."""
        for name in list(self._active):
            if name not in starving:
                self._pause(name)
        self._resume(starving)

    def _run_timers(self) -> None:
        now = time.monotonic()
        with self._cond:
            held, ready = self._held, self._ready
            resume = (
                list(self._paused)
                if self._want_consume and held is None and not self._closing
                else []
            )
        if (
            held is not None
            and self._valid(held)
            and not held.early_acked
            and now >= held.received_at + self._early_after
        ):
            self._channel.basic_ack(held.tag)
            held.early_acked = True
            self.stats.early_acks += 1
            for name in list(self._active):
                self._pause(name)
            log.info(
                "task %s has held its message for %.0fs: acked it early (RabbitMQ's "
                "consumer_timeout is %gs) and stopped consuming until it ends; the store's "
                "lease protects the task from now on",
                held.task_id,
                now - held.received_at,
                self._settings.consumer_timeout,
            )
        if ready is not None and now >= ready.received_at + self._ready_max_age:
            with self._cond:
                take = self._ready is ready
                if take:
                    self._ready = None
            if take and self._valid(ready):
                log.info("nobody received %r for %.0fs: giving it back", ready, self._ready_max_age)
                self._give_back(ready)
        if resume:
            self._resume(resume)

    def _process_inbox(self) -> None:
        while self._inbox:
            message = self._inbox.popleft()
            info = message.delivery_info
            tag = info["delivery_tag"]
            spec = self._tags.get(info["consumer_tag"])
            if spec is None:  # not one of ours (cannot happen): never keep it
                self._channel.basic_reject(tag, requeue=True)
                continue
            try:
                decoded = decode(message.body, message.headers)
            except PoisonMessage as exc:
                self._dead_letter(message, spec, str(exc))
                continue
            delivery = AmqpDelivery(
                self, self._epoch, tag, spec, decoded, bool(info.get("redelivered"))
            )
            with self._cond:
                if (
                    not self._closing
                    and not self._busy
                    and self._ready is None
                    and self._held is None
                ):
                    self._ready = delivery
                    self._cond.notify_all()
                    continue
            # Busy: a hostage would wait for this runner while others idle. Give it back.
            self.stats.given_back += 1
            log.debug("busy: giving %r back for another runner", delivery)
            self._give_back(delivery)

    def _give_back(self, delivery: AmqpDelivery) -> None:
        """Cancel the delivery's queue consumer first (or the broker would push the message
        straight back to it), then requeue the message."""
        self._pause(delivery.queue.name)
        self._channel.basic_reject(delivery.tag, requeue=True)

    def _pause(self, name: str) -> None:
        with self._cond:
            self._paused.setdefault(name, time.monotonic())
        consumer_tag = self._active.pop(name, None)
        if consumer_tag is not None:
            self._channel.basic_cancel(consumer_tag)

    def _resume(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self._active or name not in self._specs:
                continue
            consumer_tag = f"conveyor.{self._id}.{self._epoch}.{next(self._tag_counter)}"
            self._tags[consumer_tag] = self._specs[name]
            self._channel.basic_consume(
                name,
                consumer_tag=consumer_tag,
                callback=self._inbox.append,
                on_cancel=self._on_server_cancel,
            )
            self._active[name] = consumer_tag
            with self._cond:
                self._paused.pop(name, None)

    def _on_server_cancel(self, consumer_tag: str) -> None:
        spec = self._tags.get(consumer_tag)
        self._broken = (
            f"RabbitMQ cancelled the consumer of queue {spec.name if spec else consumer_tag!r} "
            "(queue deleted or its leader moved)"
        )

    def _dead_letter(self, message: Any, spec: QueueSpec, reason: str) -> None:
        """Move a poison message to the dead-letter queue (confirmed), then ack it."""
        queue = self._topology.dead_letter_queue
        tag = message.delivery_info["delivery_tag"]
        confirms = self._dl_confirms
        assert confirms is not None and self._dl_channel is not None
        dead = dead_letter_message(message.body, message.headers, reason, spec.name)
        confirms.reset()
        self._dl_channel.basic_publish(dead, exchange="", routing_key=queue, mandatory=True)
        confirms.published(dead.properties["message_id"])
        confirms.wait(self._amqp, at_most=0, timeout=self._settings.confirm_timeout)
        if confirms.nacked or confirms.returned:
            log.error(
                "could not dead-letter a poison message from queue %s (%s): giving it back",
                spec.name,
                reason,
            )
            self._pause(spec.name)
            self._channel.basic_reject(tag, requeue=True)
            return
        self._channel.basic_ack(tag)
        self.stats.dead_lettered += 1
        log.warning("dead-lettered a message from queue %s to %s: %s", spec.name, queue, reason)
