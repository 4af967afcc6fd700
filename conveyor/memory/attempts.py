"""Attempts, progress and execution statistics in memory (:class:`conveyor.core.ports.Attempts`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import AttemptRecord, ExecutionStats, ProgressIndicator, TaskError
from conveyor.memory.journal import Journal
from conveyor.memory.tasks import MemoryTasks


class MemoryAttempts:
    def __init__(self, journal: Journal, tasks: MemoryTasks) -> None:
        self._j = journal
        self._t = journal.t
        self._tasks = tasks

    def end_attempt(
        self, task_id: TaskId, attempt: int, outcome: str, error: TaskError | None
    ) -> None:
        attempts = self._t.attempts.get(task_id, [])
        updated = [
            dataclasses.replace(a, ended_at=self._j.now, outcome=outcome, error=error)
            if a.attempt == attempt
            else a
            for a in attempts
        ]
        self._j.set(self._t.attempts, task_id, updated)

    def task_attempts(self, task_id: TaskId) -> list[AttemptRecord]:
        return list(self._t.attempts.get(task_id, []))

    def write_progress(
        self, task_id: TaskId, attempt: int, progress: Mapping[str | None, tuple[int, int]]
    ) -> bool:
        task = self._t.tasks.get(task_id)
        if task is None or task.attempt != attempt:
            return False
        if progress:
            self._j.set(self._t.progress, (task_id, attempt), dict(progress))
        return True

    def job_progress(self, job_id: JobId) -> list[ProgressIndicator]:
        totals: dict[str | None, list[int]] = {}
        for task_id in self._t.job_tasks.get(job_id, []):
            task = self._t.tasks[task_id]
            for label, (total, done) in self._t.progress.get((task_id, task.attempt), {}).items():
                entry = totals.setdefault(label, [0, 0])
                entry[0] += total
                entry[1] += done
        return sorted(
            (ProgressIndicator(label, t, d) for label, (t, d) in totals.items()),
            key=lambda p: (p.label is not None, p.label or ""),
        )

    def job_stats(self, job_id: JobId) -> ExecutionStats:
        now = self._j.now
        tasks = [self._t.tasks[i] for i in self._t.job_tasks.get(job_id, [])]
        attempts = [a for t in tasks for a in self._t.attempts.get(t.id, [])]
        starts = [a.started_at for a in attempts]
        stops = [a.ended_at for a in attempts if a.ended_at is not None]
        compute = sum(((a.ended_at or now) - a.started_at for a in attempts), dt.timedelta())
        first = min(starts) if starts else None
        last = max(stops) if stops else None
        end = now if any(a.ended_at is None for a in attempts) else last
        elapsed = (end - first) if first is not None and end is not None else dt.timedelta()
        parallelism = compute / elapsed if elapsed.total_seconds() > 0 else 0.0
        return ExecutionStats(
            first_task_started_at=first,
            last_task_stopped_at=last,
            compute_time=compute,
            elapsed_time=elapsed,
            parallelism=parallelism,
            total_tasks=len(tasks),
            tasks_by_state=self._tasks.task_counts(job_id),
        )
