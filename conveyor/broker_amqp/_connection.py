# mypy: disallow-untyped-calls=False
"""Opening (with failover over ``amqp://a;amqp://b`` lists), pumping and closing kombu/py-amqp
connections.

Neither kombu nor py-amqp is thread-safe: every connection here is used by one thread at a time
(the consumer's I/O thread, or a publisher under its lock). ``pump`` reads only what is already
on the socket, so an I/O loop can ``select`` on the socket and a wake-up pipe at the same time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import select
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Final

import amqp.exceptions
import kombu.exceptions
from kombu.connection import Connection

from conveyor.core.errors import BrokerUnavailableError
from conveyor.urls import mask_url, redact, split_url_list

log = logging.getLogger(__name__)

#: Everything a broker or network failure surfaces as (socket.timeout is an OSError).
TRANSPORT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    amqp.exceptions.AMQPError,
    kombu.exceptions.KombuError,
    OSError,
)


#: Seconds a synchronous AMQP call or a socket write may block before the connection is dropped.
RPC_TIMEOUT: Final = 15.0


def open_connection(
    url: str,
    *,
    heartbeat: float,
    connect_timeout: float,
    name: str,
    retry_for: float = 0.0,
) -> Connection:
    """Connect now to the first reachable entry of ``url`` (``amqp://a;amqp://b;amqp://c``).

    One call tries every entry once, starting with the one that connected last for this URL
    (see :class:`FailoverList`), so a reconnect after a node died goes straight to a live one
    and a dead first entry costs one refused (or timed-out) attempt, not a failed start. With
    ``retry_for`` > 0 the passes repeat with jittered exponential back-off until that many
    seconds have passed (start-up checks: a cluster that is restarting is waited for); with 0
    there is no retry loop and callers decide how to back off (the consumer's I/O thread).

    The list is iterated here rather than by kombu (``Connection('a;b')``): its
    ``ensure_connection(max_retries=0)`` raises before it ever switches host, any other
    ``max_retries`` sleeps between rounds inside the call, the rotation lives on a Connection
    that every reconnect replaces (so it always restarted at the dead first host), and only
    the last host's error survives.

    Raises:
        BrokerUnavailableError: no entry reachable (each one's error in the message, masked).
    """
    entries = FailoverList.of(url)
    deadline = time.monotonic() + retry_for
    delays = backoff_delays()
    while True:
        failures: list[tuple[str, str]] = []  # (masked entry, its error)
        for index, entry in entries.order():
            try:
                conn = _connect_one(
                    entry, heartbeat=heartbeat, connect_timeout=connect_timeout, name=name
                )
            except TRANSPORT_ERRORS as exc:
                failures.append((mask_url(entry), redact(str(exc), entry)))
                continue
            except ValueError as exc:  # a malformed entry: kombu may quote part of it
                raise ValueError(
                    f"invalid RabbitMQ URL {mask_url(entry)}: {redact(str(exc), entry)}"
                ) from None
            if failures:
                log.warning(
                    "RabbitMQ failover: connected to %s after %s",
                    mask_url(entry),
                    "; ".join(f"{where}: {error}" for where, error in failures),
                )
            entries.connected(index)
            return conn
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(next(delays), remaining))
    if len(failures) == 1:
        raise BrokerUnavailableError(
            f"cannot connect to RabbitMQ at {failures[0][0]}: {failures[0][1]}"
        )
    raise BrokerUnavailableError(
        f"cannot connect to RabbitMQ at any of the {len(failures)} URLs: "
        + "; ".join(f"{where} ({error})" for where, error in failures)
    )


def _connect_one(entry: str, *, heartbeat: float, connect_timeout: float, name: str) -> Connection:
    """One connection attempt to one URL (raises a TRANSPORT_ERRORS member on failure)."""
    conn = Connection(
        entry,
        heartbeat=heartbeat or 0,
        connect_timeout=connect_timeout,
        transport_options={
            "client_properties": {"connection_name": f"{name} pid={os.getpid()}"},
        },
    )
    try:
        conn.ensure_connection(max_retries=0)
    except BaseException:
        close_quietly(conn, graceful=False)
        raise
    # Synchronous calls (declare, cancel, close) and writes must not block forever on a
    # half-open connection; the I/O loops pass shorter explicit timeouts when they drain.
    with contextlib.suppress(OSError, AttributeError):
        conn.connection.transport.sock.settimeout(max(connect_timeout * 3, RPC_TIMEOUT))
    return conn


class FailoverList:
    """The entries of one broker URL, and which to try first: the one that connected last.

    Shared per URL string by every connection of the process (publisher, consumers, probes),
    so once one of them found the live node the others start there too. The order after the
    preferred entry is the list's own, wrapping around: an operator's "primary first" order is
    kept, and nobody retries the node that just failed before the others.
    """

    _known: ClassVar[dict[str, FailoverList]] = {}
    _known_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, url: str) -> None:
        self.entries: tuple[str, ...] = tuple(split_url_list(url)) or (url,)
        self._preferred = 0
        self._lock = threading.Lock()

    @classmethod
    def of(cls, url: str) -> FailoverList:
        with cls._known_lock:
            found = cls._known.get(url)
            if found is None:
                found = cls._known[url] = cls(url)
            return found

    def __len__(self) -> int:
        return len(self.entries)

    def order(self) -> list[tuple[int, str]]:
        """(index, entry) in the order to try them now."""
        with self._lock:
            first = self._preferred
        count = len(self.entries)
        return [((first + i) % count, self.entries[(first + i) % count]) for i in range(count)]

    def connected(self, index: int) -> None:
        with self._lock:
            self._preferred = index


def backoff_delays(
    base: float = 0.1, cap: float = 2.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Exponential back-off with "equal jitter": each delay is half fixed, half random.

    The fixed half keeps a retry from hammering a refusing node; the random half spreads the
    processes of a fleet that all lost the same cluster at the same moment, so their
    reconnects do not arrive in lockstep.
    """
    draw = rng or random.Random()
    step = base
    while True:
        ceiling = min(step, cap)
        yield ceiling / 2 + draw.uniform(0, ceiling / 2)
        step *= 2


def readable(amqp_conn: Any) -> bool:
    """Whether a frame (or part of one) is waiting: buffered by py-amqp, the TLS layer or the
    kernel."""
    transport = getattr(amqp_conn, "transport", None)
    if transport is None or transport.sock is None:
        raise BrokerUnavailableError("the RabbitMQ connection is closed")
    if getattr(transport, "_read_buffer", b""):
        return True
    sock = transport.sock
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    ready, _, _ = select.select([sock], [], [], 0)
    return bool(ready)


def pump(amqp_conn: Any, limit: int = 500) -> int:
    """Read and dispatch the frames already received (at most ``limit`` methods); how many."""
    count = 0
    while count < limit and readable(amqp_conn):
        try:
            amqp_conn.drain_events(timeout=0.2)
        except TimeoutError:
            break
        count += 1
    return count


def close_quietly(conn: Connection | None, *, graceful: bool) -> None:
    """Close a connection, never raising. ``graceful`` runs the AMQP close handshake (with a
    short timeout); otherwise the socket is just dropped (the connection is known to be dead)."""
    if conn is None:
        return
    try:
        if graceful and conn.connected:
            with contextlib.suppress(OSError, AttributeError):
                conn.connection.transport.sock.settimeout(2.0)
            conn.release()
        else:
            conn.collect()
    except Exception as exc:  # closing is best effort: the broker notices the socket going away
        log.debug("closing a RabbitMQ connection: %r", exc)
        with contextlib.suppress(Exception):
            conn.collect()
