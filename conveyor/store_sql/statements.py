"""Prebuilt SQL statements of the hot paths (claim, completion, job facts), one set per dialect.

Building a SQLAlchemy statement costs more Python time than running a simple one on a local
PostgreSQL, so the statements every claim and completion runs are built once per dialect with
bound parameters and reused.

Time: statements refer to "now" and "now + N seconds" through :func:`now_expr` and
:func:`later_expr`. On PostgreSQL they are ``now()`` (the transaction's start, constant within
it: the database clock) and ``now() + :name * interval '1 second'``; on SQLite they are bound
parameters ``:now`` and ``:<name>_at`` computed in Python. ``Executor.times`` (:mod:`.executor`)
builds the parameters for both forms.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Dialect,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)

from conveyor.core.model import DONE_STATES, INACTIVE_JOB_STATES, TaskState
from conveyor.store_sql.schema import (
    MUTABLE_TASK_COLUMNS,
    UtcDateTime,
    clusters,
    jobs,
    task_attempts,
    task_dependencies,
    tasks,
)


def lit(value: str) -> ColumnElement[str]:
    """A string constant rendered inline (only ever used with enum values, never user data),
    so partial indexes stay usable by prepared (generic) plans."""
    return literal_column(f"'{value}'", String)


QUEUED = lit(TaskState.QUEUED.value)
RUNNING = lit(TaskState.RUNNING.value)
FAILED = lit(TaskState.FAILED.value)
ZERO = literal_column("0", Integer)
INACTIVE = [lit(s.value) for s in sorted(INACTIVE_JOB_STATES)]
DONE = [lit(s.value) for s in sorted(DONE_STATES)]
TASK_COLUMNS = list(tasks.c)


def now_expr(pg: bool) -> ColumnElement[Any]:
    """The transaction's now."""
    if pg:
        return func.now()
    return bindparam("now", type_=UtcDateTime)


def later_expr(pg: bool, name: str) -> ColumnElement[Any]:
    """The transaction's now plus the seconds bound as ``name``."""
    if pg:
        return func.now() + literal_column("interval '1 second'") * bindparam(name, type_=Float)
    return bindparam(f"{name}_at", type_=UtcDateTime)


def job_active(table: Any) -> ColumnElement[bool]:
    """The task's job is still dispatching (neither FAILED, CANCELED nor COMPLETED)."""
    return exists().where(jobs.c.id == table.c.job_id, jobs.c.state.not_in(INACTIVE))


def claimable(pg: bool, table: Any) -> list[ColumnElement[bool]]:
    """Dispatchable: QUEUED, ready, ``not_before`` passed, job active."""
    return [
        table.c.state == QUEUED,
        table.c.deps_open == ZERO,
        or_(table.c.not_before.is_(None), table.c.not_before <= now_expr(pg)),
        job_active(table),
    ]


def identifier_condition(table: Any, count: int) -> ColumnElement[bool]:
    """Tasks one of ``count`` identifiers can run; binds ``name_i``, ``major_i``, ``minor_i``."""
    return or_(
        *(
            and_(
                table.c.name == bindparam(f"name_{i}"),
                table.c.major == bindparam(f"major_{i}", type_=Integer),
                table.c.minor <= bindparam(f"minor_{i}", type_=Integer),
            )
            for i in range(count)
        )
    )


class Statements:
    """The hot statements of one dialect."""

    def __init__(self, pg: bool) -> None:
        self.pg = pg
        #: The claim statements insert the claimed attempt's row themselves (PostgreSQL's
        #: data-modifying CTE, :meth:`with_attempt_row`); elsewhere the caller inserts it
        #: with :attr:`insert_attempt`.
        self.claim_records_attempt = pg
        task_id = bindparam("p_task_id", type_=tasks.c.id.type)
        job_id = bindparam("p_job_id", type_=jobs.c.id.type)
        now = now_expr(pg)
        tx_now = [func.now().label("tx_now")] if pg else []

        self.select_task = select(*TASK_COLUMNS, *tx_now).where(tasks.c.id == task_id)
        self.get_cluster = select(clusters, *tx_now).where(clusters.c.slug == bindparam("p_slug"))
        self.lock_task = self.select_task.with_for_update()
        self.save_task = (
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(
                {
                    name: bindparam(f"v_{name}", type_=tasks.c[name].type)
                    for name in MUTABLE_TASK_COLUMNS
                }
            )
        )

        job_name = select(jobs.c.name).where(jobs.c.id == tasks.c.job_id).scalar_subquery()
        self.claim_values = {
            "state": RUNNING,
            "attempt": tasks.c.attempt + 1,
            "runner_id": bindparam("p_runner_id"),
            "started_at": now,
            "stopped_at": None,
            "lease_expires": later_expr(pg, "lease"),
            "not_before": None,
            "publish_pending": False,
        }
        self.claim_returning = [
            tasks.c.id,
            tasks.c.job_id,
            tasks.c.parent_id,
            tasks.c.cluster,
            tasks.c.name,
            tasks.c.version,
            tasks.c.input,
            tasks.c.display,
            tasks.c.attempt,
            tasks.c.retry_count,
            tasks.c.max_retries,
            tasks.c.optional_path,
            tasks.c.timeout,
            tasks.c.lease_expires,
            tasks.c.depends_on,
            tasks.c.started_at,
            job_name.label("job_name"),
        ]
        self.claim = self.with_attempt_row(
            update(tasks)
            .where(tasks.c.id == task_id, *claimable(pg, tasks))
            .values(self.claim_values)
            .returning(*self.claim_returning)
        )
        #: ``claim`` of a task of one cluster (``claim_task`` on SQLite; PostgreSQL has its own
        #: statement, :data:`_PG_CLAIM_TASK`).
        self.claim_in_cluster = self.with_attempt_row(
            update(tasks)
            .where(
                tasks.c.id == task_id,
                tasks.c.cluster == bindparam("p_cluster"),
                *claimable(pg, tasks),
            )
            .values(self.claim_values)
            .returning(*self.claim_returning)
        )
        self.insert_attempt = insert(task_attempts).values(
            task_id=bindparam("a_task_id", type_=tasks.c.id.type),
            attempt=bindparam("a_attempt", type_=Integer),
            runner_id=bindparam("a_runner_id"),
            started_at=bindparam("a_started_at", type_=UtcDateTime),
            outcome="running",
        )
        self._claim_next: dict[int, Any] = {}
        self._claim_next_lock = threading.Lock()
        self._compiled: dict[int, tuple[str, dict[str, Any]]] = {}
        self._keep: list[Any] = []

        self.lock_job = select(jobs.c.id).where(jobs.c.id == job_id).with_for_update(key_share=True)

        def probe(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
            return exists().where(tasks.c.job_id == job_id, *conditions)

        self.job_facts = select(
            jobs.c.state,
            probe(tasks.c.state == RUNNING).label("any_running"),
            probe(tasks.c.state == FAILED).label("any_failed"),
            or_(
                probe(tasks.c.state.in_(DONE)),
                probe(
                    tasks.c.state.in_([RUNNING, FAILED]),
                    or_(tasks.c.attempt > ZERO, tasks.c.retry_count > ZERO),
                ),
                # retry_count > 0 implies attempt > 0: a retry follows a failed execution.
                probe(tasks.c.state == QUEUED, tasks.c.attempt > ZERO),
            ).label("any_work_done"),
            # The newest open root, scanned backwards on ix_tasks_roots: it stops at once when
            # roots run in queue order, where NOT EXISTS stepped over every root done so far
            # (migration 0005).
            select(tasks.c.id)
            .where(tasks.c.job_id == job_id, tasks.c.parent_id.is_(None), ~tasks.c.complete)
            .order_by(tasks.c.id.desc())
            .limit(1)
            .scalar_subquery()
            .is_(None)
            .label("all_roots_complete"),
        ).where(jobs.c.id == job_id)
        self.set_job_state = (
            update(jobs)
            .where(jobs.c.id == job_id, jobs.c.state != bindparam("p_state"))
            .values(state=bindparam("p_state"), updated_at=now)
        )

        guard = [
            tasks.c.id == task_id,
            tasks.c.attempt == bindparam("p_attempt", type_=Integer),
            tasks.c.state == RUNNING,
        ]
        self.extend_lease = (
            update(tasks)
            .where(*guard)
            .values(lease_expires=later_expr(pg, "lease"))
            .returning(tasks.c.lease_expires)
        )
        self.set_display = update(tasks).where(*guard).values(display=bindparam("p_display"))
        self.task_attempt = select(tasks.c.attempt).where(tasks.c.id == task_id)
        self.end_attempt = (
            update(task_attempts)
            .where(
                task_attempts.c.task_id == task_id,
                task_attempts.c.attempt == bindparam("p_attempt", type_=Integer),
            )
            .values(
                ended_at=now,
                outcome=bindparam("p_outcome"),
                error_type=bindparam("p_error_type"),
                error_message=bindparam("p_error_message"),
                error_traceback=bindparam("p_error_traceback"),
            )
        )
        self.mark_complete = (
            update(tasks).where(tasks.c.id == task_id, ~tasks.c.complete).values(complete=True)
        )
        self.task_exists = select(tasks.c.id).where(tasks.c.id == task_id)
        self.decrement_open_children = (
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(open_children=tasks.c.open_children - 1)
            .returning(*TASK_COLUMNS)
        )

        edge = task_dependencies
        remaining = tasks.c.deps_open - edge.c.n
        # Only what tells whether a dependent became ready comes back: the full rows of the
        # (few) released ones are read afterwards. A sink of a 10^5 fan-in would otherwise send
        # its whole dependency list back on every release.
        returning = [tasks.c.id, tasks.c.state, tasks.c.deps_open]
        release_where = [tasks.c.id == edge.c.task_id, edge.c.depends_on_id == task_id]
        self.release = (
            update(tasks).where(*release_where).values(deps_open=remaining).returning(*returning)
        )
        now_ready = and_(remaining == ZERO, tasks.c.state == QUEUED)
        self.release_and_publish = (
            update(tasks)
            .where(*release_where)
            .values(
                deps_open=remaining,
                publish_pending=case((now_ready, true()), else_=tasks.c.publish_pending),
                publish_after=case(
                    (now_ready, later_expr(pg, "lease")), else_=tasks.c.publish_after
                ),
            )
            .returning(*returning)
        )

    def driver_sql(self, stmt: Any, dialect: Dialect) -> tuple[str, dict[str, Any]]:
        """``stmt`` compiled once for ``dialect``: its SQL text and its literal parameters."""
        found = self._compiled.get(id(stmt))
        if found is None:
            compiled = stmt.compile(dialect=dialect)
            found = (str(compiled), dict(compiled.params))
            with self._claim_next_lock:
                self._compiled[id(stmt)] = found
                self._keep.append(stmt)  # ids stay unique while the statement lives
        return found

    def with_attempt_row(self, claim: Any) -> Any:
        """On PostgreSQL, the claim and the INSERT of its attempt row in one statement::

            WITH claimed AS (UPDATE tasks … RETURNING …),
                 recorded AS (INSERT INTO task_attempts SELECT … FROM claimed)
            SELECT * FROM claimed

        SQLite has no data-modifying CTEs: there the claims part inserts the attempt row itself.
        """
        if not self.pg:
            return claim
        claimed = claim.cte("claimed")
        recorded = insert(task_attempts).from_select(
            ["task_id", "attempt", "runner_id", "started_at", "outcome"],
            select(
                claimed.c.id,
                claimed.c.attempt,
                bindparam("p_runner_id"),
                claimed.c.started_at,
                lit("running"),
            ),
        )
        return select(claimed).add_cte(recorded.cte("recorded"))

    def claim_next(self, identifier_count: int) -> Any:
        """``UPDATE … WHERE id = (SELECT … ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)``."""
        stmt = self._claim_next.get(identifier_count)
        if stmt is not None:
            return stmt
        candidate = tasks.alias("candidate")
        oldest = (
            select(candidate.c.id)
            .where(
                candidate.c.cluster == bindparam("p_cluster"),
                identifier_condition(candidate, identifier_count),
                *claimable(self.pg, candidate),
            )
            .order_by(candidate.c.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        stmt = self.with_attempt_row(
            update(tasks)
            .where(tasks.c.id == oldest, tasks.c.state == QUEUED, tasks.c.deps_open == ZERO)
            .values(self.claim_values)
            .returning(*self.claim_returning)
        )
        with self._claim_next_lock:
            self._claim_next[identifier_count] = stmt
        return stmt


_BY_DIALECT: dict[bool, Statements] = {}
_LOCK = threading.Lock()


def statements(pg: bool) -> Statements:
    """The statements of PostgreSQL (``pg``) or SQLite, built on first use."""
    found = _BY_DIALECT.get(pg)
    if found is None:
        with _LOCK:
            found = _BY_DIALECT.get(pg)
            if found is None:
                found = _BY_DIALECT[pg] = Statements(pg)
    return found


# -- coarse hot-path statements (PostgreSQL) ---------------------------------------------------
# Written as SQL text: data-modifying CTEs chained through RETURNING, each sent as one statement
# (psycopg prepares them server-side after a few executions). SQLite composes the finer
# statements instead (see :class:`.claims.SqlClaims`).

_INACTIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(INACTIVE_JOB_STATES))

#: claim + attempt row + job row lock + conditional job state, in one statement (the job
#: states it may change are rendered as literals by :func:`pg_claim_task`). Only a task of the
#: runner's cluster (``p_cluster``) is claimed, whatever queue its message came from.
#:
#: ``deps_open <= 0``, not ``= 0`` (the same rows: the counter is never negative), so that
#: ``ix_tasks_claimable``'s predicate is not implied and the claim can only use the primary key.
#: psycopg prepares the statement after a few executions; PostgreSQL's generic plan, costed
#: while the table was small, scanned that whole partial index for ``id = $3`` (auto_explain),
#: so every claim cost O(queued tasks): a 100,000-subtask fan-out ran at 210 tasks/s, a 30,000
#: one at 820/s.
_PG_CLAIM_TASK = f"""
WITH claimed AS (
    UPDATE tasks SET
        state = 'RUNNING', attempt = attempt + 1, runner_id = %(p_runner_id)s,
        started_at = now(), stopped_at = NULL,
        lease_expires = now() + interval '1 second' * %(lease)s,
        not_before = NULL, publish_pending = false
    WHERE id = %(p_task_id)s AND state = 'QUEUED' AND deps_open <= 0
        AND cluster = %(p_cluster)s
        AND (not_before IS NULL OR not_before <= now())
        AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = tasks.job_id
                    AND jobs.state NOT IN ({_INACTIVE_SQL}))
    RETURNING id, job_id, parent_id, cluster, name, version, input, display, attempt,
        retry_count, max_retries, optional_path, timeout, lease_expires, depends_on, started_at
), recorded AS (
    INSERT INTO task_attempts (task_id, attempt, runner_id, started_at, outcome)
    SELECT id, attempt, %(p_runner_id)s, started_at, 'running' FROM claimed
), job AS (
    SELECT jobs.id, jobs.name, jobs.state FROM jobs JOIN claimed ON jobs.id = claimed.job_id
    FOR NO KEY UPDATE OF jobs
), promoted AS (
    UPDATE jobs SET state = %(p_job_state)s, updated_at = now() FROM job
    WHERE jobs.id = job.id AND job.state IN ({{job_from}})
    RETURNING jobs.id
)
SELECT claimed.*, job.name AS job_name, job.state AS job_state,
    (SELECT count(*) FROM promoted) AS promoted
FROM claimed JOIN job ON job.id = claimed.job_id
"""

_CLAIM_TASK_SQL: dict[frozenset[str], str] = {}


def pg_claim_task(job_states_from: Iterable[Any]) -> str:
    """:data:`_PG_CLAIM_TASK` for these job states (enum members, rendered as literals)."""
    key = frozenset(s.value for s in job_states_from)
    found = _CLAIM_TASK_SQL.get(key)
    if found is None:
        listed = ", ".join(f"'{v}'" for v in sorted(key)) or "NULL"
        found = _CLAIM_TASK_SQL[key] = _PG_CLAIM_TASK.replace("{job_from}", listed)
    return found


#: ``finish_computed`` on PostgreSQL: the function installed by migration 0004 (the task, its
#: attempt row, dependents, parent and the job row's lock in one statement, then the job's facts
#: in a second one whose snapshot follows the lock), in one round trip.
PG_FINISH_COMPUTED = (
    "SELECT * FROM conveyor_finish_computed("
    "%(p_task_id)s, %(p_attempt)s, %(p_display)s, %(p_publish)s, %(lease)s)"
)

#: ``mark_published`` for any number of ids (a uuid[] parameter). Rows locked by another
#: transaction are skipped, never waited for: a runner may already be claiming such a task
#: (the claim clears the flag itself) or finishing it, and a runner's fused completion + claim
#: may wait for this mark's locks in turn: waiting here deadlocked (PostgreSQL's log, bench
#: e2e with two runners, once per 5,000 submissions, a 1 s stall until the deadlock timeout).
PG_MARK_PUBLISHED = """
UPDATE tasks SET publish_pending = false, published_at = now()
WHERE id IN (SELECT id FROM tasks WHERE id = ANY(%(p_ids)s::uuid[]) AND publish_pending
             FOR UPDATE SKIP LOCKED)
"""
