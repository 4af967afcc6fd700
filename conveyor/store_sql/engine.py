"""Engines for the supported databases, and the classification of driver errors.

* PostgreSQL through psycopg 3: ``postgresql://``, ``postgres://`` and ``postgresql+psycopg://``
  URLs (the first two are normalised to the psycopg driver). No startup ``options`` are sent
  (PgBouncer refuses them): timestamps are converted to UTC in Python.
* SQLite through the standard library: ``sqlite:///path`` (the folder is created) or
  ``sqlite://`` in memory. WAL journal, a busy timeout, foreign keys on, and every transaction
  opened with ``BEGIN IMMEDIATE``: writers queue for the write lock up front instead of
  deadlocking when two readers try to upgrade to writers.
"""

from __future__ import annotations

import os
import re
import sqlite3
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, StaticPool

from conveyor.urls import mask_url as _mask_text

#: SQLSTATE classes/codes of PostgreSQL errors worth retrying the transaction for.
_PG_TRANSIENT_CODES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown (pg_terminate_backend, server shutdown)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (starting up, in recovery)
        "53300",  # too_many_connections
        "53400",  # configuration_limit_exceeded
    }
)


def mask_url(url: str | URL) -> str:
    """The URL with its passwords replaced by ``***`` (safe to log and show).

    :func:`conveyor.urls.mask_url` on the text: SQLAlchemy's ``hide_password`` leaves a
    ``?password=`` query parameter in clear and cannot parse a libpq multi-host URL at all.
    """
    if isinstance(url, URL):
        url = url.render_as_string(hide_password=False)
    return _mask_text(url)


#: A PostgreSQL URL split as SQLAlchemy splits it: the userinfo runs to the first ``@`` after
#: ``user:``, the host list to the first ``/`` or ``?``.
_PG_URL = re.compile(
    r"(?P<scheme>postgres(?:ql)?(?:\+\w+)?://)(?P<userinfo>[^:/]*(?::[^@]*)?@)?"
    r"(?P<hosts>[^/?#]*)(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?P<fragment>#.*)?",
    re.DOTALL,
)
_PG_HOST = re.compile(r"(?:\[(?P<ipv6>[^\]]*)\]|(?P<name>[^:\[\]]*))(?::(?P<port>\d*))?")


def expand_multi_host(url: str) -> str:
    """libpq's multi-host URL (``postgresql://u:p@h1:5433,h2:5434/db``) in the form SQLAlchemy
    parses (``postgresql://u:p@/db?host=h1,h2&port=5433,5434``); any other URL unchanged.

    SQLAlchemy's ``make_url`` reads ``5433,h2:5434`` as one port and fails on ``int()``, yet the
    authority form is what libpq documents and what operators copy from their HA setups. The
    query form is psycopg's own (libpq keeps trying the hosts in order), works for IPv6 hosts
    (``[::1]:5433``) and keeps every other parameter (``target_session_attrs`` …).

    Raises:
        ValueError: a malformed host or port, or hosts given in the authority and as ``?host=``.
    """
    match = _PG_URL.fullmatch(url)
    if match is None or "," not in match["hosts"]:
        return url
    hosts: list[str] = []
    ports: list[str] = []
    for entry in match["hosts"].split(","):
        host = _PG_HOST.fullmatch(entry)
        if host is None:
            raise ValueError(f"invalid host {entry!r} in a multi-host PostgreSQL URL")
        hosts.append(host["ipv6"] if host["ipv6"] is not None else host["name"])
        ports.append(host["port"] or "")
    query = [part for part in (match["query"] or "").split("&") if part]
    if any(part.split("=", 1)[0] in ("host", "hostaddr", "port") for part in query):
        raise ValueError(
            "give the hosts of a PostgreSQL URL either as host1:port1,host2:port2 after the @ "
            "or as ?host=…&port=…, not both"
        )
    multi = [f"host={','.join(hosts)}"]
    if any(ports):
        multi.append(f"port={','.join(ports)}")
    return (
        f"{match['scheme']}{match['userinfo'] or ''}{match['path'] or '/'}"
        f"?{'&'.join(multi + query)}{match['fragment'] or ''}"
    )


def normalize_url(url: str | URL) -> URL:
    """Pick the driver conveyor supports for each database.

    Raises:
        ValueError: not a PostgreSQL or SQLite URL.
    """
    parsed = make_url(expand_multi_host(url) if isinstance(url, str) else url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.get_driver_name() not in ("pysqlite", ""):
            raise ValueError(f"Unsupported SQLite driver in {mask_url(parsed)}: use sqlite:///path")
        return parsed.set(drivername="sqlite+pysqlite")
    raise ValueError(
        f"Unsupported database URL {mask_url(parsed)}: use postgresql://… or sqlite:///path"
    )


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(
    url: str | URL,
    *,
    connect_timeout: float = 10.0,
    pool_size: int = 10,
    max_overflow: int = 20,
    busy_timeout: float = 5.0,
    pooled: bool = True,
) -> Engine:
    """An engine configured as described in the module docstring."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        pg_args: dict[str, Any] = {
            "connect_timeout": max(round(connect_timeout), 1),
            "application_name": "conveyor",
        }
        if pooled:
            return create_engine(
                parsed,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=30,
                connect_args=pg_args,
            )
        return create_engine(parsed, poolclass=NullPool, connect_args=pg_args)

    sqlite_args: dict[str, Any] = {"check_same_thread": False, "timeout": busy_timeout}
    if is_memory_sqlite(parsed):
        engine = create_engine(parsed, poolclass=StaticPool, connect_args=sqlite_args)
    else:
        folder = os.path.dirname(os.path.abspath(str(parsed.database)))
        os.makedirs(folder, exist_ok=True)
        if pooled:
            engine = create_engine(
                parsed, pool_size=pool_size, max_overflow=max_overflow, connect_args=sqlite_args
            )
        else:
            engine = create_engine(parsed, poolclass=NullPool, connect_args=sqlite_args)

    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below (the driver's own
        # implicit BEGIN would be DEFERRED).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_transient(exc: BaseException) -> bool:
    """Whether rolling back and running the transaction again may succeed."""
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.OperationalError):
        message = str(orig).lower()
        return "locked" in message or "busy" in message
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_TRANSIENT_CODES or sqlstate.startswith("08")
    # psycopg raises OperationalError without a SQLSTATE for refused/lost connections.
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)


def describe(exc: SQLAlchemyError) -> str:
    """A one-line description of a driver error, without the SQL and its parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
