"""The transactional outbox in memory (:class:`conveyor.core.ports.Outbox`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import DispatchMessage, TaskState
from conveyor.memory.journal import Journal


class MemoryOutbox:
    def __init__(self, journal: Journal) -> None:
        self._j = journal
        self._t = journal.t

    def republish_ready(self, job_id: JobId, lease_seconds: float) -> list[DispatchMessage]:
        messages = []
        until = self._j.now + dt.timedelta(seconds=lease_seconds)
        for task_id in self._t.job_tasks.get(job_id, []):
            task = self._t.tasks[task_id]
            if task.state is TaskState.QUEUED and task.deps_open == 0:
                self._j.store_task(
                    dataclasses.replace(task, publish_pending=True, publish_after=until)
                )
                messages.append(
                    DispatchMessage(task.id, task.job_id, task.cluster, task.identifier)
                )
        return messages

    def mark_published(self, task_ids: Sequence[TaskId]) -> None:
        for task_id in task_ids:
            task = self._t.tasks.get(task_id)
            if task is not None and task.publish_pending:
                self._j.store_task(
                    dataclasses.replace(task, publish_pending=False, published_at=self._j.now)
                )

    def claim_unpublished(self, lease_seconds: float, limit: int) -> list[DispatchMessage]:
        messages = []
        now = self._j.now
        until = now + dt.timedelta(seconds=lease_seconds)
        for task in list(self._t.tasks.values()):
            if not task.publish_pending:
                continue
            if task.publish_after is not None and task.publish_after > now:
                continue
            self._j.store_task(dataclasses.replace(task, publish_after=until))
            messages.append(DispatchMessage(task.id, task.job_id, task.cluster, task.identifier))
            if len(messages) >= limit:
                break
        return messages
