"""How one transaction's statements reach its database: one executor per dialect.

The parts of the SQL store (:mod:`.clusters`, :mod:`.tasks`, :mod:`.claims`, …) build their
statements once and hand them to an executor; everything that differs between PostgreSQL and
SQLite *in how a statement is run* lives here, chosen once per transaction (by
:class:`.tx.SqlTx`):

* **Now.** :meth:`Executor.now` is the database clock on PostgreSQL (``now()``: the
  transaction's start, constant within it) and Python's UTC clock on SQLite (one machine, writers
  serialised). Statements refer to it through :meth:`Executor.now_expr` /
  :meth:`Executor.later_expr`; :meth:`Executor.times` builds their parameters. A PostgreSQL
  statement that returns ``now()`` (``tx_now``) primes the clock, saving a round trip.
* **The hot path.** On PostgreSQL, prebuilt statements of :mod:`.statements` are compiled once
  and sent as SQL text (:meth:`PgExecutor.hot`), or straight on the psycopg connection under the
  SQLAlchemy one (:meth:`PgExecutor.hot_rows`, :meth:`PgExecutor.driver_rows`): SQLAlchemy's
  per-execution work (cache key, compiled-cache lookup, result processing) cost more CPU than
  PostgreSQL spent running them. SQLite needs SQLAlchemy's type processing (UUIDs and times are
  text there), so :class:`SqliteExecutor` runs everything through SQLAlchemy Core.
* **Bulk inserts.** COPY or a pipelined ``executemany`` on PostgreSQL, multi-row INSERTs in
  chunks on SQLite.
* **Row locks.** SQLite has none (every transaction starts with ``BEGIN IMMEDIATE``): a statement
  that only takes locks is skipped there (:meth:`Executor.lock`). ``FOR UPDATE`` clauses of
  other statements are rendered by SQLAlchemy on PostgreSQL and dropped on SQLite.

Algorithms that differ (PostgreSQL's fused claim and completion, its ``mark_published``) are not
here: they are subclasses of the part they belong to (:class:`.claims.PgClaims`,
:class:`.outbox.PgOutbox`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, TypeVarTuple, overload

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import ColumnElement, Connection, CursorResult, Table, func, insert, select
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.selectable import TypedReturnsRows

from conveyor.store_sql.copy import COPY_THRESHOLD, copy_rows
from conveyor.store_sql.rows import CHUNK, chunks
from conveyor.store_sql.statements import Statements, later_expr, now_expr, statements

_Ts = TypeVarTuple("_Ts")
_Row = tuple[Any, ...]


class Executor(ABC):
    """Runs one transaction's statements on its connection (one subclass per dialect)."""

    #: Whether this is PostgreSQL (selects the prebuilt statements of that dialect).
    POSTGRESQL: ClassVar[bool]

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        #: The prebuilt statements of this dialect.
        self.sql: Statements = statements(self.POSTGRESQL)
        self._now: dt.datetime | None = None

    # -- time ----------------------------------------------------------------------------------
    @abstractmethod
    def now(self) -> dt.datetime:
        """The transaction's now (constant within it), aware UTC."""

    def prime_now(self, value: dt.datetime | None) -> None:
        """Take ``value`` (read from the database in this transaction) as now, if not known."""
        if self._now is None and value is not None:
            self._now = value.astimezone(dt.UTC)

    def now_expr(self) -> ColumnElement[Any]:
        """The transaction's now in a statement (see :meth:`times`)."""
        return now_expr(self.POSTGRESQL)

    def later_expr(self, name: str) -> ColumnElement[Any]:
        """The transaction's now plus the seconds bound as ``name`` (see :meth:`times`)."""
        return later_expr(self.POSTGRESQL, name)

    @abstractmethod
    def times(self, **seconds: float) -> dict[str, Any]:
        """Parameters for :meth:`now_expr` / :meth:`later_expr` (``name=seconds`` each)."""

    @abstractmethod
    def seconds_between(
        self, later: ColumnElement[Any], earlier: ColumnElement[Any]
    ) -> ColumnElement[Any]:
        """``later - earlier`` in seconds (a float), for aggregates."""

    @abstractmethod
    def minute_of(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        """A grouping key of the minute a timestamp column falls in (see :meth:`minute_start`)."""

    @abstractmethod
    def minute_start(self, key: Any) -> dt.datetime:
        """The start of the minute a :meth:`minute_of` key names, aware UTC."""

    # -- statements ----------------------------------------------------------------------------
    @overload
    def execute(self, stmt: TypedReturnsRows[*_Ts], params: Any = None) -> CursorResult[*_Ts]: ...
    @overload
    def execute(self, stmt: Executable, params: Any = None) -> CursorResult[*_Row]: ...
    def execute(self, stmt: Executable, params: Any = None) -> CursorResult[*_Row]:
        """A statement built on the spot, through SQLAlchemy Core (the cold paths)."""
        if params is None:
            return self.conn.execute(stmt)
        return self.conn.execute(stmt, params)

    @abstractmethod
    def hot(self, stmt: Any, params: dict[str, Any]) -> CursorResult[Any]:
        """A prebuilt statement of :mod:`.statements`, its result as SQLAlchemy's."""

    @abstractmethod
    def hot_rows(self, stmt: Any, params: dict[str, Any]) -> tuple[list[Mapping[Any, Any]], int]:
        """A prebuilt statement's rows (as mappings) and row count."""

    def lock(self, stmt: Any, params: dict[str, Any]) -> bool:
        """Run a statement that only takes row locks; whether it found a row. SQLite has no row
        locks (its writers are serialised): True there, without a statement."""
        return True

    @abstractmethod
    def insert(self, table: Table) -> Any:
        """The dialect's INSERT (with ``on_conflict_do_nothing`` / ``…_do_update``)."""

    def insert_new(self, table: Table, row: dict[str, Any], key: str) -> bool:
        """``INSERT … ON CONFLICT DO NOTHING``; whether the row was inserted."""
        stmt = self.insert(table).values(**row).on_conflict_do_nothing()
        return self.conn.execute(stmt.returning(table.c[key])).first() is not None

    def bulk_insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows that all have the same keys."""
        if not rows:
            return
        for chunk in chunks(rows, CHUNK // 2):
            self.conn.execute(insert(table), list(chunk))


class SqliteExecutor(Executor):
    """SQLite: everything through SQLAlchemy Core (it converts UUIDs and times from text)."""

    POSTGRESQL = False

    def now(self) -> dt.datetime:
        if self._now is None:
            self._now = dt.datetime.now(dt.UTC)
        return self._now

    def times(self, **seconds: float) -> dict[str, Any]:
        params: dict[str, Any] = {name: float(value) for name, value in seconds.items()}
        now = self.now()
        params["now"] = now
        for name, value in seconds.items():
            params[f"{name}_at"] = now + dt.timedelta(seconds=value)
        return params

    def seconds_between(
        self, later: ColumnElement[Any], earlier: ColumnElement[Any]
    ) -> ColumnElement[Any]:
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0

    def minute_of(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        # Fixed-width 'YYYY-MM-DD HH:MM:SS.ffffff' text: the first 16 characters.
        return func.substr(column, 1, 16)

    def minute_start(self, key: Any) -> dt.datetime:
        return dt.datetime.fromisoformat(f"{key}:00").replace(tzinfo=dt.UTC)

    def hot(self, stmt: Any, params: dict[str, Any]) -> CursorResult[Any]:
        return self.conn.execute(stmt, params)

    def hot_rows(self, stmt: Any, params: dict[str, Any]) -> tuple[list[Mapping[Any, Any]], int]:
        result = self.conn.execute(stmt, params)
        rows: list[Mapping[Any, Any]] = [r._mapping for r in result] if result.returns_rows else []
        return rows, result.rowcount

    def insert(self, table: Table) -> Any:
        return sqlite_dialect.insert(table)


class PgExecutor(Executor):
    """PostgreSQL: the hot statements as precompiled SQL text, some straight on psycopg."""

    POSTGRESQL = True

    def now(self) -> dt.datetime:
        if self._now is None:
            value = self.conn.execute(select(func.now())).scalar_one()
            self._now = value.astimezone(dt.UTC)
        return self._now

    def times(self, **seconds: float) -> dict[str, Any]:
        return {name: float(value) for name, value in seconds.items()}

    def seconds_between(
        self, later: ColumnElement[Any], earlier: ColumnElement[Any]
    ) -> ColumnElement[Any]:
        return func.extract("epoch", later - earlier)

    def minute_of(self, column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.floor(func.extract("epoch", column) / 60)

    def minute_start(self, key: Any) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(key) * 60, dt.UTC)

    def hot(self, stmt: Any, params: dict[str, Any]) -> CursorResult[Any]:
        """Its SQL was compiled once and is sent as is (``exec_driver_sql``); psycopg already
        returns the Python types conveyor uses (UUID, aware datetimes, bytes)."""
        sql, defaults = self.sql.driver_sql(stmt, self.conn.dialect)
        return self.conn.exec_driver_sql(sql, {**defaults, **params})

    def hot_rows(self, stmt: Any, params: dict[str, Any]) -> tuple[list[Mapping[Any, Any]], int]:
        sql, defaults = self.sql.driver_sql(stmt, self.conn.dialect)
        return self.driver_rows(sql, {**defaults, **params})  # type: ignore[return-value]

    def lock(self, stmt: Any, params: dict[str, Any]) -> bool:
        return bool(self.hot_rows(stmt, params)[0])

    def insert(self, table: Table) -> Any:
        return pg_dialect.insert(table)

    def insert_new(self, table: Table, row: dict[str, Any], key: str) -> bool:
        return bool(self.driver_rows(insert_sql(table.name, row, key), row)[0])

    def bulk_insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if len(rows) > COPY_THRESHOLD:
            copy_rows(self.conn, table, rows)
        else:  # psycopg's executemany pipelines the rows: one round trip
            self.driver_many(insert_sql(table.name, rows[0]), rows)

    # -- the psycopg connection ----------------------------------------------------------------
    def driver_rows(self, sql: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """SQL text run on the psycopg connection under the SQLAlchemy one (same transaction),
        rows as dicts, plus the row count. Skips SQLAlchemy's result machinery, which cost more
        than the statement on the per-task path."""
        driver = self.conn.connection.driver_connection
        with self._driver_errors(sql), driver.cursor(row_factory=dict_row) as cursor:  # type: ignore[union-attr]
            cursor.execute(sql, params)
            # pgresult, not cursor.description: that builds a Column object per result
            # column on every call (~7 % of a runner's CPU with the finish function's 43).
            result = cursor.pgresult
            rows = cursor.fetchall() if result is not None and result.nfields else []
            return rows, cursor.rowcount

    def driver_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """``executemany`` on the psycopg connection."""
        driver = self.conn.connection.driver_connection
        with self._driver_errors(sql), driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.executemany(sql, rows)

    @contextlib.contextmanager
    def _driver_errors(self, sql: str) -> Iterator[None]:
        """Driver errors wrapped as SQLAlchemy's (a lost connection invalidated), so the
        store's retries and error translation apply to the psycopg-level statements too."""
        try:
            yield
        except psycopg.Error as exc:
            driver = self.conn.connection.driver_connection
            lost = self.conn.dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
            if lost:
                self.conn.invalidate(exc)
            dialect = self.conn.dialect
            raise DBAPIError.instance(
                sql, None, exc, psycopg.Error, connection_invalidated=lost, dialect=dialect
            ) from exc


_INSERTS: dict[tuple[str, tuple[str, ...], str | None], str] = {}


def insert_sql(table: str, row: Mapping[str, Any], returning: str | None = None) -> str:
    """``INSERT INTO table (columns of row) VALUES (%(column)s, …)`` for psycopg (cached); with
    ``returning``, ``ON CONFLICT DO NOTHING RETURNING`` that column."""
    key = (table, tuple(row), returning)
    found = _INSERTS.get(key)
    if found is None:
        columns = ", ".join(f'"{name}"' for name in row)
        values = ", ".join(f"%({name})s" for name in row)
        found = f'INSERT INTO "{table}" ({columns}) VALUES ({values})'
        if returning is not None:
            found += f' ON CONFLICT DO NOTHING RETURNING "{returning}"'
        _INSERTS[key] = found
    return found
