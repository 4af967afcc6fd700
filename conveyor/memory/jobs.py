"""Job rows in memory (:class:`conveyor.core.ports.JobRows`)."""

from __future__ import annotations

import dataclasses

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError
from conveyor.core.identifiers import JobId
from conveyor.core.model import JobFacts, JobQuery, JobRecord, JobState
from conveyor.memory.journal import JobCounts, Journal


class MemoryJobs:
    def __init__(self, journal: Journal) -> None:
        self._j = journal
        self._t = journal.t

    def insert_job(self, job: JobRecord) -> None:
        if job.idempotency_key is not None:
            if job.idempotency_key in self._t.job_keys:
                raise AlreadyExistsError(
                    f"A job with idempotency key {job.idempotency_key!r} already exists"
                )
            self._j.set(self._t.job_keys, job.idempotency_key, job.id)
        self._j.set(self._t.jobs, job.id, dataclasses.replace(job))
        self._j.set(self._t.job_tasks, job.id, [])
        self._j.set(self._t.job_counts, job.id, JobCounts())

    def get_job(self, job_id: JobId) -> JobRecord | None:
        job = self._t.jobs.get(job_id)
        return dataclasses.replace(job) if job is not None else None

    def find_job_by_key(self, idempotency_key: str) -> JobRecord | None:
        job_id = self._t.job_keys.get(idempotency_key)
        return self.get_job(job_id) if job_id is not None else None

    def set_job_state(self, job_id: JobId, state: JobState) -> bool:
        job = self._t.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"No job with id {job_id}")
        if job.state is state:
            return False
        updated = dataclasses.replace(job, state=state, updated_at=self._j.now)
        self._j.set(self._t.jobs, job_id, updated)
        return True

    def job_facts(self, job_id: JobId) -> JobFacts:
        """From the job's counters (:func:`conveyor.memory.journal.counts_of`): O(1)."""
        job = self._t.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"No job with id {job_id}")
        counts = self._t.job_counts.get(job_id, JobCounts())
        return JobFacts(
            state=job.state,
            any_running=counts.running > 0,
            any_failed=counts.failed > 0,
            any_work_done=counts.work_done > 0,
            all_roots_complete=counts.open_roots == 0,
        )

    def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        found = []
        needle = query.name.lower() if query.name else None
        for job in sorted(self._t.jobs.values(), key=lambda j: j.id, reverse=True):
            if query.before_id is not None and job.id >= query.before_id:
                continue
            if query.states and job.state not in query.states:
                continue
            if needle and needle not in job.name.lower():
                continue
            if query.cluster and job.cluster != query.cluster:
                continue
            if query.submitted_after and job.submitted_at < query.submitted_after:
                continue
            if query.submitted_before and job.submitted_at >= query.submitted_before:
                continue
            found.append(dataclasses.replace(job))
            if len(found) >= query.limit:
                break
        return found

    def delete_job(self, job_id: JobId) -> bool:
        job = self._t.jobs.get(job_id)
        if job is None:
            return False
        t = self._t
        task_ids = set(t.job_tasks.get(job_id, []))
        for task_id in t.job_tasks.get(job_id, []):
            for mapping in (t.tasks, t.children, t.dependents, t.queued, t.running, t.attempts):
                self._j.delete(mapping, task_id)
        for key in [k for k in t.progress if k[0] in task_ids]:
            self._j.delete(t.progress, key)
        self._j.delete(t.job_tasks, job_id)
        self._j.delete(t.job_counts, job_id)
        if job.idempotency_key is not None:
            self._j.delete(t.job_keys, job.idempotency_key)
        self._j.delete(t.jobs, job_id)
        return True
