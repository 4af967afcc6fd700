# mypy: disallow-untyped-calls=False
"""Opening, pumping and closing kombu/py-amqp connections.

Neither kombu nor py-amqp is thread-safe: every connection here is used by one thread at a time
(the consumer's I/O thread, or a publisher under its lock). ``pump`` reads only what is already
on the socket, so an I/O loop can ``select`` on the socket and a wake-up pipe at the same time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
from typing import Any, Final

import amqp.exceptions
import kombu.exceptions
from kombu.connection import Connection

from conveyor.core.errors import BrokerUnavailableError
from conveyor.urls import mask_url, redact

log = logging.getLogger(__name__)

#: Everything a broker or network failure surfaces as (socket.timeout is an OSError).
TRANSPORT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    amqp.exceptions.AMQPError,
    kombu.exceptions.KombuError,
    OSError,
)


#: Seconds a synchronous AMQP call or a socket write may block before the connection is dropped.
RPC_TIMEOUT: Final = 15.0


def open_connection(url: str, *, heartbeat: float, connect_timeout: float, name: str) -> Connection:
    """Connect now (one attempt, no retry loop: callers decide how to back off).

    Raises:
        BrokerUnavailableError: unreachable, refused or authentication failed.
    """
    conn = Connection(
        url,
        heartbeat=heartbeat or 0,
        connect_timeout=connect_timeout,
        transport_options={
            "client_properties": {"connection_name": f"{name} pid={os.getpid()}"},
        },
    )
    try:
        conn.ensure_connection(max_retries=0)
    except TRANSPORT_ERRORS as exc:
        close_quietly(conn, graceful=False)
        raise BrokerUnavailableError(
            f"cannot connect to RabbitMQ at {mask_url(url)}: {redact(str(exc), url)}"
        ) from exc
    # Synchronous calls (declare, cancel, close) and writes must not block forever on a
    # half-open connection; the I/O loops pass shorter explicit timeouts when they drain.
    with contextlib.suppress(OSError, AttributeError):
        conn.connection.transport.sock.settimeout(max(connect_timeout * 3, RPC_TIMEOUT))
    return conn


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
