"""Claims in SQL (``Claims``): taking a task for a runner, and the commonest success.

:class:`SqlClaims` composes the finer statements (SQLite, and correct on any database);
:class:`PgClaims` sends the two fused statements of the per-task path instead, each one round
trip on PostgreSQL: ``claim_task`` (claim, attempt row, job row lock and conditional job-state
write: :func:`.statements.pg_claim_task`) and ``finish_computed`` (the function installed by
migration 0004/0005: :data:`.statements.PG_FINISH_COMPUTED`).

A claim is ``UPDATE … WHERE <dispatchable> RETURNING``; ``claim_next`` picks its row with
``FOR UPDATE SKIP LOCKED`` so concurrent claimers never wait for each other. On PostgreSQL the
claim statement also inserts the attempt row (a data-modifying CTE); on SQLite that is a second
statement.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, exists, select

from conveyor.core.identifiers import TaskId
from conveyor.core.model import (
    ClaimedTask,
    JobFacts,
    JobState,
    RegisteredIdentifier,
    TaskRecord,
    TaskState,
)
from conveyor.core.ports import Attempts, FinishedTask, JobRows, TaskRows
from conveyor.store_sql.executor import Executor, PgExecutor
from conveyor.store_sql.limits import MAX_DISPLAY, MAX_SHORT_TEXT, check_text
from conveyor.store_sql.memo import TxMemo
from conveyor.store_sql.rows import claimed_from, facts_from, task_from
from conveyor.store_sql.schema import jobs, tasks
from conveyor.store_sql.statements import (
    PG_FINISH_COMPUTED,
    QUEUED,
    ZERO,
    identifier_condition,
    job_active,
    pg_claim_task,
)


def identifier_params(identifiers: Sequence[RegisteredIdentifier]) -> dict[str, Any]:
    """The parameters of :func:`.statements.identifier_condition`."""
    params: dict[str, Any] = {}
    for i, ident in enumerate(identifiers):
        params[f"name_{i}"] = ident.name
        params[f"major_{i}"] = ident.major
        params[f"minor_{i}"] = ident.max_minor
    return params


class SqlClaims:
    """The ``Claims`` part of one transaction, composed of the finer statements.

    ``finish_computed`` composes the primitives of the ``tasks``, ``attempts`` and ``jobs``
    parts it is given, in the order the port describes."""

    def __init__(
        self, ex: Executor, memo: TxMemo, tasks: TaskRows, jobs: JobRows, attempts: Attempts
    ) -> None:
        self._ex = ex
        self._memo = memo
        self._tasks = tasks
        self._jobs = jobs
        self._attempts = attempts

    def _claimed(self, row: Mapping[Any, Any] | None, runner_id: str) -> ClaimedTask | None:
        """The claim's returned row as a ClaimedTask (recording the attempt row where the claim
        statement does not)."""
        if row is None:
            return None
        self._ex.prime_now(row["started_at"])
        self._memo.attempts[row["id"]] = row["attempt"]
        sql = self._ex.sql
        if not sql.claim_records_attempt:
            self._ex.execute(
                sql.insert_attempt,
                {
                    "a_task_id": row["id"],
                    "a_attempt": row["attempt"],
                    "a_runner_id": runner_id,
                    "a_started_at": row["started_at"],
                },
            )
        return claimed_from(row)

    def _claim_row(self, stmt: Any, params: dict[str, Any]) -> Mapping[Any, Any] | None:
        found = self._ex.hot(stmt, params).first()
        return None if found is None else found._mapping

    def claim(self, task_id: TaskId, runner_id: str, lease_seconds: float) -> ClaimedTask | None:
        """One ``UPDATE … WHERE <dispatchable> RETURNING`` plus the attempt row's INSERT."""
        check_text(runner_id, "The runner id", MAX_SHORT_TEXT)
        params = {
            "p_task_id": task_id,
            "p_runner_id": runner_id,
            **self._ex.times(lease=lease_seconds),
        }
        return self._claimed(self._claim_row(self._ex.sql.claim, params), runner_id)

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
        params = {
            "p_cluster": cluster,
            "p_runner_id": runner_id,
            **self._ex.times(lease=lease_seconds),
        }
        params.update(identifier_params(identifiers))
        stmt = self._ex.sql.claim_next(len(identifiers))
        return self._claimed(self._claim_row(stmt, params), runner_id)

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
        params = {"p_cluster": cluster, **identifier_params(identifiers)}
        return bool(self._ex.execute(stmt, params).scalar())

    def claim_task(
        self,
        task_id: TaskId,
        cluster: str,
        runner_id: str,
        lease_seconds: float,
        job_state: JobState,
        job_states_from: Collection[JobState],
    ) -> ClaimedTask | None:
        """The claim with the cluster as one more condition of its WHERE (the row is found by
        its primary key), then the job's state read and written (SQLite's writers are
        serialised, so nothing can change the job in between)."""
        check_text(runner_id, "The runner id", MAX_SHORT_TEXT)
        params = {
            "p_task_id": task_id,
            "p_cluster": cluster,
            "p_runner_id": runner_id,
            **self._ex.times(lease=lease_seconds),
        }
        claimed = self._claimed(self._claim_row(self._ex.sql.claim_in_cluster, params), runner_id)
        if claimed is not None:
            stored = self._ex.execute(
                select(jobs.c.state).where(jobs.c.id == claimed.job_id)
            ).scalar_one()
            if JobState(stored) in job_states_from:
                self._jobs.set_job_state(claimed.job_id, job_state)
        return claimed

    def finish_computed(
        self, task_id: TaskId, attempt: int, display: str | None, publish_lease: float | None
    ) -> FinishedTask | None:
        """The finer primitives, in the order the port describes."""
        if display is not None:
            check_text(display, "The task display", MAX_DISPLAY)
        tasks_ = self._tasks
        task = tasks_.lock_task(task_id)
        if task is None or task.attempt != attempt or task.state is not TaskState.RUNNING:
            return None
        task.state = TaskState.COMPUTED
        task.stopped_at = self._ex.now()
        task.lease_expires = None
        task.error = None
        task.open_children = 0
        if display is not None:
            task.display = display
        tasks_.save_task(task)
        self._attempts.end_attempt(task_id, attempt, "computed", None)
        tasks_.mark_complete(task_id)
        released = tasks_.release_dependents(task_id, publish_lease)
        parent = None
        if task.parent_id is not None:
            parent = tasks_.decrement_open_children(task.parent_id)
        return FinishedTask(task.job_id, parent, released, self._jobs.job_facts(task.job_id))


class PgClaims(SqlClaims):
    """PostgreSQL: ``claim_task`` and ``finish_computed`` as one round trip each."""

    def __init__(
        self, ex: PgExecutor, memo: TxMemo, tasks: TaskRows, jobs: JobRows, attempts: Attempts
    ) -> None:
        super().__init__(ex, memo, tasks, jobs, attempts)
        self._pgx = ex

    def claim_task(
        self,
        task_id: TaskId,
        cluster: str,
        runner_id: str,
        lease_seconds: float,
        job_state: JobState,
        job_states_from: Collection[JobState],
    ) -> ClaimedTask | None:
        """One statement (:func:`.statements.pg_claim_task`): the claim, its attempt row, the
        job row's lock and the conditional job-state write. The cluster is one more condition
        of the claim's WHERE (the row is found by its primary key)."""
        check_text(runner_id, "The runner id", MAX_SHORT_TEXT)
        params = {
            "p_task_id": task_id,
            "p_cluster": cluster,
            "p_runner_id": runner_id,
            "lease": float(lease_seconds),
            "p_job_state": job_state.value,
        }
        rows = self._pgx.driver_rows(pg_claim_task(job_states_from), params)[0]
        if not rows:
            return None
        row = rows[0]
        known = job_state.value if row["promoted"] else row["job_state"]
        self._memo.job_states[row["job_id"]] = known
        return self._claimed(row, runner_id)

    def finish_computed(
        self, task_id: TaskId, attempt: int, display: str | None, publish_lease: float | None
    ) -> FinishedTask | None:
        """One statement (:data:`.statements.PG_FINISH_COMPUTED`): the function returns the
        task ('d'), each dependent that became ready ('r'), the parent ('p'), the job row's
        lock ('j') and then the job's facts ('f'), with task columns prefixed ``r_``."""
        if display is not None:
            check_text(display, "The task display", MAX_DISPLAY)
        params = {
            "p_task_id": task_id,
            "p_attempt": attempt,
            "p_display": display,
            "p_publish": publish_lease is not None,
            "lease": float(publish_lease or 0.0),
        }
        rows = self._pgx.driver_rows(PG_FINISH_COMPUTED, params)[0]
        done: TaskRecord | None = None
        parent: TaskRecord | None = None
        released: list[TaskRecord] = []
        facts: JobFacts | None = None
        for found in rows:
            kind = found["r_kind"]
            if kind == "j":
                continue
            unprefixed = {key[2:]: value for key, value in found.items()}
            if kind == "f":
                facts = facts_from(unprefixed, state="job_state")
                continue
            record = task_from(unprefixed)
            if kind == "d":
                self._ex.prime_now(found["r_tx_now"])
                done = record
            elif kind == "p":
                parent = record
            else:
                released.append(record)
        if done is None:
            return None
        if facts is None:  # cannot happen: the function reads them whenever it recorded
            facts = self._jobs.job_facts(done.job_id)
        self._memo.job_states[done.job_id] = facts.state.value
        self._memo.attempts[task_id] = attempt
        released.sort(key=lambda t: t.id)
        return FinishedTask(done.job_id, parent, released, facts)
