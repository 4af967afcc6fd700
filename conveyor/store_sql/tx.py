"""One transaction of the SQL store: the ``StoreTx`` primitives as SQLAlchemy Core statements.

Every primitive is one statement (or one bulk statement) touching only the rows it changes, so a
completion in a job of 10^6 tasks costs the same as in a job of ten. Conventions:

* **Now.** ``now()`` is the database clock on PostgreSQL (``now()``: the transaction's start,
  constant within it) and Python's UTC clock on SQLite (one machine, writers serialised). On
  PostgreSQL, statements that need the time use ``now()`` in SQL until the value has been read
  once, then bind the same value: both are equal inside a transaction.
* **Constants as literals.** States and zero counters are rendered as SQL literals, not bound
  parameters, so the partial indexes of :mod:`.schema` stay usable by prepared (generic) plans.
* **Locks.** On PostgreSQL ``lock_task`` is ``SELECT … FOR UPDATE``; ``claim_next``,
  ``expired_leases`` and ``claim_unpublished`` use ``FOR UPDATE SKIP LOCKED`` so concurrent
  claimers and sweepers never wait for each other. ``job_facts`` first takes the job row
  ``FOR NO KEY UPDATE`` (see its docstring). SQLite ignores these clauses: there, every
  transaction starts with ``BEGIN IMMEDIATE`` and writers are serialised.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Row,
    Text,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import DBAPIError, IntegrityError

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError, TaskNotFoundError
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier, parse_version
from conveyor.core.model import (
    AttemptRecord,
    ClaimedTask,
    Cluster,
    DispatchMessage,
    ExecutionStats,
    JobFacts,
    JobQuery,
    JobRecord,
    JobState,
    ProgressIndicator,
    RegisteredIdentifier,
    RunnerInfo,
    TaskError,
    TaskRecord,
    TaskState,
)
from conveyor.core.ports import FinishedTask
from conveyor.store_sql.copy import COPY_THRESHOLD, copy_rows
from conveyor.store_sql.queries import MonitoringQueries
from conveyor.store_sql.schema import (
    UtcDateTime,
    clusters,
    jobs,
    runners,
    task_attempts,
    task_dependencies,
    task_progress,
    tasks,
)
from conveyor.store_sql.statements import (
    FAILED,
    PG_FINISH_COMPUTED,
    PG_MARK_PUBLISHED,
    QUEUED,
    RUNNING,
    TASK_COLUMNS,
    ZERO,
    identifier_condition,
    job_active,
    later_expr,
    lit,
    now_expr,
    pg_claim_task,
    statements,
)

#: Rows per INSERT statement / ids per IN list in bulk operations (below every driver's limit on
#: bound parameters).
CHUNK = 2000

#: Longest values accepted (characters); longer ones raise ValueError before anything is written.
MAX_NAME = 256
MAX_VERSION = 32
MAX_SLUG = 63
MAX_SHORT_TEXT = 1024
MAX_DISPLAY = 1024 * 1024
MAX_KEY = 1024
#: Largest task input accepted by the adapter (the core applies its own, smaller default cap).
MAX_INPUT_BYTES = 256 * 1024 * 1024


def check_text(value: str, what: str, max_chars: int | None) -> str:
    """Reject what the database cannot store faithfully: non-UTF-8, NUL characters, oversize.

    Raises:
        ValueError: with a message naming ``what``.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if max_chars is not None and len(value) > max_chars:
        raise ValueError(f"{what} is too long: {len(value):,} characters (at most {max_chars:,})")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character, which cannot be stored")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} is not valid UTF-8 ({exc.reason} at position {exc.start})"
        ) from None
    return value


def clean_text(value: str | None) -> str | None:
    """Diagnostic text (error messages, tracebacks) made storable rather than rejected."""
    if value is None:
        return None
    value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _ids_text(ids: Sequence[uuid.UUID]) -> str:
    return ",".join(i.hex for i in ids)


def _ids_parse(value: str | None) -> tuple[Any, ...]:
    if not value:
        return ()
    return tuple(uuid.UUID(hex=part) for part in value.split(","))


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _utc(value: dt.datetime | None) -> Any:
    """An aware datetime in UTC (psycopg returns the session's time zone on raw statements)."""
    if value is None or value.tzinfo is dt.UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _error(type_: str | None, message: str | None, traceback: str | None) -> TaskError | None:
    if type_ is None:
        return None
    return TaskError(type_, message or "", traceback or "")


def _task_from(m: Mapping[Any, Any]) -> TaskRecord:
    return TaskRecord(
        id=m["id"],
        job_id=m["job_id"],
        parent_id=m["parent_id"],
        cluster=m["cluster"],
        identifier=TaskIdentifier(m["name"], m["version"]),
        input=bytes(m["input"]),
        display=m["display"],
        state=TaskState(m["state"]),
        depends_on=_ids_parse(m["depends_on"]),
        max_retries=m["max_retries"],
        optional=bool(m["optional"]),
        optional_path=_ids_parse(m["optional_path"]),
        timeout=m["timeout"],
        retry_count=m["retry_count"],
        crash_count=m["crash_count"],
        system_requeues=m["system_requeues"],
        attempt=m["attempt"],
        deps_open=m["deps_open"],
        open_children=m["open_children"],
        complete=bool(m["complete"]),
        subtree_failed=bool(m["subtree_failed"]),
        runner_id=m["runner_id"],
        lease_expires=_utc(m["lease_expires"]),
        not_before=_utc(m["not_before"]),
        created_at=_utc(m["created_at"]),
        started_at=_utc(m["started_at"]),
        stopped_at=_utc(m["stopped_at"]),
        error=_error(m["error_type"], m["error_message"], m["error_traceback"]),
        publish_pending=bool(m["publish_pending"]),
        publish_after=_utc(m["publish_after"]),
        published_at=_utc(m["published_at"]),
    )


def _job_from(m: Mapping[Any, Any]) -> JobRecord:
    return JobRecord(
        id=m["id"],
        name=m["name"],
        state=JobState(m["state"]),
        submitted_at=m["submitted_at"],
        cluster=m["cluster"],
        idempotency_key=m["idempotency_key"],
        root_count=m["root_count"],
        updated_at=m["updated_at"],
    )


def _runner_from(m: Mapping[Any, Any]) -> RunnerInfo:
    return RunnerInfo(
        id=m["id"],
        cluster=m["cluster"],
        host=m["host"],
        pid=m["pid"],
        identifiers=tuple(TaskIdentifier(n, v) for n, v in json.loads(m["identifiers"])),
        started_at=_utc(m["started_at"]),
        last_seen=m["last_seen"],
        state=m["state"],
        current_task=m["current_task"],
        tasks_computed=m["tasks_computed"],
        tasks_failed=m["tasks_failed"],
    )


def _mutable_values(task: TaskRecord) -> dict[str, Any]:
    """Every column ``save_task`` writes (all but identity, input, edges and creation)."""
    error = task.error
    return {
        "state": task.state.value,
        "display": check_text(task.display, "The task display", MAX_DISPLAY),
        "max_retries": task.max_retries,
        "timeout": task.timeout,
        "retry_count": task.retry_count,
        "crash_count": task.crash_count,
        "system_requeues": task.system_requeues,
        "attempt": task.attempt,
        "deps_open": task.deps_open,
        "open_children": task.open_children,
        "complete": task.complete,
        "subtree_failed": task.subtree_failed,
        "runner_id": task.runner_id,
        "lease_expires": task.lease_expires,
        "not_before": task.not_before,
        "started_at": task.started_at,
        "stopped_at": task.stopped_at,
        "error_type": clean_text(error.type) if error else None,
        "error_message": clean_text(error.message) if error else None,
        "error_traceback": clean_text(error.traceback) if error else None,
        "publish_pending": task.publish_pending,
        "publish_after": task.publish_after,
        "published_at": task.published_at,
    }


class SqlTx(MonitoringQueries):
    """One transaction of :class:`~conveyor.store_sql.store.SqlStore` (implements ``StoreTx``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pg = conn.dialect.name == "postgresql"
        self._sql = statements(self._pg)
        self._now: dt.datetime | None = None
        #: Current attempt of tasks this transaction locked or claimed (rows it alone may change).
        self._attempts: dict[TaskId, int] = {}
        #: Stored state of jobs whose facts this transaction read under the job row's lock (PG)
        #: or its exclusive write lock (SQLite): set_job_state skips writing the same state.
        self._job_states: dict[JobId, str] = {}
        #: Jobs inserted by this transaction (their tasks need no existence check).
        self._new_jobs: set[JobId] = set()

    @property
    def connection(self) -> Connection:
        """The transaction's connection (for adapter-level extra queries and tests)."""
        return self._conn

    # -- time ----------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        if self._now is None:
            if self._pg:
                value = self._conn.execute(select(func.now())).scalar_one()
                self._now = value.astimezone(dt.UTC)
            else:
                self._now = dt.datetime.now(dt.UTC)
        return self._now

    def times(self, **seconds: float) -> dict[str, Any]:
        """Parameters for :func:`now_expr`/:func:`later_expr` (``name=seconds`` each)."""
        params: dict[str, Any] = {name: float(value) for name, value in seconds.items()}
        if not self._pg:
            now = self.now()
            params["now"] = now
            for name, value in seconds.items():
                params[f"{name}_at"] = now + dt.timedelta(seconds=value)
        return params

    def _hot(self, stmt: Any, params: dict[str, Any]) -> CursorResult[Any]:
        """Run a prebuilt statement of :mod:`.statements`.

        On PostgreSQL its SQL was compiled once and is sent as is (``exec_driver_sql``):
        SQLAlchemy's per-execution work on a statement (cache key, compiled-cache lookup,
        result processing) cost more CPU than PostgreSQL spent running it. psycopg already
        returns the Python types conveyor uses (UUID, aware UTC datetimes, bytes). SQLite
        needs SQLAlchemy's type processing (UUIDs and times are text there).
        """
        if not self._pg:
            return self._conn.execute(stmt, params)
        sql, defaults = self._sql.driver_sql(stmt, self._conn.dialect)
        return self._conn.exec_driver_sql(sql, {**defaults, **params})

    def _driver_rows(self, sql: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """PostgreSQL only: run SQL text on the psycopg connection under the SQLAlchemy one (same
        transaction), rows as dicts, plus the row count. Skips SQLAlchemy's result machinery,
        which cost more than the statement on the per-task path."""
        driver = self._conn.connection.driver_connection
        with self._driver_errors(sql), driver.cursor(row_factory=dict_row) as cursor:  # type: ignore[union-attr]
            cursor.execute(sql, params)
            # pgresult, not cursor.description: that builds a Column object per result
            # column on every call (~7 % of a runner's CPU with the finish function's 43).
            result = cursor.pgresult
            rows = cursor.fetchall() if result is not None and result.nfields else []
            return rows, cursor.rowcount

    def _driver_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """PostgreSQL only: ``executemany`` on the psycopg connection."""
        driver = self._conn.connection.driver_connection
        with self._driver_errors(sql), driver.cursor() as cursor:  # type: ignore[union-attr]
            cursor.executemany(sql, rows)

    @contextlib.contextmanager
    def _driver_errors(self, sql: str) -> Iterator[None]:
        """Driver errors wrapped as SQLAlchemy's (a lost connection invalidated), so the
        store's retries and error translation apply to the psycopg-level statements too."""
        try:
            yield
        except psycopg.Error as exc:
            driver = self._conn.connection.driver_connection
            lost = self._conn.dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
            if lost:
                self._conn.invalidate(exc)
            dialect = self._conn.dialect
            raise DBAPIError.instance(
                sql, None, exc, psycopg.Error, connection_invalidated=lost, dialect=dialect
            ) from exc

    def _hot_rows(self, stmt: Any, params: dict[str, Any]) -> tuple[list[Mapping[Any, Any]], int]:
        """A prebuilt statement's rows (as mappings) and row count, on either database."""
        if not self._pg:
            result = self._conn.execute(stmt, params)
            rows: list[Mapping[Any, Any]] = (
                [r._mapping for r in result] if result.returns_rows else []
            )
            return rows, result.rowcount
        sql, defaults = self._sql.driver_sql(stmt, self._conn.dialect)
        return self._driver_rows(sql, {**defaults, **params})  # type: ignore[return-value]

    def _prime_now(self, value: dt.datetime | None) -> None:
        if self._now is None and value is not None:
            self._now = value.astimezone(dt.UTC)

    def _insert(self, table: Any) -> Any:
        if self._pg:
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    # -- clusters ------------------------------------------------------------------------------
    def get_cluster(self, slug: str) -> Cluster | None:
        """Prebuilt; on PostgreSQL it also reads the transaction's ``now()`` (every submission
        checks its clusters first, then needs the time)."""
        rows = self._hot_rows(self._sql.get_cluster, {"p_slug": slug})[0]
        if not rows:
            return None
        row = rows[0]
        if self._pg:
            self._prime_now(row["tx_now"])
        return Cluster(row["slug"], row["display_name"], bool(row["deletable"]))

    def list_clusters(self) -> list[Cluster]:
        rows = self._conn.execute(select(clusters).order_by(clusters.c.slug))
        return [Cluster(r.slug, r.display_name, bool(r.deletable)) for r in rows]

    def insert_cluster(self, cluster: Cluster) -> None:
        check_text(cluster.slug, "The cluster slug", MAX_SLUG)
        check_text(cluster.display_name, "The cluster name", MAX_SHORT_TEXT)
        stmt = (
            self._insert(clusters)
            .values(
                slug=cluster.slug,
                display_name=cluster.display_name,
                deletable=cluster.deletable,
            )
            .on_conflict_do_nothing()
            .returning(clusters.c.slug)
        )
        if self._conn.execute(stmt).first() is None:
            raise AlreadyExistsError(f"A cluster with slug {cluster.slug!r} already exists")

    def delete_cluster(self, slug: str) -> bool:
        result = self._conn.execute(
            delete(clusters).where(clusters.c.slug == slug, clusters.c.deletable == true())
        )
        return bool(result.rowcount)

    # -- jobs ----------------------------------------------------------------------------------
    def insert_job(self, job: JobRecord) -> None:
        check_text(job.name, "The job name", MAX_SHORT_TEXT)
        check_text(job.cluster, "The cluster slug", MAX_SLUG)
        if job.idempotency_key is not None:
            check_text(job.idempotency_key, "The idempotency key", MAX_KEY)
        values = {
            "id": job.id,
            "name": job.name,
            "state": job.state.value,
            "cluster": job.cluster,
            "idempotency_key": job.idempotency_key,
            "root_count": job.root_count,
            "submitted_at": job.submitted_at,
            "updated_at": job.updated_at,
        }
        if self._pg:
            inserted = bool(self._driver_rows(_insert_sql("jobs", values, "id"), values)[0])
        else:
            stmt = self._insert(jobs).values(**values).on_conflict_do_nothing()
            inserted = self._conn.execute(stmt.returning(jobs.c.id)).first() is not None
        if not inserted:
            if job.idempotency_key is not None:
                raise AlreadyExistsError(
                    f"A job with idempotency key {job.idempotency_key!r} already exists"
                )
            raise AlreadyExistsError(f"A job with id {job.id} already exists")
        self._new_jobs.add(job.id)

    def get_job(self, job_id: JobId) -> JobRecord | None:
        row = self._conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return _job_from(row._mapping) if row is not None else None

    def find_job_by_key(self, idempotency_key: str) -> JobRecord | None:
        row = self._conn.execute(
            select(jobs).where(jobs.c.idempotency_key == idempotency_key)
        ).first()
        return _job_from(row._mapping) if row is not None else None

    def set_job_state(self, job_id: JobId, state: JobState) -> bool:
        """A conditional UPDATE: the (hot) job row is written only when the state changes."""
        if self._job_states.get(job_id) == state.value:
            return False
        params = {"p_job_id": job_id, "p_state": state.value, **self.times()}
        if self._hot_rows(self._sql.set_job_state, params)[1]:
            if job_id in self._job_states:
                self._job_states[job_id] = state.value
            return True
        if self._conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
            raise JobNotFoundError(f"No job with id {job_id}")
        return False

    def job_facts(self, job_id: JobId, *, locked: bool = False) -> JobFacts:
        """Facts in one SELECT of EXISTS probes, each served by an index.

        On PostgreSQL the job row is first locked ``FOR NO KEY UPDATE`` (which does not block
        inserts of the job's tasks). Without it, two transactions finishing the last two tasks
        of a job concurrently would each see the other's task as unfinished (READ COMMITTED)
        and neither would write COMPLETED. With it, the facts of the later transaction are read
        after the earlier one committed. The lock is held for the rest of the transaction,
        which in the use cases is the job-state write and the commit. ``locked``: an earlier
        statement of this transaction took that lock already (``finish_computed``).
        """
        params = {"p_job_id": job_id}
        if self._pg and not locked and not self._hot_rows(self._sql.lock_job, params)[0]:
            raise JobNotFoundError(f"No job with id {job_id}")
        rows = self._hot_rows(self._sql.job_facts, params)[0]
        if not rows:
            raise JobNotFoundError(f"No job with id {job_id}")
        row = rows[0]
        self._job_states[job_id] = row["state"]
        return JobFacts(
            state=JobState(row["state"]),
            any_running=bool(row["any_running"]),
            any_failed=bool(row["any_failed"]),
            any_work_done=bool(row["any_work_done"]),
            all_roots_complete=bool(row["all_roots_complete"]),
        )

    def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        stmt = select(jobs).order_by(jobs.c.id.desc()).limit(query.limit)
        if query.before_id is not None:
            stmt = stmt.where(jobs.c.id < query.before_id)
        if query.states:
            stmt = stmt.where(jobs.c.state.in_([s.value for s in query.states]))
        if query.name:
            stmt = stmt.where(
                func.lower(jobs.c.name, type_=Text).contains(query.name.lower(), autoescape=True)
            )
        if query.cluster:
            stmt = stmt.where(jobs.c.cluster == query.cluster)
        if query.submitted_after is not None:
            stmt = stmt.where(jobs.c.submitted_at >= query.submitted_after)
        if query.submitted_before is not None:
            stmt = stmt.where(jobs.c.submitted_at < query.submitted_before)
        return [_job_from(r._mapping) for r in self._conn.execute(stmt)]

    def delete_job(self, job_id: JobId) -> bool:
        self._job_states.pop(job_id, None)
        job_tasks = select(tasks.c.id).where(tasks.c.job_id == job_id).scalar_subquery()
        for table in (task_progress, task_attempts, task_dependencies):
            self._conn.execute(delete(table).where(table.c.task_id.in_(job_tasks)))
        self._conn.execute(delete(tasks).where(tasks.c.job_id == job_id))
        return bool(self._conn.execute(delete(jobs).where(jobs.c.id == job_id)).rowcount)

    # -- tasks ---------------------------------------------------------------------------------
    def insert_tasks(self, tasks_: Sequence[TaskRecord]) -> None:
        """Bulk insert in chunks of multi-row INSERTs; edges go to ``task_dependencies``.

        Raises:
            JobNotFoundError: a task names a job that does not exist.
            AlreadyExistsError: a task id is taken.
            ValueError: a value cannot be stored (nothing is written).
        """
        if not tasks_:
            return
        rows: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        job_ids: set[JobId] = set()
        for task in tasks_:
            rows.append(_task_row(task))
            job_ids.add(task.job_id)
            if task.depends_on:
                counts = Counter(task.depends_on)
                edges.extend(
                    {"task_id": task.id, "depends_on_id": dep, "n": n} for dep, n in counts.items()
                )
        unknown = job_ids - self._new_jobs
        found = (
            set(self._conn.execute(select(jobs.c.id).where(jobs.c.id.in_(list(unknown)))).scalars())
            if unknown
            else set()
        )
        missing = unknown - found
        if missing:
            raise JobNotFoundError(f"No job with id {sorted(missing)[0]}")
        try:
            self._bulk_insert(tasks, rows)
            self._bulk_insert(task_dependencies, edges)
        except IntegrityError as exc:
            raise AlreadyExistsError(f"A task id is already taken: {exc.orig}") from exc

    def _bulk_insert(self, table: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._pg and len(rows) > COPY_THRESHOLD:
            copy_rows(self._conn, table, rows)
            return
        if self._pg:  # psycopg's executemany pipelines the rows: one round trip
            self._driver_many(_insert_sql(table.name, rows[0]), rows)
            return
        for chunk in _chunks(rows, CHUNK // 2):
            self._conn.execute(insert(table), list(chunk))

    def _select_task(self, task_id: TaskId, lock: bool) -> TaskRecord | None:
        stmt = self._sql.lock_task if lock else self._sql.select_task
        row = self._hot(stmt, {"p_task_id": task_id}).first()
        if row is None:
            return None
        mapping = row._mapping
        if self._pg:
            self._prime_now(mapping["tx_now"])
        task = _task_from(mapping)
        if lock:
            self._attempts[task.id] = task.attempt
        return task

    def get_task(self, task_id: TaskId) -> TaskRecord | None:
        return self._select_task(task_id, lock=False)

    def lock_task(self, task_id: TaskId) -> TaskRecord | None:
        return self._select_task(task_id, lock=True)

    def save_task(self, task: TaskRecord) -> None:
        params = {f"v_{k}": v for k, v in _mutable_values(task).items()}
        params["p_task_id"] = task.id
        if not self._hot(self._sql.save_task, params).rowcount:
            raise TaskNotFoundError(f"No task with id {task.id}")
        if task.id in self._attempts:
            self._attempts[task.id] = task.attempt

    def job_tasks(
        self, job_id: JobId, *, after: TaskId | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        stmt = select(tasks).where(tasks.c.job_id == job_id).order_by(tasks.c.id).limit(limit)
        if after is not None:
            stmt = stmt.where(tasks.c.id > after)
        return [_task_from(r._mapping) for r in self._conn.execute(stmt)]

    def _finish_claim(
        self, found: Row[Any] | Mapping[str, Any] | None, runner_id: str
    ) -> ClaimedTask | None:
        if found is None:
            return None
        row: Mapping[Any, Any] = found._mapping if isinstance(found, Row) else found
        self._prime_now(row["started_at"])
        self._attempts[row["id"]] = row["attempt"]
        if not self._pg:  # on PostgreSQL the claim statement inserted it
            self._conn.execute(
                self._sql.insert_attempt,
                {
                    "a_task_id": row["id"],
                    "a_attempt": row["attempt"],
                    "a_runner_id": runner_id,
                    "a_started_at": row["started_at"],
                },
            )
        return ClaimedTask(
            id=row["id"],
            job_id=row["job_id"],
            job_name=row["job_name"],
            parent_id=row["parent_id"],
            cluster=row["cluster"],
            identifier=TaskIdentifier(row["name"], row["version"]),
            input=bytes(row["input"]),
            display=row["display"],
            attempt=row["attempt"],
            retry_count=row["retry_count"],
            max_retries=row["max_retries"],
            optional_path=_ids_parse(row["optional_path"]),
            timeout=row["timeout"],
            lease_expires=_utc(row["lease_expires"]),
            depends_on=_ids_parse(row["depends_on"]),
        )

    def claim(self, task_id: TaskId, runner_id: str, lease_seconds: float) -> ClaimedTask | None:
        """One ``UPDATE … WHERE <dispatchable> RETURNING`` plus the attempt row's INSERT."""
        check_text(runner_id, "The runner id", MAX_SHORT_TEXT)
        params = {"p_task_id": task_id, "p_runner_id": runner_id, **self.times(lease=lease_seconds)}
        row = self._hot(self._sql.claim, params).first()
        return self._finish_claim(row, runner_id)

    def claim_next(
        self,
        cluster: str,
        identifiers: Sequence[RegisteredIdentifier],
        runner_id: str,
        lease_seconds: float,
    ) -> ClaimedTask | None:
        """``UPDATE … WHERE id = (SELECT … ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)``."""
        if not identifiers:
            return None
        check_text(runner_id, "The runner id", MAX_SHORT_TEXT)
        params = {"p_cluster": cluster, "p_runner_id": runner_id, **self.times(lease=lease_seconds)}
        params.update(_identifier_params(identifiers))
        stmt = self._sql.claim_next(len(identifiers))
        return self._finish_claim(self._hot(stmt, params).first(), runner_id)

    def has_dispatchable(self, cluster: str, identifiers: Sequence[RegisteredIdentifier]) -> bool:
        if not identifiers:
            return False
        stmt = select(
            exists().where(
                tasks.c.cluster == bindparam("p_cluster"),
                identifier_condition(tasks, len(identifiers)),
                tasks.c.state == QUEUED,
                tasks.c.deps_open == ZERO,
                job_active(tasks),
            )
        )
        params = {"p_cluster": cluster, **_identifier_params(identifiers)}
        return bool(self._conn.execute(stmt, params).scalar())

    def claim_task(
        self,
        task_id: TaskId,
        cluster: str,
        runner_id: str,
        lease_seconds: float,
        job_state: JobState,
        job_states_from: Collection[JobState],
    ) -> ClaimedTask | None:
        """On PostgreSQL one statement (:data:`.statements.PG_CLAIM_TASK`): the claim, its
        attempt row, the job row's lock and the conditional job-state write. The cluster is
        one more condition of the claim's WHERE (the row is found by its primary key)."""
        check_text(runner_id, "The runner id", MAX_SHORT_TEXT)
        if not self._pg:
            params = {
                "p_task_id": task_id,
                "p_cluster": cluster,
                "p_runner_id": runner_id,
                **self.times(lease=lease_seconds),
            }
            claimed = self._finish_claim(
                self._hot(self._sql.claim_in_cluster, params).first(), runner_id
            )
            if claimed is not None:
                facts_state = self._conn.execute(
                    select(jobs.c.state).where(jobs.c.id == claimed.job_id)
                ).scalar_one()
                if JobState(facts_state) in job_states_from:
                    self.set_job_state(claimed.job_id, job_state)
            return claimed
        params = {
            "p_task_id": task_id,
            "p_cluster": cluster,
            "p_runner_id": runner_id,
            "lease": float(lease_seconds),
            "p_job_state": job_state.value,
        }
        rows = self._driver_rows(pg_claim_task(job_states_from), params)[0]
        if not rows:
            return None
        row = rows[0]
        self._job_states[row["job_id"]] = job_state.value if row["promoted"] else row["job_state"]
        return self._finish_claim(row, runner_id)

    def finish_computed(
        self, task_id: TaskId, attempt: int, display: str | None, publish_lease: float | None
    ) -> FinishedTask | None:
        """On PostgreSQL one statement (:data:`.statements.PG_FINISH_COMPUTED`) and the job's
        facts; on SQLite the finer primitives, in the same order."""
        if display is not None:
            check_text(display, "The task display", MAX_DISPLAY)
        if not self._pg:
            return self._finish_computed_stepwise(task_id, attempt, display, publish_lease)
        params = {
            "p_task_id": task_id,
            "p_attempt": attempt,
            "p_display": display,
            "p_publish": publish_lease is not None,
            "lease": float(publish_lease or 0.0),
        }
        rows = self._driver_rows(PG_FINISH_COMPUTED, params)[0]
        done: TaskRecord | None = None
        parent: TaskRecord | None = None
        released: list[TaskRecord] = []
        facts: JobFacts | None = None
        for found in rows:
            kind = found["r_kind"]
            if kind == "j":
                continue
            if kind == "f":
                facts = JobFacts(
                    state=JobState(found["r_job_state"]),
                    any_running=bool(found["r_any_running"]),
                    any_failed=bool(found["r_any_failed"]),
                    any_work_done=bool(found["r_any_work_done"]),
                    all_roots_complete=bool(found["r_all_roots_complete"]),
                )
                continue
            record = _task_from({key[2:]: value for key, value in found.items()})
            if kind == "d":
                self._prime_now(found["r_tx_now"])
                done = record
            elif kind == "p":
                parent = record
            else:
                released.append(record)
        if done is None:
            return None
        if facts is None:  # cannot happen: the function reads them whenever it recorded
            facts = self.job_facts(done.job_id, locked=True)
        self._job_states[done.job_id] = facts.state.value
        self._attempts[task_id] = attempt
        released.sort(key=lambda t: t.id)
        return FinishedTask(done.job_id, parent, released, facts)

    def _finish_computed_stepwise(
        self, task_id: TaskId, attempt: int, display: str | None, publish_lease: float | None
    ) -> FinishedTask | None:
        task = self.lock_task(task_id)
        if task is None or task.attempt != attempt or task.state is not TaskState.RUNNING:
            return None
        task.state = TaskState.COMPUTED
        task.stopped_at = self.now()
        task.lease_expires = None
        task.error = None
        task.open_children = 0
        if display is not None:
            task.display = display
        self.save_task(task)
        self.end_attempt(task_id, attempt, "computed", None)
        self.mark_complete(task_id)
        released = self.release_dependents(task_id, publish_lease)
        parent = None
        if task.parent_id is not None:
            parent = self.decrement_open_children(task.parent_id)
        return FinishedTask(task.job_id, parent, released, self.job_facts(task.job_id))

    def extend_lease(
        self, task_id: TaskId, attempt: int, lease_seconds: float
    ) -> dt.datetime | None:
        params = {"p_task_id": task_id, "p_attempt": attempt, **self.times(lease=lease_seconds)}
        row = self._hot(self._sql.extend_lease, params).first()
        return _utc(row.lease_expires) if row is not None else None

    def set_display(self, task_id: TaskId, attempt: int, display: str) -> bool:
        check_text(display, "The task display", MAX_DISPLAY)
        params = {"p_task_id": task_id, "p_attempt": attempt, "p_display": display}
        return bool(self._hot(self._sql.set_display, params).rowcount)

    def decrement_open_children(self, task_id: TaskId) -> TaskRecord:
        """``UPDATE … SET open_children = open_children - 1 … RETURNING``."""
        row = self._hot(self._sql.decrement_open_children, {"p_task_id": task_id}).first()
        if row is None:
            raise TaskNotFoundError(f"No task with id {task_id}")
        return _task_from(row._mapping)

    def mark_complete(self, task_id: TaskId) -> bool:
        params = {"p_task_id": task_id}
        if self._hot(self._sql.mark_complete, params).rowcount:
            return True
        if self._hot(self._sql.task_exists, params).first() is None:
            raise TaskNotFoundError(f"No task with id {task_id}")
        return False

    def release_dependents(self, task_id: TaskId, publish_lease: float | None) -> list[TaskRecord]:
        """One ``UPDATE … FROM task_dependencies … RETURNING``; concurrent releases of one
        dependent serialise on its row, so exactly one of them sees ``deps_open`` reach 0."""
        if publish_lease is None:
            rows = self._hot(self._sql.release, {"p_task_id": task_id})
        else:
            params = {"p_task_id": task_id, **self.times(lease=publish_lease)}
            rows = self._hot(self._sql.release_and_publish, params)
        ready = [r.id for r in rows if r.state == TaskState.QUEUED.value and r.deps_open == 0]
        if not ready:
            return []
        released: list[TaskRecord] = []
        for chunk in _chunks(sorted(ready)):
            stmt = select(*TASK_COLUMNS).where(tasks.c.id.in_(list(chunk)))
            released += [_task_from(r._mapping) for r in self._conn.execute(stmt)]
        return sorted(released, key=lambda t: t.id)

    def queued_descendants(self, task_id: TaskId) -> list[TaskId]:
        """A recursive CTE down ``parent_id`` (index ``ix_tasks_parent_id_id``)."""
        subtree = (
            select(tasks.c.id, tasks.c.state)
            .where(tasks.c.parent_id == task_id)
            .cte("subtree", recursive=True)
        )
        child = tasks.alias("child")
        subtree = subtree.union_all(
            select(child.c.id, child.c.state).where(child.c.parent_id == subtree.c.id)
        )
        stmt = select(subtree.c.id).where(subtree.c.state == QUEUED).order_by(subtree.c.id)
        return list(self._conn.execute(stmt).scalars())

    def any_subtree_failed(self, task_ids: Sequence[TaskId]) -> bool:
        """Whether a boundary failed; on PostgreSQL the boundary rows are locked (in id order).

        The use cases read this before creating subtasks inside an optional subtree, while a
        concurrent failure in that subtree sets ``subtree_failed`` and skips the queued tasks
        it finds. Under READ COMMITTED each could miss the other (subtasks created QUEUED
        after the skip pass). The lock orders them: the failing transaction's write of the
        boundary waits for this one to commit (then its skip pass sees the new subtasks), or
        this read waits for the failure to commit (then the subtasks are created SKIPPED).
        ``FOR NO KEY UPDATE`` rather than ``FOR SHARE``: the same transaction often goes on to
        update the boundary (``decrement_open_children``), and upgrading shared locks held by
        several transactions deadlocks.
        """
        if not task_ids:
            return False
        ids = sorted(set(task_ids))
        stmt = select(tasks.c.subtree_failed).where(tasks.c.id.in_(ids)).order_by(tasks.c.id)
        if self._pg:
            stmt = stmt.with_for_update(key_share=True)
        return any(self._conn.execute(stmt).scalars())

    def expired_leases(self, limit: int, overdue: float = 0.0) -> list[TaskRecord]:
        """RUNNING rows past their lease by ``overdue`` seconds, ``FOR UPDATE SKIP LOCKED``
        (sweepers never wait)."""
        stmt = (
            select(*TASK_COLUMNS)
            .where(
                tasks.c.state == RUNNING,
                tasks.c.lease_expires <= later_expr(self._pg, "overdue"),
            )
            .order_by(tasks.c.lease_expires)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        params = self.times(overdue=-overdue)
        found = [_task_from(r._mapping) for r in self._conn.execute(stmt, params)]
        for task in found:
            self._attempts[task.id] = task.attempt
        return found

    def requeue_failed_tasks(self, job_id: JobId) -> int:
        stmt = (
            update(tasks)
            .where(tasks.c.job_id == job_id, tasks.c.state == FAILED)
            .values(
                state=QUEUED,
                retry_count=0,
                crash_count=0,
                system_requeues=0,
                error_type=None,
                error_message=None,
                error_traceback=None,
                not_before=None,
                stopped_at=None,
            )
        )
        return int(self._conn.execute(stmt).rowcount)

    def republish_ready(self, job_id: JobId, lease_seconds: float) -> list[DispatchMessage]:
        stmt = (
            update(tasks)
            .where(tasks.c.job_id == job_id, tasks.c.state == QUEUED, tasks.c.deps_open == ZERO)
            .values(publish_pending=True, publish_after=later_expr(self._pg, "lease"))
            .returning(tasks.c.id, tasks.c.job_id, tasks.c.cluster, tasks.c.name, tasks.c.version)
        )
        return _messages(self._conn.execute(stmt, self.times(lease=lease_seconds)))

    def mark_published(self, task_ids: Sequence[TaskId]) -> None:
        """On PostgreSQL one ``UPDATE … WHERE id = ANY(array)`` per call: an expanded IN list of
        thousands of ids cost more Python time to render than the update took (a 100k fan-out
        is marked in chunks of 5,000 right after each is confirmed)."""
        ids = list(task_ids)
        if not ids:
            return
        if self._pg:
            self._driver_rows(PG_MARK_PUBLISHED, {"p_ids": ids})
            return
        stmt = (
            update(tasks)
            .where(
                tasks.c.id.in_(bindparam("ids", expanding=True)), tasks.c.publish_pending == true()
            )
            .values(publish_pending=False, published_at=now_expr(self._pg))
        )
        for chunk in _chunks(ids):
            self._conn.execute(stmt, {"ids": list(chunk), **self.times()})

    def claim_unpublished(self, lease_seconds: float, limit: int) -> list[DispatchMessage]:
        """Take the publish lease of due outbox rows (``FOR UPDATE SKIP LOCKED`` on PG)."""
        outbox = tasks.alias("outbox")
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.publish_pending == true(),
                or_(
                    outbox.c.publish_after.is_(None),
                    outbox.c.publish_after <= now_expr(self._pg),
                ),
            )
            .order_by(outbox.c.publish_after)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(tasks)
            .where(tasks.c.id.in_(due.scalar_subquery()), tasks.c.publish_pending == true())
            .values(publish_after=later_expr(self._pg, "lease"))
            .returning(tasks.c.id, tasks.c.job_id, tasks.c.cluster, tasks.c.name, tasks.c.version)
        )
        return _messages(self._conn.execute(stmt, self.times(lease=lease_seconds)))

    # -- attempts and progress ------------------------------------------------------------------
    def end_attempt(
        self, task_id: TaskId, attempt: int, outcome: str, error: TaskError | None
    ) -> None:
        params = {
            "p_task_id": task_id,
            "p_attempt": attempt,
            "p_outcome": check_text(outcome, "The attempt outcome", 16),
            "p_error_type": clean_text(error.type) if error else None,
            "p_error_message": clean_text(error.message) if error else None,
            "p_error_traceback": clean_text(error.traceback) if error else None,
            **self.times(),
        }
        self._hot(self._sql.end_attempt, params)

    def task_attempts(self, task_id: TaskId) -> list[AttemptRecord]:
        rows = self._conn.execute(
            select(task_attempts)
            .where(task_attempts.c.task_id == task_id)
            .order_by(task_attempts.c.attempt)
        )
        return [
            AttemptRecord(
                task_id=r.task_id,
                attempt=r.attempt,
                runner_id=r.runner_id,
                started_at=r.started_at,
                ended_at=r.ended_at,
                outcome=r.outcome,
                error=_error(r.error_type, r.error_message, r.error_traceback),
            )
            for r in rows
        ]

    def write_progress(
        self, task_id: TaskId, attempt: int, progress: Mapping[str | None, tuple[int, int]]
    ) -> bool:
        """Replace the attempt's indicators (labels not named again are dropped)."""
        current = self._attempts.get(task_id)
        if current is None:
            current = self._hot(self._sql.task_attempt, {"p_task_id": task_id}).scalar()
        if current != attempt:
            return False
        if not progress:
            return True
        rows = []
        for label, (total, done) in progress.items():
            if label is not None:
                check_text(label, "A progress label", MAX_SHORT_TEXT)
            rows.append(
                {
                    "task_id": task_id,
                    "attempt": attempt,
                    "unlabeled": label is None,
                    "label": label if label is not None else "",
                    "total": int(total),
                    "done": int(done),
                }
            )
        self._conn.execute(
            delete(task_progress).where(
                task_progress.c.task_id == task_id, task_progress.c.attempt == attempt
            )
        )
        self._conn.execute(insert(task_progress), rows)
        return True

    def job_progress(self, job_id: JobId) -> list[ProgressIndicator]:
        """One aggregate: progress rows joined to their task on its current attempt."""
        p = task_progress
        stmt = (
            select(
                p.c.unlabeled,
                p.c.label,
                func.sum(p.c.total).label("total"),
                func.sum(p.c.done).label("done"),
            )
            .select_from(p.join(tasks, and_(tasks.c.id == p.c.task_id)))
            .where(tasks.c.job_id == job_id, tasks.c.attempt == p.c.attempt)
            .group_by(p.c.unlabeled, p.c.label)
        )
        indicators = [
            ProgressIndicator(None if r.unlabeled else r.label, int(r.total), int(r.done))
            for r in self._conn.execute(stmt)
        ]
        return sorted(indicators, key=lambda i: (i.label is not None, i.label or ""))

    def task_counts(self, job_id: JobId) -> dict[TaskState, int]:
        stmt = (
            select(tasks.c.state, func.count())
            .where(tasks.c.job_id == job_id)
            .group_by(tasks.c.state)
        )
        return {TaskState(state): int(n) for state, n in self._conn.execute(stmt)}

    def job_stats(self, job_id: JobId) -> ExecutionStats:
        a = task_attempts
        now = self.now()
        job_attempts = a.join(tasks, tasks.c.id == a.c.task_id)
        duration: ColumnElement[Any]
        if self._pg:
            duration = func.extract(
                "epoch", func.coalesce(a.c.ended_at, literal(now, UtcDateTime)) - a.c.started_at
            )
        else:
            duration = (
                func.julianday(func.coalesce(a.c.ended_at, literal(now, UtcDateTime)))
                - func.julianday(a.c.started_at)
            ) * 86400.0
        stmt = (
            select(
                func.min(a.c.started_at).label("first"),
                func.max(a.c.ended_at).label("last"),
                func.coalesce(func.sum(duration), 0).label("compute"),
                func.count().label("attempts"),
                func.count(a.c.ended_at).label("ended"),
            )
            .select_from(job_attempts)
            .where(tasks.c.job_id == job_id)
        )
        row = self._conn.execute(stmt).one()
        first: dt.datetime | None = row.first
        last: dt.datetime | None = row.last
        compute = dt.timedelta(seconds=max(float(row.compute), 0.0))
        end = now if row.attempts != row.ended else last
        elapsed = (end - first) if first is not None and end is not None else dt.timedelta()
        parallelism = compute / elapsed if elapsed.total_seconds() > 0 else 0.0
        counts = self.task_counts(job_id)
        return ExecutionStats(
            first_task_started_at=first,
            last_task_stopped_at=last,
            compute_time=compute,
            elapsed_time=elapsed,
            parallelism=parallelism,
            total_tasks=sum(counts.values()),
            tasks_by_state=counts,
        )

    # -- runners -------------------------------------------------------------------------------
    def upsert_runner(self, runner: RunnerInfo) -> None:
        check_text(runner.id, "The runner id", MAX_SHORT_TEXT)
        check_text(runner.host, "The runner host", MAX_SHORT_TEXT)
        values = {
            "id": runner.id,
            "cluster": check_text(runner.cluster, "The cluster slug", MAX_SLUG),
            "host": runner.host,
            "pid": runner.pid,
            "identifiers": json.dumps([[i.name, i.version] for i in runner.identifiers]),
            "started_at": runner.started_at,
            "last_seen": self.now(),
            "state": check_text(runner.state, "The runner state", 16),
            "current_task": runner.current_task,
            "tasks_computed": runner.tasks_computed,
            "tasks_failed": runner.tasks_failed,
        }
        stmt = self._insert(runners).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[runners.c.id],
            set_={k: v for k, v in values.items() if k != "id"},
        )
        self._conn.execute(stmt)

    def runner_heartbeat(
        self, runner_id: str, current_task: TaskId | None, computed: int, failed: int
    ) -> None:
        stmt = (
            update(runners)
            .where(runners.c.id == runner_id)
            .values(
                last_seen=now_expr(self._pg),
                current_task=current_task,
                tasks_computed=computed,
                tasks_failed=failed,
                state=case((runners.c.state == lit("gone"), lit("online")), else_=runners.c.state),
            )
        )
        self._conn.execute(stmt, self.times())

    def set_runner_state(self, runner_id: str, state: str) -> None:
        check_text(state, "The runner state", 16)
        self._conn.execute(update(runners).where(runners.c.id == runner_id).values(state=state))

    def mark_silent_runners(self, silent_seconds: float) -> int:
        stmt = (
            update(runners)
            .where(
                runners.c.state == lit("online"), runners.c.last_seen < later_expr(self._pg, "ago")
            )
            .values(state="gone")
        )
        return int(self._conn.execute(stmt, self.times(ago=-silent_seconds)).rowcount)

    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]:
        stmt = select(runners).order_by(runners.c.last_seen.desc(), runners.c.id)
        if not include_gone:
            stmt = stmt.where(runners.c.state == lit("online"))
        return [_runner_from(r._mapping) for r in self._conn.execute(stmt)]


_INSERTS: dict[tuple[str, tuple[str, ...], str | None], str] = {}


def _insert_sql(table: str, row: Mapping[str, Any], returning: str | None = None) -> str:
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


def _identifier_params(identifiers: Sequence[RegisteredIdentifier]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for i, ident in enumerate(identifiers):
        params[f"name_{i}"] = ident.name
        params[f"major_{i}"] = ident.major
        params[f"minor_{i}"] = ident.max_minor
    return params


def _messages(rows: Iterable[Row[Any]]) -> list[DispatchMessage]:
    messages = [
        DispatchMessage(r.id, r.job_id, r.cluster, TaskIdentifier(r.name, r.version)) for r in rows
    ]
    messages.sort(key=lambda m: m.task_id)
    return messages


def _task_row(task: TaskRecord) -> dict[str, Any]:
    """A task as an INSERT row, validated."""
    ident = task.identifier
    check_text(ident.name, "The task name", MAX_NAME)
    check_text(task.cluster, "The cluster slug", MAX_SLUG)
    if len(ident.version) > MAX_VERSION:
        raise ValueError(f"The task version {ident.version!r} is too long")
    if not isinstance(task.input, bytes | bytearray | memoryview):
        raise ValueError(f"A task input must be bytes, got {type(task.input).__name__}")
    if len(task.input) > MAX_INPUT_BYTES:
        raise ValueError(
            f"The task input is {len(task.input):,} bytes, over the store's limit of "
            f"{MAX_INPUT_BYTES:,} bytes"
        )
    row = _mutable_values(task)
    major, minor = parse_version(ident.version)
    row.update(
        id=task.id,
        job_id=task.job_id,
        parent_id=task.parent_id,
        cluster=task.cluster,
        name=ident.name,
        version=ident.version,
        major=major,
        minor=minor,
        input=bytes(task.input),
        depends_on=_ids_text(task.depends_on),
        optional=task.optional,
        optional_path=_ids_text(task.optional_path),
        created_at=task.created_at,
    )
    return row
