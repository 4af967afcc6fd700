"""``SqlStore``: the state store on PostgreSQL or SQLite (``conveyor.core.ports.Store``)."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from conveyor.core.errors import (
    AlreadyExistsError,
    ConveyorError,
    InfrastructureError,
    InvalidValueError,
    StoreUnavailableError,
)
from conveyor.store_sql.engine import (
    create_store_engine,
    describe,
    is_memory_sqlite,
    is_transient,
    mask_url,
    normalize_url,
)
from conveyor.store_sql.migrate import ensure_schema
from conveyor.store_sql.tx import SqlTx

T = TypeVar("T")
log = logging.getLogger(__name__)

#: First back-off delay after a transient failure, its growth factor and its cap (seconds).
BACKOFF_FIRST = 0.02
BACKOFF_FACTOR = 2.0
BACKOFF_MAX = 2.0


class SqlStore:
    """The durable state store on a SQL database.

    Args:
        url: ``postgresql://user:password@host:port/db`` (psycopg 3) or ``sqlite:///path``.
        migrate: migrate an empty database to the current schema at start (default). A
            non-empty database behind the code's schema raises SchemaOutdatedError either way.
        retry_timeout: how long transient failures (lost connection, deadlock, serialisation
            failure, SQLite "database is locked") are retried before StoreUnavailableError.
        startup_timeout: how long the first connection is retried at construction (default
            ``retry_timeout``); short for interactive commands that should fail fast.
        connect_timeout: seconds to wait for one connection attempt (PostgreSQL).
        pool_size, max_overflow: connection pool bounds (one connection per concurrent
            transaction).

    Raises:
        StoreUnavailableError: the database cannot be reached within ``retry_timeout``.
        SchemaOutdatedError: the database needs `conveyor db upgrade`.
        ValueError: the URL is neither PostgreSQL nor SQLite.
    """

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        retry_timeout: float = 30.0,
        startup_timeout: float | None = None,
        connect_timeout: float = 10.0,
        pool_size: int = 10,
        max_overflow: int = 20,
    ) -> None:
        self.url = url
        self.masked_url = mask_url(url)
        self.retry_timeout = retry_timeout
        parsed = normalize_url(url)
        self.dialect = parsed.get_backend_name()
        self._engine = create_store_engine(
            parsed,
            connect_timeout=connect_timeout,
            pool_size=pool_size,
            max_overflow=max_overflow,
        )
        # One in-memory SQLite connection is shared: transactions must take turns.
        self._serial = threading.RLock() if is_memory_sqlite(parsed) else None
        try:
            self._retrying(partial(self._check_schema, migrate), startup_timeout)
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlStore({self.masked_url!r})"

    def _check_schema(self, migrate: bool) -> None:
        with self._engine.connect() as connection:
            ensure_schema(connection, self.url, migrate)

    def run(self, fn: Callable[[SqlTx], T]) -> T:
        """Run ``fn`` in one transaction: commit if it returns, roll back if it raises.

        Transient failures roll back and run ``fn`` again with exponential back-off and jitter,
        for up to ``retry_timeout`` seconds; then StoreUnavailableError. Driver errors are
        translated: a unique-key violation → AlreadyExistsError, a value the database rejects →
        InvalidValueError (a ValueError), anything else → InfrastructureError.
        """
        return self._retrying(partial(self._run_once, fn))

    def _run_once(self, fn: Callable[[SqlTx], T]) -> T:
        if self._serial is not None:
            with self._serial:
                return self._transaction(fn)
        return self._transaction(fn)

    def _transaction(self, fn: Callable[[SqlTx], T]) -> T:
        with self._engine.connect() as connection, connection.begin():
            return fn(SqlTx(connection))

    def _retrying(self, call: Callable[[], T], timeout: float | None = None) -> T:
        started = time.monotonic()
        deadline = started + (self.retry_timeout if timeout is None else timeout)
        delay = BACKOFF_FIRST
        failures = 0
        while True:
            try:
                return call()
            except ConveyorError:
                raise
            except SQLAlchemyError as exc:
                if not is_transient(exc):
                    raise self._translate(exc) from exc
                failures += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreUnavailableError(
                        f"The database at {self.masked_url} is unavailable: {describe(exc)} "
                        f"(gave up after {failures} attempts in "
                        f"{time.monotonic() - started:.0f} s)"
                    ) from exc
                pause = min(delay * random.uniform(0.5, 1.5), remaining)
                log.debug(
                    "transient database error on %s (attempt %d), retrying in %.3f s: %s",
                    self.masked_url,
                    failures,
                    pause,
                    describe(exc),
                )
                time.sleep(pause)
                delay = min(delay * BACKOFF_FACTOR, BACKOFF_MAX)

    def _translate(self, exc: SQLAlchemyError) -> Exception:
        if isinstance(exc, IntegrityError):
            return AlreadyExistsError(f"A unique value is already taken: {describe(exc)}")
        if isinstance(exc, DataError):
            return InvalidValueError(f"The database rejected a value: {describe(exc)}")
        return InfrastructureError(f"Database error on {self.masked_url}: {describe(exc)}")

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()
