"""The contract of a store transaction itself (``Store.run`` and ``StoreTx.now``): all or
nothing, on the store's clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from conveyor.core.model import Cluster, JobState
from conveyor.core.ports import Store
from tests.contract.store_fixtures import StoreFixture, child_record, new_job, spec


class TransactionContract(StoreFixture):
    def test_a_transaction_that_raises_changes_nothing(self, store: Store) -> None:
        job = new_job(store)

        def boom(tx: Any) -> None:
            tx.clusters.insert_cluster(Cluster("gpu", "GPU"))
            tx.jobs.set_job_state(job.id, JobState.CANCELED)
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.run(boom)
        assert store.run(lambda tx: tx.clusters.get_cluster("gpu")) is None
        assert store.run(lambda tx: tx.jobs.get_job(job.id)).state is JobState.SUBMITTED

    def test_a_transaction_that_raises_leaves_no_task_edge_or_attempt(self, store: Store) -> None:
        """Rows appended to a job's task list, a parent's children, a task's dependents and
        attempts are rolled back too, and the job's facts with them."""
        root = spec()
        job = new_job(store, root)
        parent = store.run(lambda tx: tx.tasks.get_task(root.id))
        assert parent is not None
        first = child_record(parent)
        store.run(lambda tx: tx.tasks.insert_tasks([first]))
        a = child_record(parent, depends_on=(first.id,), deps_open=1)
        b = child_record(parent, depends_on=(first.id,), deps_open=1)

        def boom(tx: Any) -> None:
            tx.tasks.insert_tasks([a, b])
            assert tx.claims.claim(root.id, "r1", 30) is not None
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            store.run(boom)
        ids = [t.id for t in store.run(lambda tx: tx.tasks.job_tasks(job.id))]
        assert ids == [root.id, first.id]
        assert store.run(lambda tx: tx.tasks.get_task(a.id)) is None
        assert store.run(lambda tx: tx.attempts.task_attempts(root.id)) == []
        assert store.run(lambda tx: tx.reads.child_counts([root.id])) == {root.id: 1}
        facts = store.run(lambda tx: tx.jobs.job_facts(job.id))
        assert not (facts.any_running or facts.any_work_done)
        later = child_record(parent, depends_on=(first.id,), deps_open=1)
        store.run(lambda tx: tx.tasks.insert_tasks([later]))
        ids = [t.id for t in store.run(lambda tx: tx.tasks.job_tasks(job.id))]
        assert ids == [root.id, first.id, later.id]
        assert store.run(lambda tx: tx.reads.child_counts([root.id])) == {root.id: 2}
        released = store.run(lambda tx: tx.tasks.release_dependents(first.id, None))
        assert [t.id for t in released] == [later.id]

    def test_now_is_timezone_aware_utc(self, store: Store) -> None:
        now = store.run(lambda tx: tx.now())
        assert now.tzinfo is not None and now.utcoffset() == dt.timedelta(0)
