"""The monitoring queries in memory (:class:`conveyor.core.ports.MonitoringReads`): read-only."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import INACTIVE_JOB_STATES, AttemptRecord, JobState, TaskRecord, TaskState
from conveyor.core.views import (
    AttemptBucket,
    ChildGroup,
    EndedAttempt,
    IdentifierStateCount,
    QueueStats,
    TaskFailure,
    TaskQuery,
)
from conveyor.memory.journal import Tables
from conveyor.memory.tasks import MemoryTasks


class MemoryReads:
    def __init__(self, tables: Tables, tasks: MemoryTasks) -> None:
        self._t = tables
        self._tasks = tasks

    def count_jobs_by_state(self) -> dict[JobState, int]:
        counts: dict[JobState, int] = {}
        for job in self._t.jobs.values():
            counts[job.state] = counts.get(job.state, 0) + 1
        return counts

    def task_counts_by_job(self, job_ids: Sequence[JobId]) -> dict[JobId, dict[TaskState, int]]:
        return {job_id: self._tasks.task_counts(job_id) for job_id in job_ids}

    def queue_stats(self) -> list[QueueStats]:
        ready: dict[tuple[str, TaskIdentifier], int] = {}
        running: dict[tuple[str, TaskIdentifier], int] = {}
        for task_id in self._t.queued:
            task = self._t.tasks[task_id]
            if task.deps_open == 0 and self._t.jobs[task.job_id].state not in INACTIVE_JOB_STATES:
                key = (task.cluster, task.identifier)
                ready[key] = ready.get(key, 0) + 1
        for task_id in self._t.running:
            task = self._t.tasks[task_id]
            key = (task.cluster, task.identifier)
            running[key] = running.get(key, 0) + 1
        return [
            QueueStats(
                cluster, ident, ready.get((cluster, ident), 0), running.get((cluster, ident), 0)
            )
            for cluster, ident in sorted(ready.keys() | running.keys())
        ]

    def recent_failures(self, limit: int) -> list[TaskFailure]:
        failed = [
            t
            for t in self._t.tasks.values()
            if t.state in (TaskState.FAILED, TaskState.FAILED_OPTIONAL)
        ]
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
        failed.sort(key=lambda t: (t.stopped_at or oldest, t.id), reverse=True)
        return [
            TaskFailure(
                task_id=t.id,
                job_id=t.job_id,
                job_name=self._t.jobs[t.job_id].name,
                cluster=t.cluster,
                identifier=t.identifier,
                state=t.state,
                display=t.display,
                runner_id=t.runner_id,
                stopped_at=t.stopped_at,
                error=t.error,
            )
            for t in failed[: max(limit, 0)]
        ]

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        if query.limit <= 0:
            return []
        if query.roots:
            ids = [
                i
                for i in self._t.job_tasks.get(query.job_id, [])
                if self._t.tasks[i].parent_id is None
            ]
        elif query.parent_id is not None:
            ids = list(self._t.children.get(query.parent_id, []))
        else:
            ids = list(self._t.job_tasks.get(query.job_id, []))
        found: list[TaskRecord] = []
        for task_id in sorted(ids):
            if query.after is not None and task_id <= query.after:
                continue
            task = self._t.tasks[task_id]
            if task.job_id != query.job_id:
                continue
            if query.states and task.state not in query.states:
                continue
            if query.identifier is not None and task.identifier != query.identifier:
                continue
            copy = dataclasses.replace(task)
            if not query.include_input:
                copy.input = b""
            found.append(copy)
            if len(found) >= query.limit:
                break
        return found

    def children_summary(self, job_id: JobId, parent_id: TaskId | None) -> list[ChildGroup]:
        if parent_id is None:
            ids = [
                i for i in self._t.job_tasks.get(job_id, []) if self._t.tasks[i].parent_id is None
            ]
        else:
            ids = self._t.children.get(parent_id, [])
        counts: dict[tuple[TaskIdentifier, TaskState], int] = {}
        for task_id in ids:
            task = self._t.tasks[task_id]
            if task.job_id != job_id:
                continue
            key = (task.identifier, task.state)
            counts[key] = counts.get(key, 0) + 1
        return sorted(ChildGroup(ident, state, n) for (ident, state), n in counts.items())

    def child_counts(self, task_ids: Sequence[TaskId]) -> dict[TaskId, int]:
        return {task_id: len(self._t.children.get(task_id, [])) for task_id in task_ids}

    def _ended(self) -> Iterator[tuple[TaskRecord, AttemptRecord, dt.datetime]]:
        for task_id, attempts in self._t.attempts.items():
            for attempt in attempts:
                if attempt.ended_at is not None:
                    yield self._t.tasks[task_id], attempt, attempt.ended_at

    def attempts_per_minute(self, since: dt.datetime) -> list[AttemptBucket]:
        counts: dict[tuple[dt.datetime, str], int] = {}
        for _, attempt, ended in self._ended():
            if ended >= since:
                key = (ended.replace(second=0, microsecond=0), attempt.outcome)
                counts[key] = counts.get(key, 0) + 1
        return sorted(AttemptBucket(minute, outcome, n) for (minute, outcome), n in counts.items())

    def ended_attempts(self, since: dt.datetime, until: dt.datetime) -> list[EndedAttempt]:
        found = [
            EndedAttempt(
                task.identifier,
                attempt.outcome,
                max((ended - attempt.started_at).total_seconds(), 0.0),
                ended,
            )
            for task, attempt, ended in self._ended()
            if since <= ended < until
        ]
        return sorted(found, key=lambda e: e.ended_at)

    def task_counts_by_identifier(self) -> list[IdentifierStateCount]:
        counts: dict[tuple[TaskIdentifier, TaskState], int] = {}
        for task in self._t.tasks.values():
            key = (task.identifier, task.state)
            counts[key] = counts.get(key, 0) + 1
        return sorted(IdentifierStateCount(i, s, n) for (i, s), n in counts.items())
