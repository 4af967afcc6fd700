"""The store port's contract, one test per promise of ``conveyor.core.ports.StoreTx``.

Subclass ``StoreContract`` and provide a ``store`` fixture returning a fresh, empty store (with
only the ``default`` cluster). The in-memory store runs it in ``tests/``, the SQL store on
SQLite and PostgreSQL in ``integration/``, unchanged.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    Cluster,
    JobQuery,
    JobRecord,
    JobState,
    NewTask,
    RegisteredIdentifier,
    RunnerInfo,
    TaskError,
    TaskRecord,
    TaskState,
)
from conveyor.core.ports import Store
from conveyor.core.usecases import Policy, submit_job

POLICY = Policy()
LEAF = TaskIdentifier("Leaf", "v1.2")


def spec(ident: TaskIdentifier = LEAF, cluster: str = "default", **kw: Any) -> NewTask:
    return NewTask(
        id=TaskId(uuid7()),
        cluster=cluster,
        identifier=ident,
        input=b'{"x":1}',
        display=ident.name,
        **kw,
    )


def new_job(store: Store, *roots: NewTask, name: str = "job", key: str | None = None) -> JobRecord:
    roots = roots or (spec(),)
    job, _ = store.run(lambda tx: submit_job(tx, name, list(roots), POLICY, key))
    return job


def child_record(parent: TaskRecord, **overrides: Any) -> TaskRecord:
    values: dict[str, Any] = dict(
        id=TaskId(uuid7()),
        job_id=parent.job_id,
        parent_id=parent.id,
        cluster=parent.cluster,
        identifier=LEAF,
        input=b"1",
        display="Child",
    )
    values.update(overrides)
    return TaskRecord(**values)


REG = [RegisteredIdentifier("Leaf", 1, 2)]


class StoreContract:
    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError

    # -- transactions --------------------------------------------------------------------------
    def test_a_transaction_that_raises_changes_nothing(self, store: Store) -> None:
        job = new_job(store)

        def boom(tx: Any) -> None:
            tx.insert_cluster(Cluster("gpu", "GPU"))
            tx.set_job_state(job.id, JobState.CANCELED)
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.run(boom)
        assert store.run(lambda tx: tx.get_cluster("gpu")) is None
        assert store.run(lambda tx: tx.get_job(job.id)).state is JobState.SUBMITTED

    def test_now_is_timezone_aware_utc(self, store: Store) -> None:
        now = store.run(lambda tx: tx.now())
        assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)

    # -- clusters ------------------------------------------------------------------------------
    def test_default_cluster_exists_and_cannot_be_deleted(self, store: Store) -> None:
        default = store.run(lambda tx: tx.get_cluster("default"))
        assert default is not None and not default.deletable
        assert store.run(lambda tx: tx.delete_cluster("default")) is False
        assert store.run(lambda tx: tx.get_cluster("default")) is not None

    def test_clusters_are_created_listed_and_deleted(self, store: Store) -> None:
        store.run(lambda tx: tx.insert_cluster(Cluster("gpu", "GPU machines")))
        assert [c.slug for c in store.run(lambda tx: tx.list_clusters())] == ["default", "gpu"]
        assert store.run(lambda tx: tx.get_cluster("gpu")) == Cluster("gpu", "GPU machines")
        assert store.run(lambda tx: tx.delete_cluster("gpu")) is True
        assert store.run(lambda tx: tx.delete_cluster("gpu")) is False

    def test_a_duplicate_cluster_slug_is_rejected(self, store: Store) -> None:
        store.run(lambda tx: tx.insert_cluster(Cluster("gpu", "GPU")))
        with pytest.raises(AlreadyExistsError):
            store.run(lambda tx: tx.insert_cluster(Cluster("gpu", "again")))

    # -- jobs ----------------------------------------------------------------------------------
    def test_a_job_and_its_roots_round_trip(self, store: Store) -> None:
        root = spec(max_retries=3, timeout=9.5)
        job = new_job(store, root, name="nightly")
        loaded = store.run(lambda tx: tx.get_job(job.id))
        assert loaded is not None
        assert (loaded.name, loaded.state, loaded.root_count) == ("nightly", JobState.SUBMITTED, 1)
        task = store.run(lambda tx: tx.get_task(root.id))
        assert task is not None
        assert task.identifier == LEAF and task.input == b'{"x":1}' and task.display == "Leaf"
        assert task.state is TaskState.QUEUED and task.max_retries == 3 and task.timeout == 9.5
        assert task.job_id == job.id and task.parent_id is None and task.deps_open == 0
        assert task.publish_pending is True

    def test_unknown_ids_read_as_none(self, store: Store) -> None:
        assert store.run(lambda tx: tx.get_job(JobId(uuid7()))) is None
        assert store.run(lambda tx: tx.get_task(TaskId(uuid7()))) is None
        with pytest.raises(JobNotFoundError):
            store.run(lambda tx: tx.job_facts(JobId(uuid7())))

    def test_idempotency_keys_are_unique(self, store: Store) -> None:
        job = new_job(store, key="nightly-2026-11-28")
        assert store.run(lambda tx: tx.find_job_by_key("nightly-2026-11-28")).id == job.id
        now = store.run(lambda tx: tx.now())
        dup = JobRecord(
            JobId(uuid7()), "x", JobState.SUBMITTED, now, idempotency_key="nightly-2026-11-28"
        )
        with pytest.raises(AlreadyExistsError):
            store.run(lambda tx: tx.insert_job(dup))

    def test_set_job_state_reports_whether_it_changed(self, store: Store) -> None:
        job = new_job(store)
        assert store.run(lambda tx: tx.set_job_state(job.id, JobState.SUBMITTED)) is False
        assert store.run(lambda tx: tx.set_job_state(job.id, JobState.RUNNING)) is True
        assert store.run(lambda tx: tx.get_job(job.id)).state is JobState.RUNNING

    def test_job_facts_follow_the_tasks(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        facts = store.run(lambda tx: tx.job_facts(job.id))
        assert not (facts.any_running or facts.any_failed or facts.any_work_done)
        assert not facts.all_roots_complete
        store.run(lambda tx: tx.claim(root.id, "r1", 30))
        facts = store.run(lambda tx: tx.job_facts(job.id))
        assert facts.any_running and facts.any_work_done
        task = store.run(lambda tx: tx.lock_task(root.id))
        task.state = TaskState.FAILED
        store.run(lambda tx: tx.save_task(task))
        facts = store.run(lambda tx: tx.job_facts(job.id))
        assert facts.any_failed and not facts.any_running
        task.state = TaskState.COMPUTED
        store.run(lambda tx: tx.save_task(task))
        assert store.run(lambda tx: tx.mark_complete(root.id)) is True
        assert store.run(lambda tx: tx.job_facts(job.id)).all_roots_complete

    def test_query_jobs_filters_and_pages_newest_first(self, store: Store) -> None:
        store.run(lambda tx: tx.insert_cluster(Cluster("gpu", "GPU")))
        jobs = [new_job(store, name=f"Nightly {i}") for i in range(5)]
        other = new_job(store, spec(cluster="gpu"), name="adhoc")
        store.run(lambda tx: tx.set_job_state(jobs[0].id, JobState.FAILED))
        everything = store.run(lambda tx: tx.query_jobs(JobQuery()))
        assert [j.id for j in everything] == [other.id, *[j.id for j in reversed(jobs)]]
        page1 = store.run(lambda tx: tx.query_jobs(JobQuery(name="NIGHTLY", limit=3)))
        assert [j.id for j in page1] == [j.id for j in reversed(jobs)][:3]
        page2 = store.run(
            lambda tx: tx.query_jobs(JobQuery(name="nightly", limit=3, before_id=page1[-1].id))
        )
        assert [j.id for j in page2] == [jobs[1].id, jobs[0].id]
        failed = store.run(lambda tx: tx.query_jobs(JobQuery(states=(JobState.FAILED,))))
        assert [j.id for j in failed] == [jobs[0].id]
        gpu = store.run(lambda tx: tx.query_jobs(JobQuery(cluster="gpu")))
        assert [j.id for j in gpu] == [other.id]
        later = store.run(lambda tx: tx.now()) + dt.timedelta(hours=1)
        assert store.run(lambda tx: tx.query_jobs(JobQuery(submitted_after=later))) == []
        assert len(store.run(lambda tx: tx.query_jobs(JobQuery(submitted_before=later)))) == 6

    def test_delete_job_removes_everything(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        store.run(lambda tx: tx.claim(root.id, "r1", 30))
        store.run(lambda tx: tx.write_progress(root.id, 1, {"a": (2, 1)}))
        assert store.run(lambda tx: tx.delete_job(job.id)) is True
        assert store.run(lambda tx: tx.get_job(job.id)) is None
        assert store.run(lambda tx: tx.get_task(root.id)) is None
        assert store.run(lambda tx: tx.task_attempts(root.id)) == []
        assert store.run(lambda tx: tx.delete_job(job.id)) is False

    # -- tasks ---------------------------------------------------------------------------------
    def test_insert_tasks_stores_dependencies_and_paths(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        parent = store.run(lambda tx: tx.get_task(root.id))
        a = child_record(parent, optional=True, optional_path=(TaskId(uuid7()),))
        b = child_record(parent, depends_on=(a.id,), deps_open=1)
        store.run(lambda tx: tx.insert_tasks([a, b]))
        loaded_b = store.run(lambda tx: tx.get_task(b.id))
        assert loaded_b.depends_on == (a.id,) and loaded_b.deps_open == 1
        assert store.run(lambda tx: tx.get_task(a.id)).optional_path == a.optional_path
        tasks = store.run(lambda tx: tx.job_tasks(job.id))
        assert [t.id for t in tasks] == [root.id, a.id, b.id]
        assert [
            t.id for t in store.run(lambda tx: tx.job_tasks(job.id, after=root.id, limit=1))
        ] == [a.id]

    def test_save_task_writes_every_mutable_field(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        task = store.run(lambda tx: tx.lock_task(root.id))
        now = store.run(lambda tx: tx.now())
        task.state = TaskState.FAILED
        task.display = "Leaf\nboom"
        task.retry_count, task.crash_count, task.system_requeues = 2, 3, 4
        task.open_children, task.subtree_failed = 5, True
        task.error = TaskError("ValueError", "boom", "Traceback ...")
        task.not_before = now + dt.timedelta(seconds=5)
        task.stopped_at = now
        task.publish_pending = False
        store.run(lambda tx: tx.save_task(task))
        loaded = store.run(lambda tx: tx.get_task(root.id))
        assert loaded.state is TaskState.FAILED and loaded.display == "Leaf\nboom"
        assert (loaded.retry_count, loaded.crash_count, loaded.system_requeues) == (2, 3, 4)
        assert loaded.open_children == 5 and loaded.subtree_failed
        assert loaded.error == TaskError("ValueError", "boom", "Traceback ...")
        assert loaded.not_before == task.not_before and loaded.stopped_at == now
        assert loaded.publish_pending is False

    def test_claim_takes_a_dispatchable_task_once(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root, name="claims")
        claimed = store.run(lambda tx: tx.claim(root.id, "runner-1", 30))
        assert claimed is not None
        assert (claimed.id, claimed.job_id, claimed.job_name) == (root.id, job.id, "claims")
        assert claimed.attempt == 1 and claimed.input == b'{"x":1}'
        assert claimed.lease_expires > store.run(lambda tx: tx.now())
        assert store.run(lambda tx: tx.claim(root.id, "runner-2", 30)) is None
        task = store.run(lambda tx: tx.get_task(root.id))
        assert task.state is TaskState.RUNNING and task.runner_id == "runner-1"
        assert task.started_at is not None and task.publish_pending is False
        attempts = store.run(lambda tx: tx.task_attempts(root.id))
        assert [(a.attempt, a.runner_id, a.outcome) for a in attempts] == [
            (1, "runner-1", "running")
        ]

    def test_claim_task_sets_the_job_state_only_from_the_given_states(self, store: Store) -> None:
        first, second, third = spec(), spec(), spec()
        job = new_job(store, first, second, third)
        start = frozenset({JobState.SUBMITTED, JobState.STARTED})
        claimed = store.run(
            lambda tx: tx.claim_task(first.id, "default", "r1", 30, JobState.RUNNING, start)
        )
        assert claimed is not None and claimed.attempt == 1 and claimed.job_name == "job"
        assert store.run(lambda tx: tx.get_job(job.id)).state is JobState.RUNNING
        attempts = store.run(lambda tx: tx.task_attempts(first.id))
        assert [(a.attempt, a.runner_id, a.outcome) for a in attempts] == [(1, "r1", "running")]
        # Not claimable again: None and nothing changes.
        store.run(lambda tx: tx.set_job_state(job.id, JobState.STARTED))
        again = store.run(
            lambda tx: tx.claim_task(first.id, "default", "r2", 30, JobState.RUNNING, start)
        )
        assert again is None
        assert store.run(lambda tx: tx.get_job(job.id)).state is JobState.STARTED
        # A state outside job_states_from is left as it is.
        other = store.run(
            lambda tx: tx.claim_task(second.id, "default", "r2", 30, JobState.RUNNING, frozenset())
        )
        assert other is not None
        assert store.run(lambda tx: tx.get_job(job.id)).state is JobState.STARTED
        store.run(lambda tx: tx.claim_task(third.id, "default", "r3", 30, JobState.RUNNING, start))
        assert store.run(lambda tx: tx.get_job(job.id)).state is JobState.RUNNING
        assert store.run(lambda tx: tx.get_task(third.id)).runner_id == "r3"

    def test_claim_task_claims_only_a_task_of_the_runners_cluster(self, store: Store) -> None:
        store.run(lambda tx: tx.insert_cluster(Cluster("other", "Other")))
        foreign = spec(cluster="other")
        job = new_job(store, foreign)
        start = frozenset({JobState.SUBMITTED, JobState.STARTED})
        refused = store.run(
            lambda tx: tx.claim_task(foreign.id, "default", "r1", 30, JobState.RUNNING, start)
        )
        assert refused is None
        task = store.run(lambda tx: tx.get_task(foreign.id))
        assert task.state is TaskState.QUEUED and task.attempt == 0 and task.runner_id is None
        assert store.run(lambda tx: tx.task_attempts(foreign.id)) == []
        assert store.run(lambda tx: tx.get_job(job.id)).state is JobState.SUBMITTED
        claimed = store.run(
            lambda tx: tx.claim_task(foreign.id, "other", "r2", 30, JobState.RUNNING, start)
        )
        assert claimed is not None and claimed.cluster == "other" and claimed.attempt == 1

    def test_finish_computed_records_an_attempt_and_its_effects(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        parent = store.run(lambda tx: tx.lock_task(root.id))
        a = child_record(parent)
        b = child_record(parent)
        c = child_record(parent, depends_on=(a.id, a.id), deps_open=2)
        d = child_record(parent, depends_on=(a.id, b.id), deps_open=2)
        store.run(lambda tx: tx.insert_tasks([a, b, c, d]))
        parent.open_children = 4
        store.run(lambda tx: tx.save_task(parent))
        claimed = store.run(lambda tx: tx.claim(a.id, "r1", 30))
        assert claimed is not None
        # Fenced: another attempt changes nothing.
        assert store.run(lambda tx: tx.finish_computed(a.id, 2, None, 30)) is None
        assert store.run(lambda tx: tx.get_task(a.id)).state is TaskState.RUNNING
        finished = store.run(lambda tx: tx.finish_computed(a.id, 1, "shown", 30))
        assert finished is not None and finished.job_id == job.id
        assert finished.parent is not None and finished.parent.id == root.id
        assert finished.parent.open_children == 3
        assert [t.id for t in finished.released] == [c.id]
        assert finished.released[0].publish_pending and finished.released[0].deps_open == 0
        facts = finished.facts
        assert facts.any_work_done and not facts.any_running and not facts.all_roots_complete
        task = store.run(lambda tx: tx.get_task(a.id))
        assert task.state is TaskState.COMPUTED and task.complete and task.display == "shown"
        assert task.lease_expires is None and task.stopped_at is not None
        assert task.error is None and task.open_children == 0
        assert store.run(lambda tx: tx.get_task(d.id)).deps_open == 1
        attempts = store.run(lambda tx: tx.task_attempts(a.id))
        assert [(x.attempt, x.outcome) for x in attempts] == [(1, "computed")]
        assert attempts[0].ended_at is not None
        # Done already: a second call is fenced off too.
        assert store.run(lambda tx: tx.finish_computed(a.id, 1, None, 30)) is None
        # Without a publish lease the released dependents are not publish-pending; a root task
        # has no parent to decrement; None keeps the display.
        claimed_b = store.run(lambda tx: tx.claim(b.id, "r1", 30))
        assert claimed_b is not None
        finished_b = store.run(lambda tx: tx.finish_computed(b.id, 1, None, None))
        assert finished_b is not None and [t.id for t in finished_b.released] == [d.id]
        assert not finished_b.released[0].publish_pending
        assert store.run(lambda tx: tx.get_task(b.id)).display == "Child"
        other = spec()
        other_job = new_job(store, other)
        store.run(lambda tx: tx.claim(other.id, "r1", 30))
        alone = store.run(lambda tx: tx.finish_computed(other.id, 1, None, 30))
        assert alone is not None and alone.parent is None and alone.job_id == other_job.id
        assert alone.facts.all_roots_complete and not alone.facts.any_running

    def test_claim_refuses_waiting_held_and_backed_off_tasks(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        parent = store.run(lambda tx: tx.get_task(root.id))
        waiting = child_record(parent, deps_open=1, depends_on=(root.id,))
        store.run(lambda tx: tx.insert_tasks([waiting]))
        assert store.run(lambda tx: tx.claim(waiting.id, "r", 30)) is None
        store.run(lambda tx: tx.set_job_state(job.id, JobState.CANCELED))
        assert store.run(lambda tx: tx.claim(root.id, "r", 30)) is None
        store.run(lambda tx: tx.set_job_state(job.id, JobState.FAILED))
        assert store.run(lambda tx: tx.claim(root.id, "r", 30)) is None
        store.run(lambda tx: tx.set_job_state(job.id, JobState.STARTED))
        task = store.run(lambda tx: tx.lock_task(root.id))
        task.not_before = store.run(lambda tx: tx.now()) + dt.timedelta(hours=1)
        store.run(lambda tx: tx.save_task(task))
        assert store.run(lambda tx: tx.claim(root.id, "r", 30)) is None
        assert store.run(lambda tx: tx.claim(TaskId(uuid7()), "r", 30)) is None

    def test_claim_next_matches_cluster_name_major_and_minor(self, store: Store) -> None:
        store.run(lambda tx: tx.insert_cluster(Cluster("gpu", "GPU")))
        other_cluster = spec(cluster="gpu")
        too_new = spec(TaskIdentifier("Leaf", "v1.3"))
        other_major = spec(TaskIdentifier("Leaf", "v2.0"))
        other_name = spec(TaskIdentifier("Leaf.x", "v1.0"))
        fits = spec(TaskIdentifier("Leaf", "v1.1"))
        new_job(store, other_cluster, too_new, other_major, other_name, fits)
        assert store.run(lambda tx: tx.has_dispatchable("default", REG))
        claimed = store.run(lambda tx: tx.claim_next("default", REG, "r", 30))
        assert claimed is not None and claimed.id == fits.id
        assert store.run(lambda tx: tx.claim_next("default", REG, "r", 30)) is None
        assert not store.run(lambda tx: tx.has_dispatchable("default", REG))
        assert store.run(lambda tx: tx.has_dispatchable("gpu", REG))

    def test_claim_next_takes_the_oldest_first(self, store: Store) -> None:
        first, second = spec(), spec()
        new_job(store, first, second)
        assert store.run(lambda tx: tx.claim_next("default", REG, "r", 30)).id == first.id
        assert store.run(lambda tx: tx.claim_next("default", REG, "r", 30)).id == second.id

    def test_concurrent_claims_of_one_task_have_one_winner(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        results: list[Any] = []
        barrier = threading.Barrier(8)

        def worker(n: int) -> None:
            barrier.wait()
            results.append(store.run(lambda tx: tx.claim(root.id, f"r{n}", 30)))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r is not None for r in results) == 1

    def test_concurrent_claim_next_never_hands_out_a_task_twice(self, store: Store) -> None:
        roots = [spec() for _ in range(40)]
        new_job(store, *roots)
        claimed: list[TaskId] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            while True:
                c = store.run(lambda tx: tx.claim_next("default", REG, f"r{n}", 30))
                if c is None:
                    return
                with lock:
                    claimed.append(c.id)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(claimed) == sorted(r.id for r in roots)

    def test_fenced_writes_need_the_current_attempt(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        store.run(lambda tx: tx.claim(root.id, "r", 30))
        assert store.run(lambda tx: tx.extend_lease(root.id, 1, 60)) is not None
        assert store.run(lambda tx: tx.extend_lease(root.id, 2, 60)) is None
        assert store.run(lambda tx: tx.set_display(root.id, 1, "half way")) is True
        assert store.run(lambda tx: tx.set_display(root.id, 0, "zombie")) is False
        assert store.run(lambda tx: tx.get_task(root.id)).display == "half way"
        assert store.run(lambda tx: tx.write_progress(root.id, 1, {"x": (4, 1)})) is True
        assert store.run(lambda tx: tx.write_progress(root.id, 7, {"x": (9, 9)})) is False

    def test_extend_lease_moves_the_expiry_forward(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        claimed = store.run(lambda tx: tx.claim(root.id, "r", 1))
        new_expiry = store.run(lambda tx: tx.extend_lease(root.id, 1, 120))
        assert new_expiry is not None and new_expiry > claimed.lease_expires
        assert store.run(lambda tx: tx.get_task(root.id)).lease_expires == new_expiry

    def test_expired_leases_lists_only_expired_running_tasks(self, store: Store) -> None:
        expired, alive, queued = spec(), spec(), spec()
        new_job(store, expired, alive, queued)
        store.run(lambda tx: tx.claim(expired.id, "r", 0))
        store.run(lambda tx: tx.claim(alive.id, "r", 300))
        found = store.run(lambda tx: tx.expired_leases(10))
        assert [t.id for t in found] == [expired.id]

    def test_expired_leases_can_ask_for_leases_overdue_by_some_seconds(self, store: Store) -> None:
        long_ago, just_now = spec(), spec()
        new_job(store, long_ago, just_now)
        store.run(lambda tx: tx.claim(long_ago.id, "r", -60))  # expired a minute ago
        store.run(lambda tx: tx.claim(just_now.id, "r", -1))
        overdue_30 = store.run(lambda tx: tx.expired_leases(10, 30.0))
        assert [t.id for t in overdue_30] == [long_ago.id]
        assert store.run(lambda tx: tx.expired_leases(10, 3600.0)) == []
        found = store.run(lambda tx: tx.expired_leases(10, 0.0))
        assert sorted(t.id for t in found) == sorted([long_ago.id, just_now.id])

    def test_counters_release_dependents_and_decrement_parents(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        parent = store.run(lambda tx: tx.lock_task(root.id))
        a = child_record(parent)
        b = child_record(parent)
        c = child_record(parent, depends_on=(a.id, b.id), deps_open=2)
        d = child_record(parent, depends_on=(a.id,), deps_open=1)
        store.run(lambda tx: tx.insert_tasks([a, b, c, d]))
        parent.open_children = 4
        store.run(lambda tx: tx.save_task(parent))
        released = store.run(lambda tx: tx.release_dependents(a.id, 30))
        assert [t.id for t in released] == [d.id]
        assert released[0].publish_pending
        assert store.run(lambda tx: tx.get_task(c.id)).deps_open == 1
        released = store.run(lambda tx: tx.release_dependents(b.id, None))
        assert [t.id for t in released] == [c.id] and not released[0].publish_pending
        updated = store.run(lambda tx: tx.decrement_open_children(root.id))
        assert updated.open_children == 3 and updated.id == root.id
        assert store.run(lambda tx: tx.mark_complete(a.id)) is True
        assert store.run(lambda tx: tx.mark_complete(a.id)) is False

    def test_queued_descendants_walks_the_whole_subtree(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        parent = store.run(lambda tx: tx.get_task(root.id))
        mid = child_record(parent, state=TaskState.COMPUTED)
        store.run(lambda tx: tx.insert_tasks([mid]))
        deep = child_record(mid)
        running = child_record(mid)
        store.run(lambda tx: tx.insert_tasks([deep, running]))
        store.run(lambda tx: tx.claim(running.id, "r", 30))
        assert store.run(lambda tx: tx.queued_descendants(root.id)) == [deep.id]
        assert store.run(lambda tx: tx.queued_descendants(deep.id)) == []

    def test_any_subtree_failed(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        assert store.run(lambda tx: tx.any_subtree_failed([root.id])) is False
        task = store.run(lambda tx: tx.lock_task(root.id))
        task.subtree_failed = True
        store.run(lambda tx: tx.save_task(task))
        assert store.run(lambda tx: tx.any_subtree_failed([TaskId(uuid7()), root.id])) is True
        assert store.run(lambda tx: tx.any_subtree_failed([])) is False

    def test_requeue_failed_tasks_resets_counters(self, store: Store) -> None:
        failed, done = spec(), spec()
        job = new_job(store, failed, done)
        task = store.run(lambda tx: tx.lock_task(failed.id))
        task.state, task.retry_count, task.crash_count = TaskState.FAILED, 3, 2
        task.error = TaskError("E", "m")
        store.run(lambda tx: tx.save_task(task))
        other = store.run(lambda tx: tx.lock_task(done.id))
        other.state = TaskState.FAILED_OPTIONAL
        store.run(lambda tx: tx.save_task(other))
        assert store.run(lambda tx: tx.requeue_failed_tasks(job.id)) == 1
        loaded = store.run(lambda tx: tx.get_task(failed.id))
        assert loaded.state is TaskState.QUEUED
        assert (loaded.retry_count, loaded.crash_count, loaded.error) == (0, 0, None)
        assert store.run(lambda tx: tx.get_task(done.id)).state is TaskState.FAILED_OPTIONAL

    # -- outbox --------------------------------------------------------------------------------
    def test_outbox_lease_keeps_sweeps_off_fresh_rows(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        assert store.run(lambda tx: tx.claim_unpublished(30, 100)) == []  # writer still owns it
        task = store.run(lambda tx: tx.lock_task(root.id))
        task.publish_after = store.run(lambda tx: tx.now()) - dt.timedelta(seconds=1)
        store.run(lambda tx: tx.save_task(task))
        messages = store.run(lambda tx: tx.claim_unpublished(30, 100))
        assert [m.task_id for m in messages] == [root.id]
        assert messages[0].identifier == LEAF and messages[0].cluster == "default"
        assert store.run(lambda tx: tx.claim_unpublished(30, 100)) == []  # leased by the sweep
        store.run(lambda tx: tx.mark_published([root.id]))
        loaded = store.run(lambda tx: tx.get_task(root.id))
        assert loaded.publish_pending is False and loaded.published_at is not None

    def test_republish_ready_marks_only_ready_queued_tasks(self, store: Store) -> None:
        ready, running = spec(), spec()
        job = new_job(store, ready, running)
        store.run(lambda tx: tx.mark_published([ready.id, running.id]))
        store.run(lambda tx: tx.claim(running.id, "r", 30))
        messages = store.run(lambda tx: tx.republish_ready(job.id, 30))
        assert [m.task_id for m in messages] == [ready.id]
        assert store.run(lambda tx: tx.get_task(ready.id)).publish_pending

    # -- attempts, progress, stats -------------------------------------------------------------
    def test_attempts_are_recorded_and_closed(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        store.run(lambda tx: tx.claim(root.id, "r1", 30))
        store.run(lambda tx: tx.end_attempt(root.id, 1, "failed", TaskError("E", "boom", "tb")))
        attempts = store.run(lambda tx: tx.task_attempts(root.id))
        assert attempts[0].outcome == "failed" and attempts[0].ended_at is not None
        assert attempts[0].error == TaskError("E", "boom", "tb")

    def test_job_progress_sums_only_each_tasks_latest_attempt(self, store: Store) -> None:
        a, b = spec(), spec()
        job = new_job(store, a, b)
        store.run(lambda tx: tx.claim(a.id, "r", 30))
        store.run(lambda tx: tx.write_progress(a.id, 1, {"rows": (10, 4), None: (1, 0)}))
        store.run(lambda tx: tx.claim(b.id, "r", 30))
        store.run(lambda tx: tx.write_progress(b.id, 1, {"rows": (5, 5)}))
        progress = store.run(lambda tx: tx.job_progress(job.id))
        assert [(p.label, p.total, p.done) for p in progress] == [(None, 1, 0), ("rows", 15, 9)]
        task = store.run(lambda tx: tx.lock_task(a.id))  # a retry: attempt 2 replaces attempt 1
        task.state = TaskState.QUEUED
        store.run(lambda tx: tx.save_task(task))
        store.run(lambda tx: tx.claim(a.id, "r", 30))
        store.run(lambda tx: tx.write_progress(a.id, 2, {"rows": (10, 1)}))
        progress = store.run(lambda tx: tx.job_progress(job.id))
        assert [(p.label, p.total, p.done) for p in progress] == [("rows", 15, 6)]

    def test_task_counts_and_stats(self, store: Store) -> None:
        a, b = spec(), spec()
        job = new_job(store, a, b)
        store.run(lambda tx: tx.claim(a.id, "r", 30))
        store.run(lambda tx: tx.end_attempt(a.id, 1, "computed", None))
        counts = store.run(lambda tx: tx.task_counts(job.id))
        assert counts == {TaskState.RUNNING: 1, TaskState.QUEUED: 1}
        stats = store.run(lambda tx: tx.job_stats(job.id))
        assert stats.total_tasks == 2 and stats.first_task_started_at is not None
        assert stats.tasks_by_state == counts
        assert stats.compute_time >= dt.timedelta(0)

    # -- runners -------------------------------------------------------------------------------
    def test_runner_registry_and_silence(self, store: Store) -> None:
        now = store.run(lambda tx: tx.now())
        info = RunnerInfo("r-1", "default", "host", 42, (LEAF,), now, now)
        store.run(lambda tx: tx.upsert_runner(info))
        store.run(lambda tx: tx.runner_heartbeat("r-1", None, 3, 1))
        (loaded,) = store.run(lambda tx: tx.list_runners())
        assert (loaded.id, loaded.identifiers, loaded.tasks_computed, loaded.tasks_failed) == (
            "r-1",
            (LEAF,),
            3,
            1,
        )
        assert store.run(lambda tx: tx.mark_silent_runners(3600)) == 0
        assert store.run(lambda tx: tx.mark_silent_runners(-1)) == 1
        assert store.run(lambda tx: tx.list_runners()) == []
        assert [r.state for r in store.run(lambda tx: tx.list_runners(include_gone=True))] == [
            "gone"
        ]
        store.run(lambda tx: tx.set_runner_state("r-1", "stopped"))
        assert store.run(lambda tx: tx.list_runners(include_gone=True))[0].state == "stopped"
