"""The read-only monitoring queries in SQL (``MonitoringReads``, ``tx.reads``).

Dashboards, the web UI and Prometheus metrics read through this part. Each query is one
aggregate or one keyset page served by an index, so none of them reads a job of 10^6 tasks row
by row:

* job counts per state: an index-only scan of ``ix_jobs_state_id``;
* queue depths: the partial index of ready tasks (``ix_tasks_claimable``) and of RUNNING ones
  (``ix_tasks_lease_expires``);
* recent failures: the partial index ``ix_tasks_failed`` (FAILED / FAILED_OPTIONAL rows only);
* pages of children in id order: ``ix_tasks_parent_id_id`` (parent, id), roots through the
  partial ``ix_tasks_roots`` (job, id) — a fan-out of 10^5 subtasks is paged, never sorted;
* attempts ended since an instant (tasks/s, the duration histogram): ``ix_task_attempts_ended_at``.

The last three indexes come with migration 0003. ``task_counts_by_identifier`` is the one full
aggregate over the tasks table; its callers cache it (the web UI refreshes it at most every
few seconds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import JobState, TaskRecord, TaskState
from conveyor.core.views import (
    AttemptBucket,
    ChildGroup,
    EndedAttempt,
    IdentifierStateCount,
    QueueStats,
    TaskFailure,
    TaskQuery,
)
from conveyor.store_sql.executor import Executor
from conveyor.store_sql.rows import chunks, failure_from, task_from, utc
from conveyor.store_sql.schema import jobs, task_attempts, tasks
from conveyor.store_sql.statements import QUEUED, RUNNING, ZERO, job_active, lit

if TYPE_CHECKING:
    from sqlalchemy.sql import Select

#: The states a "failure" is in; the partial index ``ix_tasks_failed`` holds exactly these rows.
FAILURE_STATES = (TaskState.FAILED, TaskState.FAILED_OPTIONAL)
_FAILURE_LITERALS = [lit(s.value) for s in FAILURE_STATES]
#: Every task column but the input (graph pages do not need inputs, which may be 1 MiB each).
_COLUMNS_WITHOUT_INPUT = [c for c in tasks.c if c.name != "input"]


class SqlReads:
    """The ``MonitoringReads`` part of one transaction."""

    def __init__(self, ex: Executor) -> None:
        self._ex = ex

    def count_jobs_by_state(self) -> dict[JobState, int]:
        stmt = select(jobs.c.state, func.count()).group_by(jobs.c.state)
        return {JobState(state): int(n) for state, n in self._ex.execute(stmt)}

    def task_counts_by_job(self, job_ids: Sequence[JobId]) -> dict[JobId, dict[TaskState, int]]:
        found: dict[JobId, dict[TaskState, int]] = {job_id: {} for job_id in job_ids}
        ids = sorted(set(job_ids))
        stmt = (
            select(tasks.c.job_id, tasks.c.state, func.count())
            .where(tasks.c.job_id.in_(bindparam("ids", expanding=True)))
            .group_by(tasks.c.job_id, tasks.c.state)
        )
        for chunk in chunks(ids):
            for job_id, state, n in self._ex.execute(stmt, {"ids": list(chunk)}):
                found[job_id][TaskState(state)] = int(n)
        return found

    def queue_stats(self) -> list[QueueStats]:
        key = (tasks.c.cluster, tasks.c.name, tasks.c.version)
        ready_stmt = (
            select(*key, func.count())
            .where(tasks.c.state == QUEUED, tasks.c.deps_open == ZERO, job_active(tasks))
            .group_by(*key)
        )
        running_stmt = select(*key, func.count()).where(tasks.c.state == RUNNING).group_by(*key)
        ready = {(c, n, v): int(k) for c, n, v, k in self._ex.execute(ready_stmt)}
        running = {(c, n, v): int(k) for c, n, v, k in self._ex.execute(running_stmt)}
        return [
            QueueStats(c, TaskIdentifier(n, v), ready.get((c, n, v), 0), running.get((c, n, v), 0))
            for c, n, v in sorted(ready.keys() | running.keys())
        ]

    def recent_failures(self, limit: int) -> list[TaskFailure]:
        if limit <= 0:
            return []
        stmt = (
            select(
                tasks.c.id,
                tasks.c.job_id,
                jobs.c.name.label("job_name"),
                tasks.c.cluster,
                tasks.c.name,
                tasks.c.version,
                tasks.c.state,
                tasks.c.display,
                tasks.c.runner_id,
                tasks.c.stopped_at,
                tasks.c.error_type,
                tasks.c.error_message,
                tasks.c.error_traceback,
            )
            .select_from(tasks.join(jobs, jobs.c.id == tasks.c.job_id))
            .where(tasks.c.state.in_(_FAILURE_LITERALS))
            .order_by(tasks.c.stopped_at.desc(), tasks.c.id.desc())
            .limit(limit)
        )
        return [failure_from(r._mapping) for r in self._ex.execute(stmt)]

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        if query.limit <= 0:
            return []
        columns = list(tasks.c) if query.include_input else _COLUMNS_WITHOUT_INPUT
        stmt: Select[Any] = select(*columns).where(tasks.c.job_id == query.job_id)
        if query.roots:
            stmt = stmt.where(tasks.c.parent_id.is_(None))
        elif query.parent_id is not None:
            stmt = stmt.where(tasks.c.parent_id == query.parent_id)
        if query.states:
            stmt = stmt.where(tasks.c.state.in_([lit(s.value) for s in query.states]))
        if query.identifier is not None:
            stmt = stmt.where(
                tasks.c.name == query.identifier.name, tasks.c.version == query.identifier.version
            )
        if query.after is not None:
            stmt = stmt.where(tasks.c.id > query.after)
        stmt = stmt.order_by(tasks.c.id).limit(query.limit)
        return [task_from(r._mapping) for r in self._ex.execute(stmt)]

    def children_summary(self, job_id: JobId, parent_id: TaskId | None) -> list[ChildGroup]:
        stmt = select(tasks.c.name, tasks.c.version, tasks.c.state, func.count()).where(
            tasks.c.job_id == job_id
        )
        if parent_id is None:
            stmt = stmt.where(tasks.c.parent_id.is_(None))
        else:
            stmt = stmt.where(tasks.c.parent_id == parent_id)
        stmt = stmt.group_by(tasks.c.name, tasks.c.version, tasks.c.state)
        return sorted(
            ChildGroup(TaskIdentifier(n, v), TaskState(s), int(k))
            for n, v, s, k in self._ex.execute(stmt)
        )

    def child_counts(self, task_ids: Sequence[TaskId]) -> dict[TaskId, int]:
        found: dict[TaskId, int] = {task_id: 0 for task_id in task_ids}
        stmt = (
            select(tasks.c.parent_id, func.count())
            .where(tasks.c.parent_id.in_(bindparam("ids", expanding=True)))
            .group_by(tasks.c.parent_id)
        )
        for chunk in chunks(sorted(set(task_ids))):
            for parent_id, n in self._ex.execute(stmt, {"ids": list(chunk)}):
                found[parent_id] = int(n)
        return found

    def attempts_per_minute(self, since: dt.datetime) -> list[AttemptBucket]:
        a = task_attempts
        bucket = self._ex.minute_of(a.c.ended_at).label("minute")
        stmt = (
            select(bucket, a.c.outcome, func.count())
            .where(a.c.ended_at >= since)
            .group_by(bucket, a.c.outcome)
        )
        found = [
            AttemptBucket(self._ex.minute_start(key), outcome, int(n))
            for key, outcome, n in self._ex.execute(stmt)
        ]
        return sorted(found)

    def ended_attempts(self, since: dt.datetime, until: dt.datetime) -> list[EndedAttempt]:
        a = task_attempts
        stmt = (
            select(tasks.c.name, tasks.c.version, a.c.outcome, a.c.started_at, a.c.ended_at)
            .select_from(a.join(tasks, tasks.c.id == a.c.task_id))
            .where(a.c.ended_at >= since, a.c.ended_at < until)
            .order_by(a.c.ended_at)
        )
        found = []
        for name, version, outcome, started, ended in self._ex.execute(stmt):
            ended = utc(ended)
            seconds = max((ended - utc(started)).total_seconds(), 0.0)
            found.append(EndedAttempt(TaskIdentifier(name, version), outcome, seconds, ended))
        return found

    def task_counts_by_identifier(self) -> list[IdentifierStateCount]:
        stmt = select(tasks.c.name, tasks.c.version, tasks.c.state, func.count()).group_by(
            tasks.c.name, tasks.c.version, tasks.c.state
        )
        return sorted(
            IdentifierStateCount(TaskIdentifier(n, v), TaskState(s), int(k))
            for n, v, s, k in self._ex.execute(stmt)
        )
