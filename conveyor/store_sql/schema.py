"""The SQL schema of the state store, as SQLAlchemy Core tables.

This module describes the schema at the migration head; the migrations in
``conveyor/store_sql/migrations/versions`` create it step by step and are the source of truth for
existing databases (a test checks that both agree).

Choices worth knowing:

* Ids are UUIDv7 (``Uuid``: native ``uuid`` on PostgreSQL, 32 hex characters on SQLite); both
  sort by creation time, so ``ORDER BY id`` is creation order.
* Timestamps go through :class:`UtcDateTime`: ``timestamptz`` on PostgreSQL, fixed-width ISO text
  on SQLite (so SQL comparisons stay correct), always timezone-aware UTC in Python.
* A task's ``depends_on`` and ``optional_path`` are kept on the row as comma-separated hex ids (so
  a task is read in one statement, in order); dependency edges are also kept in
  ``task_dependencies`` with a multiplicity ``n`` (a task may name one dependency twice, and its
  ``deps_open`` then counts it twice), indexed by ``depends_on_id`` for dependency release.
* No foreign keys on the task tables: they would cost one trigger per inserted row on a 10^5
  fan-out. Rows of one job are written and deleted by this adapter only (``insert_tasks`` checks
  that the job exists, ``delete_job`` removes every dependent row).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    text,
)
from sqlalchemy.types import TypeEngine

#: Fixed-width text form of a UTC timestamp on SQLite: sorts like the instant it names.
SQLITE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp: ``timestamptz`` on PostgreSQL, ISO text on SQLite.

    Naive datetimes are taken as UTC; values read back are always aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(26))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"Expected a datetime, got {type(value).__name__}: {value!r}")
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.strftime(SQLITE_TIME_FORMAT)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

clusters = Table(
    "clusters",
    metadata,
    Column("slug", String(63), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("deletable", Boolean, nullable=False, default=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("cluster", String(63), nullable=False),
    Column("idempotency_key", Text, nullable=True),
    Column("root_count", Integer, nullable=False, default=0),
    Column("submitted_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=True),
    Index("uq_jobs_idempotency_key", "idempotency_key", unique=True),
    Index("ix_jobs_state_id", "state", "id"),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("job_id", Uuid, nullable=False),
    Column("parent_id", Uuid, nullable=True),
    Column("cluster", String(63), nullable=False),
    Column("name", Text, nullable=False),
    Column("version", String(32), nullable=False),
    Column("major", Integer, nullable=False),
    Column("minor", Integer, nullable=False),
    Column("input", LargeBinary, nullable=False),
    Column("display", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("depends_on", Text, nullable=False, default=""),
    Column("max_retries", Integer, nullable=False, default=0),
    Column("optional", Boolean, nullable=False, default=False),
    Column("optional_path", Text, nullable=False, default=""),
    Column("timeout", Float, nullable=True),
    Column("retry_count", Integer, nullable=False, default=0),
    Column("crash_count", Integer, nullable=False, default=0),
    Column("system_requeues", Integer, nullable=False, default=0),
    Column("attempt", Integer, nullable=False, default=0),
    Column("deps_open", Integer, nullable=False, default=0),
    Column("open_children", Integer, nullable=False, default=0),
    Column("complete", Boolean, nullable=False, default=False),
    Column("subtree_failed", Boolean, nullable=False, default=False),
    Column("runner_id", Text, nullable=True),
    Column("lease_expires", UtcDateTime, nullable=True),
    Column("not_before", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("stopped_at", UtcDateTime, nullable=True),
    Column("error_type", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("error_traceback", Text, nullable=True),
    Column("publish_pending", Boolean, nullable=False, default=False),
    Column("publish_after", UtcDateTime, nullable=True),
    Column("published_at", UtcDateTime, nullable=True),
    # Partial-index predicates are written the way SQLAlchemy renders the queries' conditions on
    # each dialect (states as literals, booleans as ``= 1`` on SQLite) so both planners match them.
    # claim_next: the oldest claimable task of (cluster, name, major) in id order; ``minor`` is a
    # trailing key column so ``minor <= max_minor`` is checked inside the index while the scan
    # still yields ids in order (with minor before id the planner would have to sort).
    Index(
        "ix_tasks_claimable",
        "cluster",
        "name",
        "major",
        "id",
        "minor",
        postgresql_where=text("state = 'QUEUED' AND deps_open = 0"),
        sqlite_where=text("state = 'QUEUED' AND deps_open = 0"),
    ),
    # job_tasks (keyset pages of one job) and per-job bulk statements.
    Index("ix_tasks_job_id_id", "job_id", "id"),
    # job_facts EXISTS probes, task_counts, requeue_failed_tasks, republish_ready.
    Index("ix_tasks_job_id_state", "job_id", "state"),
    # queued_descendants (recursive walk down the tree) and keyset pages of a task's children
    # in id order (monitoring: a 10^5 fan-out is paged, never sorted). Migration 0003.
    Index("ix_tasks_parent_id_id", "parent_id", "id"),
    # expired_leases: only RUNNING rows are indexed.
    Index(
        "ix_tasks_lease_expires",
        "lease_expires",
        postgresql_where=text("state = 'RUNNING'"),
        sqlite_where=text("state = 'RUNNING'"),
    ),
    # claim_unpublished: the outbox, only pending rows are indexed.
    Index(
        "ix_tasks_outbox",
        "publish_after",
        postgresql_where=text("publish_pending"),
        sqlite_where=text("publish_pending = 1"),
    ),
    # job_facts.any_work_done: queued tasks that ran before (retried, expired, given back).
    Index(
        "ix_tasks_requeued",
        "job_id",
        postgresql_where=text("state = 'QUEUED' AND attempt > 0"),
        sqlite_where=text("state = 'QUEUED' AND attempt > 0"),
    ),
)

#: Columns ``save_task`` writes: all but identity, input, edges and creation time.
MUTABLE_TASK_COLUMNS = (
    "state",
    "display",
    "max_retries",
    "timeout",
    "retry_count",
    "crash_count",
    "system_requeues",
    "attempt",
    "deps_open",
    "open_children",
    "complete",
    "subtree_failed",
    "runner_id",
    "lease_expires",
    "not_before",
    "started_at",
    "stopped_at",
    "error_type",
    "error_message",
    "error_traceback",
    "publish_pending",
    "publish_after",
    "published_at",
)

task_dependencies = Table(
    "task_dependencies",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("depends_on_id", Uuid, primary_key=True),
    #: How many times ``task_id`` names ``depends_on_id`` (it counts that often in deps_open).
    Column("n", Integer, nullable=False, default=1),
    Index("ix_task_dependencies_depends_on_id", "depends_on_id"),
)

task_attempts = Table(
    "task_attempts",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    Column("runner_id", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("error_type", Text, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("error_traceback", Text, nullable=True),
)

task_progress = Table(
    "task_progress",
    metadata,
    Column("task_id", Uuid, primary_key=True),
    Column("attempt", Integer, primary_key=True),
    #: True for the unlabelled indicator (label None); ``label`` is then ''.
    Column("unlabeled", Boolean, primary_key=True),
    Column("label", Text, primary_key=True),
    Column("total", BigInteger, nullable=False),
    Column("done", BigInteger, nullable=False),
)

runners = Table(
    "runners",
    metadata,
    Column("id", Text, primary_key=True),
    Column("cluster", String(63), nullable=False),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    #: JSON list of [name, version] pairs.
    Column("identifiers", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("current_task", Uuid, nullable=True),
    Column("tasks_computed", Integer, nullable=False, default=0),
    Column("tasks_failed", Integer, nullable=False, default=0),
    Index("ix_runners_state_last_seen", "state", "last_seen"),
)

# -- monitoring indexes (migration 0003; see conveyor/store_sql/reads.py) -----------------------
# Pages of a job's root tasks: one small entry per root. Also job_facts.all_roots_complete,
# scanned backwards for the newest open root (migration 0005).
Index(
    "ix_tasks_roots",
    tasks.c.job_id,
    tasks.c.id,
    postgresql_where=text("parent_id IS NULL"),
    sqlite_where=text("parent_id IS NULL"),
)
# Recent failures: only FAILED / FAILED_OPTIONAL rows are indexed.
Index(
    "ix_tasks_failed",
    tasks.c.stopped_at,
    postgresql_where=text("state IN ('FAILED', 'FAILED_OPTIONAL')"),
    sqlite_where=text("state IN ('FAILED', 'FAILED_OPTIONAL')"),
)
# Attempts ended since an instant: tasks/s and the duration histogram.
Index("ix_task_attempts_ended_at", task_attempts.c.ended_at)
