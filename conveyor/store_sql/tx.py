"""One transaction of the SQL store (``StoreTx``): the parts, composed over one executor.

:class:`SqlTx` picks the dialect's executor and part classes once, when the transaction starts
(:data:`DIALECTS`), and exposes the parts the port names::

    tx.clusters  SqlClusters   clusters.py
    tx.jobs      SqlJobs       jobs.py      job rows, state, facts
    tx.tasks     SqlTasks      tasks.py     per-task primitives
    tx.claims    SqlClaims     claims.py    claims and the fused completion (PgClaims on PG)
    tx.outbox    SqlOutbox     outbox.py    publish leases (PgOutbox on PG)
    tx.attempts  SqlAttempts   attempts.py  attempt rows, progress, job stats
    tx.runners   SqlRunners    runners.py
    tx.reads     SqlReads      reads.py     the monitoring queries

Every part runs its statements through the executor (:mod:`.executor`: how a statement reaches
PostgreSQL or SQLite), maps rows with :mod:`.rows` and shares what the transaction learned
about the rows it holds through one :class:`.memo.TxMemo`. Parts never import each other: a
part that composes others (claims, attempts) is given them here, typed by their port.

Cost: the parts are built eagerly, about 7 µs per transaction (measured on PostgreSQL); lazy
properties would save that but charge every ``tx.<part>`` access instead. The hot path sends
the same statements as before the split (3 per claim + completion cycle through ``claim_task``,
6 through ``claim_next``).

Locks: on PostgreSQL ``lock_task`` is ``SELECT … FOR UPDATE``; ``claim_next``,
``expired_leases`` and ``claim_unpublished`` use ``FOR UPDATE SKIP LOCKED`` so concurrent
claimers and sweepers never wait for each other; ``job_facts`` first takes the job row
``FOR NO KEY UPDATE``. SQLite ignores these clauses: there, every transaction starts with
``BEGIN IMMEDIATE`` and writers are serialised.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection

from conveyor.store_sql.attempts import SqlAttempts
from conveyor.store_sql.claims import PgClaims, SqlClaims
from conveyor.store_sql.clusters import SqlClusters
from conveyor.store_sql.executor import Executor, PgExecutor, SqliteExecutor
from conveyor.store_sql.jobs import SqlJobs
from conveyor.store_sql.memo import TxMemo
from conveyor.store_sql.outbox import PgOutbox, SqlOutbox
from conveyor.store_sql.reads import SqlReads
from conveyor.store_sql.runners import SqlRunners
from conveyor.store_sql.tasks import SqlTasks


@dataclass(frozen=True, slots=True)
class Dialect:
    """The executor and the dialect-specific parts of one database."""

    executor: type[Executor]
    claims: type[SqlClaims]
    outbox: type[SqlOutbox]


#: Supported databases by SQLAlchemy dialect name.
DIALECTS: dict[str, Dialect] = {
    "postgresql": Dialect(PgExecutor, PgClaims, PgOutbox),
    "sqlite": Dialect(SqliteExecutor, SqlClaims, SqlOutbox),
}


class SqlTx:
    """One transaction of :class:`~conveyor.store_sql.store.SqlStore` (implements ``StoreTx``)."""

    __slots__ = (
        "_ex",
        "attempts",
        "claims",
        "clusters",
        "jobs",
        "outbox",
        "reads",
        "runners",
        "tasks",
    )

    def __init__(self, conn: Connection) -> None:
        dialect = DIALECTS[conn.dialect.name]
        ex = self._ex = dialect.executor(conn)
        memo = TxMemo()
        self.clusters = SqlClusters(ex)
        self.jobs = SqlJobs(ex, memo)
        self.tasks = SqlTasks(ex, memo)
        self.attempts = SqlAttempts(ex, memo, self.tasks)
        self.claims = dialect.claims(ex, memo, self.tasks, self.jobs, self.attempts)
        self.outbox = dialect.outbox(ex)
        self.runners = SqlRunners(ex)
        self.reads = SqlReads(ex)

    @property
    def connection(self) -> Connection:
        """The transaction's connection (for adapter-level extra queries and tests)."""
        return self._ex.conn

    @property
    def executor(self) -> Executor:
        """How this transaction's statements reach the database (tests read plans through it)."""
        return self._ex

    def now(self) -> dt.datetime:
        return self._ex.now()
