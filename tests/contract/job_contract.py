"""The contract of ``tx.jobs`` (:class:`conveyor.core.ports.JobRows`)."""

from __future__ import annotations

import datetime as dt

import pytest

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import Cluster, JobQuery, JobRecord, JobState, TaskState
from conveyor.core.ports import Store
from tests.contract.store_fixtures import LEAF, StoreFixture, new_job, spec


class JobRowsContract(StoreFixture):
    def test_a_job_and_its_roots_round_trip(self, store: Store) -> None:
        root = spec(max_retries=3, timeout=9.5)
        job = new_job(store, root, name="nightly")
        loaded = store.run(lambda tx: tx.jobs.get_job(job.id))
        assert loaded is not None
        assert (loaded.name, loaded.state, loaded.root_count) == ("nightly", JobState.SUBMITTED, 1)
        task = store.run(lambda tx: tx.tasks.get_task(root.id))
        assert task is not None
        assert task.identifier == LEAF and task.input == b'{"x":1}' and task.display == "Leaf"
        assert task.state is TaskState.QUEUED and task.max_retries == 3 and task.timeout == 9.5
        assert task.job_id == job.id and task.parent_id is None and task.deps_open == 0
        assert task.publish_pending is True

    def test_unknown_ids_read_as_none(self, store: Store) -> None:
        assert store.run(lambda tx: tx.jobs.get_job(JobId(uuid7()))) is None
        assert store.run(lambda tx: tx.tasks.get_task(TaskId(uuid7()))) is None
        with pytest.raises(JobNotFoundError):
            store.run(lambda tx: tx.jobs.job_facts(JobId(uuid7())))

    def test_idempotency_keys_are_unique(self, store: Store) -> None:
        job = new_job(store, key="nightly-2026-11-28")
        assert store.run(lambda tx: tx.jobs.find_job_by_key("nightly-2026-11-28")).id == job.id
        now = store.run(lambda tx: tx.now())
        dup = JobRecord(
            JobId(uuid7()), "x", JobState.SUBMITTED, now, idempotency_key="nightly-2026-11-28"
        )
        with pytest.raises(AlreadyExistsError):
            store.run(lambda tx: tx.jobs.insert_job(dup))

    def test_set_job_state_reports_whether_it_changed(self, store: Store) -> None:
        job = new_job(store)
        assert store.run(lambda tx: tx.jobs.set_job_state(job.id, JobState.SUBMITTED)) is False
        assert store.run(lambda tx: tx.jobs.set_job_state(job.id, JobState.RUNNING)) is True
        assert store.run(lambda tx: tx.jobs.get_job(job.id)).state is JobState.RUNNING

    def test_job_facts_follow_the_tasks(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        facts = store.run(lambda tx: tx.jobs.job_facts(job.id))
        assert not (facts.any_running or facts.any_failed or facts.any_work_done)
        assert not facts.all_roots_complete
        store.run(lambda tx: tx.claims.claim(root.id, "r1", 30))
        facts = store.run(lambda tx: tx.jobs.job_facts(job.id))
        assert facts.any_running and facts.any_work_done
        task = store.run(lambda tx: tx.tasks.lock_task(root.id))
        task.state = TaskState.FAILED
        store.run(lambda tx: tx.tasks.save_task(task))
        facts = store.run(lambda tx: tx.jobs.job_facts(job.id))
        assert facts.any_failed and not facts.any_running
        task.state = TaskState.COMPUTED
        store.run(lambda tx: tx.tasks.save_task(task))
        assert store.run(lambda tx: tx.tasks.mark_complete(root.id)) is True
        assert store.run(lambda tx: tx.jobs.job_facts(job.id)).all_roots_complete

    def test_query_jobs_filters_and_pages_newest_first(self, store: Store) -> None:
        store.run(lambda tx: tx.clusters.insert_cluster(Cluster("gpu", "GPU")))
        jobs = [new_job(store, name=f"Nightly {i}") for i in range(5)]
        other = new_job(store, spec(cluster="gpu"), name="adhoc")
        store.run(lambda tx: tx.jobs.set_job_state(jobs[0].id, JobState.FAILED))
        everything = store.run(lambda tx: tx.jobs.query_jobs(JobQuery()))
        assert [j.id for j in everything] == [other.id, *[j.id for j in reversed(jobs)]]
        page1 = store.run(lambda tx: tx.jobs.query_jobs(JobQuery(name="NIGHTLY", limit=3)))
        assert [j.id for j in page1] == [j.id for j in reversed(jobs)][:3]
        page2 = store.run(
            lambda tx: tx.jobs.query_jobs(JobQuery(name="nightly", limit=3, before_id=page1[-1].id))
        )
        assert [j.id for j in page2] == [jobs[1].id, jobs[0].id]
        failed = store.run(lambda tx: tx.jobs.query_jobs(JobQuery(states=(JobState.FAILED,))))
        assert [j.id for j in failed] == [jobs[0].id]
        gpu = store.run(lambda tx: tx.jobs.query_jobs(JobQuery(cluster="gpu")))
        assert [j.id for j in gpu] == [other.id]
        later = store.run(lambda tx: tx.now()) + dt.timedelta(hours=1)
        assert store.run(lambda tx: tx.jobs.query_jobs(JobQuery(submitted_after=later))) == []
        assert len(store.run(lambda tx: tx.jobs.query_jobs(JobQuery(submitted_before=later)))) == 6

    def test_delete_job_removes_everything(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        store.run(lambda tx: tx.claims.claim(root.id, "r1", 30))
        store.run(lambda tx: tx.attempts.write_progress(root.id, 1, {"a": (2, 1)}))
        assert store.run(lambda tx: tx.jobs.delete_job(job.id)) is True
        assert store.run(lambda tx: tx.jobs.get_job(job.id)) is None
        assert store.run(lambda tx: tx.tasks.get_task(root.id)) is None
        assert store.run(lambda tx: tx.attempts.task_attempts(root.id)) == []
        assert store.run(lambda tx: tx.jobs.delete_job(job.id)) is False
