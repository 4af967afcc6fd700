"""Task rows and the per-task primitives in memory (:class:`conveyor.core.ports.TaskRows`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import TaskRecord, TaskState
from conveyor.memory.journal import Journal


class MemoryTasks:
    def __init__(self, journal: Journal) -> None:
        self._j = journal
        self._t = journal.t

    def insert_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        by_job: dict[JobId, list[TaskId]] = {}
        for task in tasks:
            if task.id in self._t.tasks:
                raise AlreadyExistsError(f"A task with id {task.id} already exists")
            if task.job_id not in self._t.jobs:
                raise JobNotFoundError(f"No job with id {task.job_id}")
            self._j.store_task(task)
            by_job.setdefault(task.job_id, []).append(task.id)
            if task.parent_id is not None:
                self._j.append(self._t.children, task.parent_id, task.id)
            for dep in task.depends_on:
                self._j.append(self._t.dependents, dep, task.id)
        for job_id, ids in by_job.items():
            self._j.extend(self._t.job_tasks, job_id, ids)

    def get_task(self, task_id: TaskId) -> TaskRecord | None:
        task = self._t.tasks.get(task_id)
        return dataclasses.replace(task) if task is not None else None

    def lock_task(self, task_id: TaskId) -> TaskRecord | None:
        return self.get_task(task_id)

    def save_task(self, task: TaskRecord) -> None:
        self._j.task(task.id)
        self._j.store_task(task)

    def job_tasks(
        self, job_id: JobId, *, after: TaskId | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        ids = sorted(self._t.job_tasks.get(job_id, []))
        if after is not None:
            ids = [i for i in ids if i > after]
        return [dataclasses.replace(self._t.tasks[i]) for i in ids[:limit]]

    def extend_lease(
        self, task_id: TaskId, attempt: int, lease_seconds: float
    ) -> dt.datetime | None:
        task = self._j.running_at(task_id, attempt)
        if task is None:
            return None
        expires = self._j.now + dt.timedelta(seconds=lease_seconds)
        self._j.store_task(dataclasses.replace(task, lease_expires=expires))
        return expires

    def set_display(self, task_id: TaskId, attempt: int, display: str) -> bool:
        task = self._j.running_at(task_id, attempt)
        if task is None:
            return False
        self._j.store_task(dataclasses.replace(task, display=display))
        return True

    def decrement_open_children(self, task_id: TaskId) -> TaskRecord:
        task = self._j.task(task_id)
        task = dataclasses.replace(task, open_children=task.open_children - 1)
        self._j.store_task(task)
        return dataclasses.replace(task)

    def mark_complete(self, task_id: TaskId) -> bool:
        task = self._j.task(task_id)
        if task.complete:
            return False
        self._j.store_task(dataclasses.replace(task, complete=True))
        return True

    def release_dependents(self, task_id: TaskId, publish_lease: float | None) -> list[TaskRecord]:
        released = []
        for dep_id in self._t.dependents.get(task_id, []):
            dep = self._t.tasks[dep_id]
            dep = dataclasses.replace(dep, deps_open=dep.deps_open - 1)
            if dep.deps_open == 0 and dep.state is TaskState.QUEUED:
                if publish_lease is not None:
                    dep.publish_pending = True
                    dep.publish_after = self._j.now + dt.timedelta(seconds=publish_lease)
                released.append(dataclasses.replace(dep))
            self._j.store_task(dep)
        return released

    def queued_descendants(self, task_id: TaskId) -> list[TaskId]:
        found: list[TaskId] = []
        stack = list(self._t.children.get(task_id, []))
        while stack:
            current = stack.pop()
            if self._t.tasks[current].state is TaskState.QUEUED:
                found.append(current)
            stack.extend(self._t.children.get(current, []))
        return sorted(found)

    def any_subtree_failed(self, task_ids: Sequence[TaskId]) -> bool:
        return any(self._t.tasks[i].subtree_failed for i in task_ids if i in self._t.tasks)

    def requeue_failed_tasks(self, job_id: JobId) -> int:
        count = 0
        for task_id in self._t.job_tasks.get(job_id, []):
            task = self._t.tasks[task_id]
            if task.state is not TaskState.FAILED:
                continue
            self._j.store_task(
                dataclasses.replace(
                    task,
                    state=TaskState.QUEUED,
                    retry_count=0,
                    crash_count=0,
                    system_requeues=0,
                    error=None,
                    not_before=None,
                    stopped_at=None,
                )
            )
            count += 1
        return count

    def task_counts(self, job_id: JobId) -> dict[TaskState, int]:
        counts: dict[TaskState, int] = {}
        for task_id in self._t.job_tasks.get(job_id, []):
            state = self._t.tasks[task_id].state
            counts[state] = counts.get(state, 0) + 1
        return counts

    def expired_leases(self, limit: int, overdue: float = 0.0) -> list[TaskRecord]:
        before = self._j.now - dt.timedelta(seconds=overdue)
        expired = []
        for task_id in self._t.running:
            task = self._t.tasks[task_id]
            if task.lease_expires is not None and task.lease_expires <= before:
                expired.append(dataclasses.replace(task))
                if len(expired) >= limit:
                    break
        return expired
