"""Claims and the fused success in memory (:class:`conveyor.core.ports.Claims`).

``finish_computed`` is written here with the finer primitives of the other parts, so the
memory store states the rule the SQL adapter's one-statement version must match.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Iterator, Sequence

from conveyor.core.identifiers import TaskId
from conveyor.core.model import (
    INACTIVE_JOB_STATES,
    AttemptRecord,
    ClaimedTask,
    JobState,
    RegisteredIdentifier,
    TaskRecord,
    TaskState,
)
from conveyor.core.ports import FinishedTask
from conveyor.memory.attempts import MemoryAttempts
from conveyor.memory.jobs import MemoryJobs
from conveyor.memory.journal import Journal
from conveyor.memory.tasks import MemoryTasks


class MemoryClaims:
    def __init__(
        self, journal: Journal, jobs: MemoryJobs, tasks: MemoryTasks, attempts: MemoryAttempts
    ) -> None:
        self._j = journal
        self._t = journal.t
        self._jobs = jobs
        self._tasks = tasks
        self._attempts = attempts

    def _do_claim(self, task: TaskRecord, runner_id: str, lease_seconds: float) -> ClaimedTask:
        now = self._j.now
        expires = now + dt.timedelta(seconds=lease_seconds)
        task = dataclasses.replace(
            task,
            state=TaskState.RUNNING,
            attempt=task.attempt + 1,
            runner_id=runner_id,
            started_at=now,
            stopped_at=None,
            lease_expires=expires,
            not_before=None,
            publish_pending=False,
        )
        self._j.store_task(task)
        self._j.append(
            self._t.attempts, task.id, AttemptRecord(task.id, task.attempt, runner_id, now)
        )
        job = self._t.jobs[task.job_id]
        return ClaimedTask(
            id=task.id,
            job_id=task.job_id,
            job_name=job.name,
            parent_id=task.parent_id,
            cluster=task.cluster,
            identifier=task.identifier,
            input=task.input,
            display=task.display,
            attempt=task.attempt,
            retry_count=task.retry_count,
            max_retries=task.max_retries,
            optional_path=task.optional_path,
            timeout=task.timeout,
            lease_expires=expires,
            depends_on=task.depends_on,
        )

    def claim(self, task_id: TaskId, runner_id: str, lease_seconds: float) -> ClaimedTask | None:
        task = self._t.tasks.get(task_id)
        if task is None or not self._j.dispatchable(task):
            return None
        return self._do_claim(task, runner_id, lease_seconds)

    def _matching(
        self, cluster: str, identifiers: Sequence[RegisteredIdentifier]
    ) -> Iterator[TaskRecord]:
        for task_id in self._t.queued:
            task = self._t.tasks[task_id]
            if task.cluster != cluster:
                continue
            ident = task.identifier
            if any(
                r.name == ident.name and r.major == ident.major and ident.minor <= r.max_minor
                for r in identifiers
            ):
                yield task

    def claim_next(
        self,
        cluster: str,
        identifiers: Sequence[RegisteredIdentifier],
        runner_id: str,
        lease_seconds: float,
    ) -> ClaimedTask | None:
        for task in self._matching(cluster, identifiers):
            if self._j.dispatchable(task):
                return self._do_claim(task, runner_id, lease_seconds)
        return None

    def has_dispatchable(self, cluster: str, identifiers: Sequence[RegisteredIdentifier]) -> bool:
        return any(
            t.deps_open == 0 and self._t.jobs[t.job_id].state not in INACTIVE_JOB_STATES
            for t in self._matching(cluster, identifiers)
        )

    def claim_task(
        self,
        task_id: TaskId,
        cluster: str,
        runner_id: str,
        lease_seconds: float,
        job_state: JobState,
        job_states_from: Collection[JobState],
    ) -> ClaimedTask | None:
        task = self._t.tasks.get(task_id)
        if task is None or task.cluster != cluster:
            return None
        claimed = self.claim(task_id, runner_id, lease_seconds)
        if claimed is not None and self._t.jobs[claimed.job_id].state in job_states_from:
            self._jobs.set_job_state(claimed.job_id, job_state)
        return claimed

    def finish_computed(
        self, task_id: TaskId, attempt: int, display: str | None, publish_lease: float | None
    ) -> FinishedTask | None:
        task = self._j.running_at(task_id, attempt)
        if task is None:
            return None
        task = dataclasses.replace(
            task,
            state=TaskState.COMPUTED,
            stopped_at=self._j.now,
            lease_expires=None,
            error=None,
            open_children=0,
            display=task.display if display is None else display,
        )
        self._j.store_task(task)
        self._attempts.end_attempt(task_id, attempt, "computed", None)
        self._tasks.mark_complete(task_id)
        released = self._tasks.release_dependents(task_id, publish_lease)
        parent = None
        if task.parent_id is not None:
            parent = self._tasks.decrement_open_children(task.parent_id)
        return FinishedTask(task.job_id, parent, released, self._jobs.job_facts(task.job_id))
