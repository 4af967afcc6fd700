"""Job rows in SQL (``JobRows``): submission, the derived state and its facts, listing, deletion.

The job row is hot (every claim and completion of its tasks may write its state), so
``set_job_state`` is a conditional UPDATE and skips the statement altogether when this
transaction already read the same state under the job row's lock (:class:`.memo.TxMemo`).
"""

from __future__ import annotations

from sqlalchemy import Text, delete, func, select

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError
from conveyor.core.identifiers import JobId
from conveyor.core.model import JobFacts, JobQuery, JobRecord, JobState
from conveyor.store_sql.executor import Executor
from conveyor.store_sql.memo import TxMemo
from conveyor.store_sql.rows import facts_from, job_from, job_row
from conveyor.store_sql.schema import jobs, task_attempts, task_dependencies, task_progress, tasks


class SqlJobs:
    """The ``JobRows`` part of one transaction."""

    def __init__(self, ex: Executor, memo: TxMemo) -> None:
        self._ex = ex
        self._memo = memo

    def insert_job(self, job: JobRecord) -> None:
        if not self._ex.insert_new(jobs, job_row(job), "id"):
            if job.idempotency_key is not None:
                raise AlreadyExistsError(
                    f"A job with idempotency key {job.idempotency_key!r} already exists"
                )
            raise AlreadyExistsError(f"A job with id {job.id} already exists")
        self._memo.new_jobs.add(job.id)

    def get_job(self, job_id: JobId) -> JobRecord | None:
        row = self._ex.execute(select(jobs).where(jobs.c.id == job_id)).first()
        return job_from(row._mapping) if row is not None else None

    def find_job_by_key(self, idempotency_key: str) -> JobRecord | None:
        row = self._ex.execute(
            select(jobs).where(jobs.c.idempotency_key == idempotency_key)
        ).first()
        return job_from(row._mapping) if row is not None else None

    def set_job_state(self, job_id: JobId, state: JobState) -> bool:
        """A conditional UPDATE: the (hot) job row is written only when the state changes."""
        known = self._memo.job_states
        if known.get(job_id) == state.value:
            return False
        params = {"p_job_id": job_id, "p_state": state.value, **self._ex.times()}
        if self._ex.hot_rows(self._ex.sql.set_job_state, params)[1]:
            if job_id in known:
                known[job_id] = state.value
            return True
        if self._ex.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is None:
            raise JobNotFoundError(f"No job with id {job_id}")
        return False

    def job_facts(self, job_id: JobId) -> JobFacts:
        """Facts in one SELECT of EXISTS probes, each served by an index.

        On PostgreSQL the job row is first locked ``FOR NO KEY UPDATE`` (which does not block
        inserts of the job's tasks). Without it, two transactions finishing the last two tasks
        of a job concurrently would each see the other's task as unfinished (READ COMMITTED)
        and neither would write COMPLETED. With it, the facts of the later transaction are read
        after the earlier one committed. The lock is held for the rest of the transaction,
        which in the use cases is the job-state write and the commit.
        """
        params = {"p_job_id": job_id}
        if not self._ex.lock(self._ex.sql.lock_job, params):
            raise JobNotFoundError(f"No job with id {job_id}")
        rows = self._ex.hot_rows(self._ex.sql.job_facts, params)[0]
        if not rows:
            raise JobNotFoundError(f"No job with id {job_id}")
        row = rows[0]
        self._memo.job_states[job_id] = row["state"]
        return facts_from(row)

    def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        stmt = select(jobs).order_by(jobs.c.id.desc()).limit(query.limit)
        if query.before_id is not None:
            stmt = stmt.where(jobs.c.id < query.before_id)
        if query.states:
            stmt = stmt.where(jobs.c.state.in_([s.value for s in query.states]))
        if query.name:
            stmt = stmt.where(
                func.lower(jobs.c.name, type_=Text).contains(query.name.lower(), autoescape=True)
            )
        if query.cluster:
            stmt = stmt.where(jobs.c.cluster == query.cluster)
        if query.submitted_after is not None:
            stmt = stmt.where(jobs.c.submitted_at >= query.submitted_after)
        if query.submitted_before is not None:
            stmt = stmt.where(jobs.c.submitted_at < query.submitted_before)
        return [job_from(r._mapping) for r in self._ex.execute(stmt)]

    def delete_job(self, job_id: JobId) -> bool:
        self._memo.job_states.pop(job_id, None)
        job_tasks = select(tasks.c.id).where(tasks.c.job_id == job_id).scalar_subquery()
        for table in (task_progress, task_attempts, task_dependencies):
            self._ex.execute(delete(table).where(table.c.task_id.in_(job_tasks)))
        self._ex.execute(delete(tasks).where(tasks.c.job_id == job_id))
        return bool(self._ex.execute(delete(jobs).where(jobs.c.id == job_id)).rowcount)
