"""Attempts and progress in SQL (``Attempts``): each execution's row, live progress, job stats.

An attempt row is inserted by the claim (:mod:`.claims`) and closed by ``end_attempt``.
Progress is stored as absolute ``(total, done)`` per (task, attempt, label), so a live flush
and the final write are idempotent and a job's progress sums the latest attempt of each task.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal, select

from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import AttemptRecord, ExecutionStats, ProgressIndicator, TaskError
from conveyor.core.ports import TaskRows
from conveyor.store_sql.executor import Executor
from conveyor.store_sql.limits import MAX_SHORT_TEXT, MAX_STATE, check_text
from conveyor.store_sql.memo import TxMemo
from conveyor.store_sql.rows import attempt_from, error_values
from conveyor.store_sql.schema import UtcDateTime, task_attempts, task_progress, tasks


class SqlAttempts:
    """The ``Attempts`` part of one transaction (``job_stats`` counts through ``tasks``)."""

    def __init__(self, ex: Executor, memo: TxMemo, tasks_: TaskRows) -> None:
        self._ex = ex
        self._memo = memo
        self._tasks = tasks_

    def end_attempt(
        self, task_id: TaskId, attempt: int, outcome: str, error: TaskError | None
    ) -> None:
        error_type, error_message, error_traceback = error_values(error)
        params = {
            "p_task_id": task_id,
            "p_attempt": attempt,
            "p_outcome": check_text(outcome, "The attempt outcome", MAX_STATE),
            "p_error_type": error_type,
            "p_error_message": error_message,
            "p_error_traceback": error_traceback,
            **self._ex.times(),
        }
        self._ex.hot(self._ex.sql.end_attempt, params)

    def task_attempts(self, task_id: TaskId) -> list[AttemptRecord]:
        rows = self._ex.execute(
            select(task_attempts)
            .where(task_attempts.c.task_id == task_id)
            .order_by(task_attempts.c.attempt)
        )
        return [attempt_from(r._mapping) for r in rows]

    def write_progress(
        self, task_id: TaskId, attempt: int, progress: Mapping[str | None, tuple[int, int]]
    ) -> bool:
        """Replace the attempt's indicators (labels not named again are dropped)."""
        current = self._memo.attempts.get(task_id)
        if current is None:
            current = self._ex.hot(self._ex.sql.task_attempt, {"p_task_id": task_id}).scalar()
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
        self._ex.execute(
            delete(task_progress).where(
                task_progress.c.task_id == task_id, task_progress.c.attempt == attempt
            )
        )
        self._ex.execute(insert(task_progress), rows)
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
            for r in self._ex.execute(stmt)
        ]
        return sorted(indicators, key=lambda i: (i.label is not None, i.label or ""))

    def job_stats(self, job_id: JobId) -> ExecutionStats:
        a = task_attempts
        now = self._ex.now()
        ended_or_now = func.coalesce(a.c.ended_at, literal(now, UtcDateTime))
        duration: Any = self._ex.seconds_between(ended_or_now, a.c.started_at)
        stmt = (
            select(
                func.min(a.c.started_at).label("first"),
                func.max(a.c.ended_at).label("last"),
                func.coalesce(func.sum(duration), 0).label("compute"),
                func.count().label("attempts"),
                func.count(a.c.ended_at).label("ended"),
            )
            .select_from(a.join(tasks, tasks.c.id == a.c.task_id))
            .where(tasks.c.job_id == job_id)
        )
        row = self._ex.execute(stmt).one()
        first: dt.datetime | None = row.first
        last: dt.datetime | None = row.last
        compute = dt.timedelta(seconds=max(float(row.compute), 0.0))
        end = now if row.attempts != row.ended else last
        elapsed = (end - first) if first is not None and end is not None else dt.timedelta()
        parallelism = compute / elapsed if elapsed.total_seconds() > 0 else 0.0
        counts = self._tasks.task_counts(job_id)
        return ExecutionStats(
            first_task_started_at=first,
            last_task_stopped_at=last,
            compute_time=compute,
            elapsed_time=elapsed,
            parallelism=parallelism,
            total_tasks=sum(counts.values()),
            tasks_by_state=counts,
        )
