"""The read service: every read the web UI, /metrics, the CLI's read commands and the client make.

Reads change nothing, so they need neither the broker, the policy nor the outage tracking of the
:class:`~conveyor.core.service.Orchestrator` (which keeps the commands): a read service is a
store and nothing else, and a dashboard built on it cannot change what the orchestrator does.
Each method is one store transaction; the monitoring queries go through the read-only port
``tx.reads`` (:class:`~conveyor.core.ports.MonitoringReads`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from conveyor.core.errors import JobNotFoundError
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import (
    AttemptRecord,
    Cluster,
    Job,
    JobQuery,
    JobRecord,
    JobState,
    RunnerInfo,
    TaskRecord,
    TaskState,
)
from conveyor.core.ports import Store, StoreTx
from conveyor.core.views import (
    AttemptBucket,
    ChildGroup,
    EndedAttempt,
    IdentifierStateCount,
    QueueStats,
    TaskFailure,
    TaskQuery,
)


class ReadService:
    """Read-only queries over a store, for callers that show state rather than change it."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- jobs and tasks ------------------------------------------------------------------------
    def job_record(self, job_id: JobId) -> JobRecord:
        """The job's row. Raises JobNotFoundError."""
        job = self.store.run(lambda tx: tx.jobs.get_job(job_id))
        if job is None:
            raise JobNotFoundError(f"No job with id {job_id}")
        return job

    def find_job(self, job_id: JobId) -> Job:
        """The job with its progress and execution statistics, read in one transaction (so
        they agree). Raises JobNotFoundError."""

        def read(tx: StoreTx) -> Job:
            record = tx.jobs.get_job(job_id)
            if record is None:
                raise JobNotFoundError(f"No job with id {job_id}")
            return Job(
                id=record.id,
                name=record.name,
                state=record.state,
                submitted_at=record.submitted_at,
                cluster=record.cluster,
                progress=tx.attempts.job_progress(job_id),
                execution_stats=tx.attempts.job_stats(job_id),
            )

        return self.store.run(read)

    def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        return self.store.run(lambda tx: tx.jobs.query_jobs(query))

    def iter_tasks(self, job_id: JobId, page_size: int = 1000) -> Iterator[TaskRecord]:
        """Every task of a job, paging through the store lazily (one transaction per page, so
        a job of 10^6 tasks never holds a transaction open for the whole walk)."""
        self.job_record(job_id)
        after: TaskId | None = None
        while True:
            page = self.store.run(
                lambda tx: tx.tasks.job_tasks(job_id, after=after, limit=page_size)  # noqa: B023
            )
            yield from page
            if len(page) < page_size:
                return
            after = page[-1].id

    def task_counts(self, job_id: JobId) -> dict[TaskState, int]:
        return self.store.run(lambda tx: tx.tasks.task_counts(job_id))

    def get_task(self, task_id: TaskId) -> TaskRecord | None:
        return self.store.run(lambda tx: tx.tasks.get_task(task_id))

    def task_attempts(self, task_id: TaskId) -> list[AttemptRecord]:
        return self.store.run(lambda tx: tx.attempts.task_attempts(task_id))

    # -- runners and clusters ------------------------------------------------------------------
    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]:
        return self.store.run(lambda tx: tx.runners.list_runners(include_gone))

    def all_clusters(self) -> list[Cluster]:
        return self.store.run(lambda tx: tx.clusters.list_clusters())

    # -- monitoring (the web UI, dashboards, metrics) -------------------------------------------
    def store_now(self) -> dt.datetime:
        """The store's clock: ages and lease countdowns shown to a user are computed from it,
        as the leases themselves are."""
        return self.store.run(lambda tx: tx.now())

    def count_jobs_by_state(self) -> dict[JobState, int]:
        return self.store.run(lambda tx: tx.reads.count_jobs_by_state())

    def task_counts_by_job(self, job_ids: Sequence[JobId]) -> dict[JobId, dict[TaskState, int]]:
        return self.store.run(lambda tx: tx.reads.task_counts_by_job(job_ids))

    def queue_stats(self) -> list[QueueStats]:
        return self.store.run(lambda tx: tx.reads.queue_stats())

    def recent_failures(self, limit: int = 20) -> list[TaskFailure]:
        return self.store.run(lambda tx: tx.reads.recent_failures(limit))

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        """A page of one job's tasks. Raises JobNotFoundError."""

        def read(tx: StoreTx) -> list[TaskRecord]:
            if tx.jobs.get_job(query.job_id) is None:
                raise JobNotFoundError(f"No job with id {query.job_id}")
            return tx.reads.query_tasks(query)

        return self.store.run(read)

    def children_summary(self, job_id: JobId, parent_id: TaskId | None) -> list[ChildGroup]:
        """Counts per (identifier, state) of a task's children, or of the job's roots."""
        return self.store.run(lambda tx: tx.reads.children_summary(job_id, parent_id))

    def child_counts(self, task_ids: Sequence[TaskId]) -> dict[TaskId, int]:
        return self.store.run(lambda tx: tx.reads.child_counts(task_ids))

    def attempts_per_minute(self, since: dt.datetime) -> list[AttemptBucket]:
        return self.store.run(lambda tx: tx.reads.attempts_per_minute(since))

    def ended_attempts(self, since: dt.datetime, until: dt.datetime) -> list[EndedAttempt]:
        return self.store.run(lambda tx: tx.reads.ended_attempts(since, until))

    def task_counts_by_identifier(self) -> list[IdentifierStateCount]:
        return self.store.run(lambda tx: tx.reads.task_counts_by_identifier())
