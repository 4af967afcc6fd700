"""The in-memory store's tables and the undo journal every transaction writes through.

Every mutation goes through :class:`Journal` (``set``/``delete``/``append``/``extend``), which
records how to undo it, so a transaction that raises is rolled back completely. Appends change a
list in place and are undone by truncating it: undo runs in reverse order, so when an append is
undone every later change to that list already was (copying the list instead made a fan-out of
n subtasks O(n²)).

Each job's facts (``JobRows.job_facts``) are kept as counters updated by :meth:`store_task`, the
one place a task row is written, so reading them after every completion costs O(1) rather
than a scan of the job's tasks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from conveyor.core.errors import TaskNotFoundError
from conveyor.core.identifiers import DEFAULT_CLUSTER, JobId, TaskId
from conveyor.core.model import (
    DONE_STATES,
    INACTIVE_JOB_STATES,
    AttemptRecord,
    Cluster,
    JobRecord,
    RunnerInfo,
    TaskRecord,
    TaskState,
)


@dataclasses.dataclass(frozen=True, slots=True)
class JobCounts:
    """How many of a job's tasks contribute to each of its facts."""

    running: int = 0
    failed: int = 0
    work_done: int = 0
    open_roots: int = 0

    def plus(self, other: JobCounts, sign: int) -> JobCounts:
        return JobCounts(
            self.running + sign * other.running,
            self.failed + sign * other.failed,
            self.work_done + sign * other.work_done,
            self.open_roots + sign * other.open_roots,
        )


_NOTHING = JobCounts()


def counts_of(task: TaskRecord) -> JobCounts:
    """What one task contributes to its job's counters."""
    return JobCounts(
        running=int(task.state is TaskState.RUNNING),
        failed=int(task.state is TaskState.FAILED),
        work_done=int(task.state in DONE_STATES or task.retry_count > 0 or task.attempt > 0),
        open_roots=int(task.parent_id is None and not task.complete),
    )


class Tables:
    """The store's state, shared by every transaction (under the store's lock)."""

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {
            DEFAULT_CLUSTER: Cluster(DEFAULT_CLUSTER, "Default", deletable=False)
        }
        self.jobs: dict[JobId, JobRecord] = {}
        self.job_keys: dict[str, JobId] = {}
        self.job_counts: dict[JobId, JobCounts] = {}
        self.tasks: dict[TaskId, TaskRecord] = {}
        self.job_tasks: dict[JobId, list[TaskId]] = {}
        self.children: dict[TaskId, list[TaskId]] = {}
        self.dependents: dict[TaskId, list[TaskId]] = {}
        self.queued: dict[TaskId, None] = {}  # insertion-ordered set of QUEUED task ids
        self.running: dict[TaskId, None] = {}
        self.attempts: dict[TaskId, list[AttemptRecord]] = {}
        self.progress: dict[tuple[TaskId, int], dict[str | None, tuple[int, int]]] = {}
        self.runners: dict[str, RunnerInfo] = {}


class Journal:
    """One transaction's view of :class:`Tables`: its clock, its writes and their undo log."""

    def __init__(self, tables: Tables, now: dt.datetime) -> None:
        self.t = tables
        self.now = now
        self._undo: list[Callable[[], None]] = []

    # -- journalled writes ---------------------------------------------------------------------
    def set(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        if key in mapping:
            old = mapping[key]
            self._undo.append(lambda: mapping.__setitem__(key, old))
        else:
            self._undo.append(lambda: mapping.pop(key, None))
        mapping[key] = value

    def delete(self, mapping: dict[Any, Any], key: Any) -> None:
        if key in mapping:
            old = mapping.pop(key)
            self._undo.append(lambda: mapping.__setitem__(key, old))

    def append(self, mapping: dict[Any, list[Any]], key: Any, value: Any) -> None:
        """``mapping[key].append(value)``, creating the list if needed; O(1)."""
        self.extend(mapping, key, (value,))

    def extend(self, mapping: dict[Any, list[Any]], key: Any, values: Any) -> None:
        """``mapping[key].extend(values)`` in place, creating the list if needed."""
        current = mapping.get(key)
        if current is None:
            self.set(mapping, key, list(values))
            return
        size = len(current)
        current.extend(values)
        self._undo.append(lambda: current.__delitem__(slice(size, None)))

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    # -- task rows -----------------------------------------------------------------------------
    def store_task(self, task: TaskRecord) -> None:
        """Write a task row (a copy), keeping the state indexes and the job's counters."""
        old = self.t.tasks.get(task.id)
        self.set(self.t.tasks, task.id, dataclasses.replace(task))
        for index, member in (
            (self.t.queued, task.state is TaskState.QUEUED),
            (self.t.running, task.state is TaskState.RUNNING),
        ):
            if member and task.id not in index:
                self.set(index, task.id, None)
            elif not member and task.id in index:
                self.delete(index, task.id)
        before = counts_of(old) if old is not None else _NOTHING
        after = counts_of(task)
        if before != after:
            counts = self.t.job_counts.get(task.job_id, _NOTHING)
            self.set(self.t.job_counts, task.job_id, counts.plus(after, 1).plus(before, -1))

    def task(self, task_id: TaskId) -> TaskRecord:
        """The stored row (not a copy). Raises TaskNotFoundError."""
        task = self.t.tasks.get(task_id)
        if task is None:
            raise TaskNotFoundError(f"No task with id {task_id}")
        return task

    def running_at(self, task_id: TaskId, attempt: int) -> TaskRecord | None:
        """The stored row if the task is RUNNING at ``attempt`` (the fence of runner writes)."""
        task = self.t.tasks.get(task_id)
        if task is None or task.attempt != attempt or task.state is not TaskState.RUNNING:
            return None
        return task

    def dispatchable(self, task: TaskRecord) -> bool:
        """The claim rule: QUEUED, no open dependency, ``not_before`` passed, job active."""
        if task.state is not TaskState.QUEUED or task.deps_open != 0:
            return False
        if task.not_before is not None and task.not_before > self.now:
            return False
        return self.t.jobs[task.job_id].state not in INACTIVE_JOB_STATES
