"""Task rows in SQL (``TaskRows``): the per-task primitives the use cases compose.

Every primitive is one statement (or one bulk statement) touching only the rows it changes, so
a completion in a job of 10^6 tasks costs the same as in a job of ten. The counters
(``deps_open``, ``open_children``, ``complete``) are changed by atomic ``UPDATE … RETURNING``
statements, never read-modify-write. On PostgreSQL ``lock_task`` is ``SELECT … FOR UPDATE`` and
``expired_leases`` uses ``FOR UPDATE SKIP LOCKED`` (sweepers never wait); SQLite drops these
clauses (its writers are serialised).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError, TaskNotFoundError
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import TaskRecord, TaskState
from conveyor.store_sql.executor import Executor
from conveyor.store_sql.limits import MAX_DISPLAY, check_text
from conveyor.store_sql.memo import TxMemo
from conveyor.store_sql.rows import chunks, mutable_values, task_from, task_row, utc
from conveyor.store_sql.schema import jobs, task_dependencies, tasks
from conveyor.store_sql.statements import FAILED, QUEUED, RUNNING, TASK_COLUMNS


class SqlTasks:
    """The ``TaskRows`` part of one transaction."""

    def __init__(self, ex: Executor, memo: TxMemo) -> None:
        self._ex = ex
        self._memo = memo

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
            rows.append(task_row(task))
            job_ids.add(task.job_id)
            if task.depends_on:
                counts = Counter(task.depends_on)
                edges.extend(
                    {"task_id": task.id, "depends_on_id": dep, "n": n} for dep, n in counts.items()
                )
        unknown = job_ids - self._memo.new_jobs
        found = (
            set(self._ex.execute(select(jobs.c.id).where(jobs.c.id.in_(list(unknown)))).scalars())
            if unknown
            else set()
        )
        missing = unknown - found
        if missing:
            raise JobNotFoundError(f"No job with id {sorted(missing)[0]}")
        try:
            self._ex.bulk_insert(tasks, rows)
            self._ex.bulk_insert(task_dependencies, edges)
        except IntegrityError as exc:
            raise AlreadyExistsError(f"A task id is already taken: {exc.orig}") from exc

    def _select_task(self, task_id: TaskId, lock: bool) -> TaskRecord | None:
        sql = self._ex.sql
        row = self._ex.hot(sql.lock_task if lock else sql.select_task, {"p_task_id": task_id})
        found = row.first()
        if found is None:
            return None
        mapping = found._mapping
        self._ex.prime_now(mapping.get("tx_now"))
        task = task_from(mapping)
        if lock:
            self._memo.attempts[task.id] = task.attempt
        return task

    def get_task(self, task_id: TaskId) -> TaskRecord | None:
        return self._select_task(task_id, lock=False)

    def lock_task(self, task_id: TaskId) -> TaskRecord | None:
        return self._select_task(task_id, lock=True)

    def save_task(self, task: TaskRecord) -> None:
        params = {f"v_{k}": v for k, v in mutable_values(task).items()}
        params["p_task_id"] = task.id
        if not self._ex.hot(self._ex.sql.save_task, params).rowcount:
            raise TaskNotFoundError(f"No task with id {task.id}")
        if task.id in self._memo.attempts:
            self._memo.attempts[task.id] = task.attempt

    def job_tasks(
        self, job_id: JobId, *, after: TaskId | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        stmt = select(tasks).where(tasks.c.job_id == job_id).order_by(tasks.c.id).limit(limit)
        if after is not None:
            stmt = stmt.where(tasks.c.id > after)
        return [task_from(r._mapping) for r in self._ex.execute(stmt)]

    def extend_lease(
        self, task_id: TaskId, attempt: int, lease_seconds: float
    ) -> dt.datetime | None:
        params = {"p_task_id": task_id, "p_attempt": attempt, **self._ex.times(lease=lease_seconds)}
        row = self._ex.hot(self._ex.sql.extend_lease, params).first()
        return utc(row.lease_expires) if row is not None else None

    def set_display(self, task_id: TaskId, attempt: int, display: str) -> bool:
        check_text(display, "The task display", MAX_DISPLAY)
        params = {"p_task_id": task_id, "p_attempt": attempt, "p_display": display}
        return bool(self._ex.hot(self._ex.sql.set_display, params).rowcount)

    def decrement_open_children(self, task_id: TaskId) -> TaskRecord:
        """``UPDATE … SET open_children = open_children - 1 … RETURNING``."""
        row = self._ex.hot(self._ex.sql.decrement_open_children, {"p_task_id": task_id}).first()
        if row is None:
            raise TaskNotFoundError(f"No task with id {task_id}")
        return task_from(row._mapping)

    def mark_complete(self, task_id: TaskId) -> bool:
        params = {"p_task_id": task_id}
        if self._ex.hot(self._ex.sql.mark_complete, params).rowcount:
            return True
        if self._ex.hot(self._ex.sql.task_exists, params).first() is None:
            raise TaskNotFoundError(f"No task with id {task_id}")
        return False

    def release_dependents(self, task_id: TaskId, publish_lease: float | None) -> list[TaskRecord]:
        """One ``UPDATE … FROM task_dependencies … RETURNING``; concurrent releases of one
        dependent serialise on its row, so exactly one of them sees ``deps_open`` reach 0."""
        if publish_lease is None:
            rows = self._ex.hot(self._ex.sql.release, {"p_task_id": task_id})
        else:
            params = {"p_task_id": task_id, **self._ex.times(lease=publish_lease)}
            rows = self._ex.hot(self._ex.sql.release_and_publish, params)
        ready = [r.id for r in rows if r.state == TaskState.QUEUED.value and r.deps_open == 0]
        if not ready:
            return []
        released: list[TaskRecord] = []
        for chunk in chunks(sorted(ready)):
            stmt = select(*TASK_COLUMNS).where(tasks.c.id.in_(list(chunk)))
            released += [task_from(r._mapping) for r in self._ex.execute(stmt)]
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
        return list(self._ex.execute(stmt).scalars())

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
        several transactions deadlocks. (SQLite renders no locking clause.)
        """
        if not task_ids:
            return False
        ids = sorted(set(task_ids))
        stmt = (
            select(tasks.c.subtree_failed)
            .where(tasks.c.id.in_(ids))
            .order_by(tasks.c.id)
            .with_for_update(key_share=True)
        )
        return any(self._ex.execute(stmt).scalars())

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
        return int(self._ex.execute(stmt).rowcount)

    def task_counts(self, job_id: JobId) -> dict[TaskState, int]:
        stmt = (
            select(tasks.c.state, func.count())
            .where(tasks.c.job_id == job_id)
            .group_by(tasks.c.state)
        )
        return {TaskState(state): int(n) for state, n in self._ex.execute(stmt)}

    def expired_leases(self, limit: int, overdue: float = 0.0) -> list[TaskRecord]:
        """RUNNING rows past their lease by ``overdue`` seconds, ``FOR UPDATE SKIP LOCKED``
        (sweepers never wait)."""
        stmt = (
            select(*TASK_COLUMNS)
            .where(
                tasks.c.state == RUNNING,
                tasks.c.lease_expires <= self._ex.later_expr("overdue"),
            )
            .order_by(tasks.c.lease_expires)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        params = self._ex.times(overdue=-overdue)
        found = [task_from(r._mapping) for r in self._ex.execute(stmt, params)]
        for task in found:
            self._memo.attempts[task.id] = task.attempt
        return found
