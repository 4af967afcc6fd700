"""The contract of ``tx.claims`` (:class:`conveyor.core.ports.Claims`): the claim rule and the
fused success, including under concurrency."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import Cluster, JobState, TaskState
from conveyor.core.ports import Store
from tests.contract.store_fixtures import REG, StoreFixture, child_record, new_job, spec


class ClaimsContract(StoreFixture):
    def test_claim_takes_a_dispatchable_task_once(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root, name="claims")
        claimed = store.run(lambda tx: tx.claims.claim(root.id, "runner-1", 30))
        assert claimed is not None
        assert (claimed.id, claimed.job_id, claimed.job_name) == (root.id, job.id, "claims")
        assert claimed.attempt == 1 and claimed.input == b'{"x":1}'
        assert claimed.lease_expires > store.run(lambda tx: tx.now())
        assert store.run(lambda tx: tx.claims.claim(root.id, "runner-2", 30)) is None
        task = store.run(lambda tx: tx.tasks.get_task(root.id))
        assert task.state is TaskState.RUNNING and task.runner_id == "runner-1"
        assert task.started_at is not None and task.publish_pending is False
        attempts = store.run(lambda tx: tx.attempts.task_attempts(root.id))
        assert [(a.attempt, a.runner_id, a.outcome) for a in attempts] == [
            (1, "runner-1", "running")
        ]

    def test_claim_task_sets_the_job_state_only_from_the_given_states(self, store: Store) -> None:
        first, second, third = spec(), spec(), spec()
        job = new_job(store, first, second, third)
        start = frozenset({JobState.SUBMITTED, JobState.STARTED})
        claimed = store.run(
            lambda tx: tx.claims.claim_task(first.id, "default", "r1", 30, JobState.RUNNING, start)
        )
        assert claimed is not None and claimed.attempt == 1 and claimed.job_name == "job"
        assert store.run(lambda tx: tx.jobs.get_job(job.id)).state is JobState.RUNNING
        attempts = store.run(lambda tx: tx.attempts.task_attempts(first.id))
        assert [(a.attempt, a.runner_id, a.outcome) for a in attempts] == [(1, "r1", "running")]
        # Not claimable again: None and nothing changes.
        store.run(lambda tx: tx.jobs.set_job_state(job.id, JobState.STARTED))
        again = store.run(
            lambda tx: tx.claims.claim_task(first.id, "default", "r2", 30, JobState.RUNNING, start)
        )
        assert again is None
        assert store.run(lambda tx: tx.jobs.get_job(job.id)).state is JobState.STARTED
        # A state outside job_states_from is left as it is.
        other = store.run(
            lambda tx: tx.claims.claim_task(
                second.id, "default", "r2", 30, JobState.RUNNING, frozenset()
            )
        )
        assert other is not None
        assert store.run(lambda tx: tx.jobs.get_job(job.id)).state is JobState.STARTED
        store.run(
            lambda tx: tx.claims.claim_task(third.id, "default", "r3", 30, JobState.RUNNING, start)
        )
        assert store.run(lambda tx: tx.jobs.get_job(job.id)).state is JobState.RUNNING
        assert store.run(lambda tx: tx.tasks.get_task(third.id)).runner_id == "r3"

    def test_claim_task_claims_only_a_task_of_the_runners_cluster(self, store: Store) -> None:
        store.run(lambda tx: tx.clusters.insert_cluster(Cluster("other", "Other")))
        foreign = spec(cluster="other")
        job = new_job(store, foreign)
        start = frozenset({JobState.SUBMITTED, JobState.STARTED})
        refused = store.run(
            lambda tx: tx.claims.claim_task(
                foreign.id, "default", "r1", 30, JobState.RUNNING, start
            )
        )
        assert refused is None
        task = store.run(lambda tx: tx.tasks.get_task(foreign.id))
        assert task.state is TaskState.QUEUED and task.attempt == 0 and task.runner_id is None
        assert store.run(lambda tx: tx.attempts.task_attempts(foreign.id)) == []
        assert store.run(lambda tx: tx.jobs.get_job(job.id)).state is JobState.SUBMITTED
        claimed = store.run(
            lambda tx: tx.claims.claim_task(foreign.id, "other", "r2", 30, JobState.RUNNING, start)
        )
        assert claimed is not None and claimed.cluster == "other" and claimed.attempt == 1

    def test_finish_computed_records_an_attempt_and_its_effects(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        parent = store.run(lambda tx: tx.tasks.lock_task(root.id))
        a = child_record(parent)
        b = child_record(parent)
        c = child_record(parent, depends_on=(a.id, a.id), deps_open=2)
        d = child_record(parent, depends_on=(a.id, b.id), deps_open=2)
        store.run(lambda tx: tx.tasks.insert_tasks([a, b, c, d]))
        parent.open_children = 4
        store.run(lambda tx: tx.tasks.save_task(parent))
        claimed = store.run(lambda tx: tx.claims.claim(a.id, "r1", 30))
        assert claimed is not None
        # Fenced: another attempt changes nothing.
        assert store.run(lambda tx: tx.claims.finish_computed(a.id, 2, None, 30)) is None
        assert store.run(lambda tx: tx.tasks.get_task(a.id)).state is TaskState.RUNNING
        finished = store.run(lambda tx: tx.claims.finish_computed(a.id, 1, "shown", 30))
        assert finished is not None and finished.job_id == job.id
        assert finished.parent is not None and finished.parent.id == root.id
        assert finished.parent.open_children == 3
        assert [t.id for t in finished.released] == [c.id]
        assert finished.released[0].publish_pending and finished.released[0].deps_open == 0
        facts = finished.facts
        assert facts.any_work_done and not facts.any_running and not facts.all_roots_complete
        task = store.run(lambda tx: tx.tasks.get_task(a.id))
        assert task.state is TaskState.COMPUTED and task.complete and task.display == "shown"
        assert task.lease_expires is None and task.stopped_at is not None
        assert task.error is None and task.open_children == 0
        assert store.run(lambda tx: tx.tasks.get_task(d.id)).deps_open == 1
        attempts = store.run(lambda tx: tx.attempts.task_attempts(a.id))
        assert [(x.attempt, x.outcome) for x in attempts] == [(1, "computed")]
        assert attempts[0].ended_at is not None
        # Done already: a second call is fenced off too.
        assert store.run(lambda tx: tx.claims.finish_computed(a.id, 1, None, 30)) is None
        # Without a publish lease the released dependents are not publish-pending; a root task
        # has no parent to decrement; None keeps the display.
        claimed_b = store.run(lambda tx: tx.claims.claim(b.id, "r1", 30))
        assert claimed_b is not None
        finished_b = store.run(lambda tx: tx.claims.finish_computed(b.id, 1, None, None))
        assert finished_b is not None and [t.id for t in finished_b.released] == [d.id]
        assert not finished_b.released[0].publish_pending
        assert store.run(lambda tx: tx.tasks.get_task(b.id)).display == "Child"
        other = spec()
        other_job = new_job(store, other)
        store.run(lambda tx: tx.claims.claim(other.id, "r1", 30))
        alone = store.run(lambda tx: tx.claims.finish_computed(other.id, 1, None, 30))
        assert alone is not None and alone.parent is None and alone.job_id == other_job.id
        assert alone.facts.all_roots_complete and not alone.facts.any_running

    def test_claim_refuses_waiting_held_and_backed_off_tasks(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        parent = store.run(lambda tx: tx.tasks.get_task(root.id))
        waiting = child_record(parent, deps_open=1, depends_on=(root.id,))
        store.run(lambda tx: tx.tasks.insert_tasks([waiting]))
        assert store.run(lambda tx: tx.claims.claim(waiting.id, "r", 30)) is None
        store.run(lambda tx: tx.jobs.set_job_state(job.id, JobState.CANCELED))
        assert store.run(lambda tx: tx.claims.claim(root.id, "r", 30)) is None
        store.run(lambda tx: tx.jobs.set_job_state(job.id, JobState.FAILED))
        assert store.run(lambda tx: tx.claims.claim(root.id, "r", 30)) is None
        store.run(lambda tx: tx.jobs.set_job_state(job.id, JobState.STARTED))
        task = store.run(lambda tx: tx.tasks.lock_task(root.id))
        task.not_before = store.run(lambda tx: tx.now()) + dt.timedelta(hours=1)
        store.run(lambda tx: tx.tasks.save_task(task))
        assert store.run(lambda tx: tx.claims.claim(root.id, "r", 30)) is None
        assert store.run(lambda tx: tx.claims.claim(TaskId(uuid7()), "r", 30)) is None

    def test_claim_next_matches_cluster_name_major_and_minor(self, store: Store) -> None:
        store.run(lambda tx: tx.clusters.insert_cluster(Cluster("gpu", "GPU")))
        other_cluster = spec(cluster="gpu")
        too_new = spec(TaskIdentifier("Leaf", "v1.3"))
        other_major = spec(TaskIdentifier("Leaf", "v2.0"))
        other_name = spec(TaskIdentifier("Leaf.x", "v1.0"))
        fits = spec(TaskIdentifier("Leaf", "v1.1"))
        new_job(store, other_cluster, too_new, other_major, other_name, fits)
        assert store.run(lambda tx: tx.claims.has_dispatchable("default", REG))
        claimed = store.run(lambda tx: tx.claims.claim_next("default", REG, "r", 30))
        assert claimed is not None and claimed.id == fits.id
        assert store.run(lambda tx: tx.claims.claim_next("default", REG, "r", 30)) is None
        assert not store.run(lambda tx: tx.claims.has_dispatchable("default", REG))
        assert store.run(lambda tx: tx.claims.has_dispatchable("gpu", REG))

    def test_claim_next_takes_the_oldest_first(self, store: Store) -> None:
        first, second = spec(), spec()
        new_job(store, first, second)
        assert store.run(lambda tx: tx.claims.claim_next("default", REG, "r", 30)).id == first.id
        assert store.run(lambda tx: tx.claims.claim_next("default", REG, "r", 30)).id == second.id

    def test_concurrent_claims_of_one_task_have_one_winner(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        results: list[Any] = []
        barrier = threading.Barrier(8)

        def worker(n: int) -> None:
            barrier.wait()
            results.append(store.run(lambda tx: tx.claims.claim(root.id, f"r{n}", 30)))

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
                c = store.run(lambda tx: tx.claims.claim_next("default", REG, f"r{n}", 30))
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
