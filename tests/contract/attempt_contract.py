"""The contract of ``tx.attempts`` (:class:`conveyor.core.ports.Attempts`)."""

from __future__ import annotations

import datetime as dt

from conveyor.core.model import TaskError, TaskState
from conveyor.core.ports import Store
from tests.contract.store_fixtures import StoreFixture, new_job, spec


class AttemptsContract(StoreFixture):
    def test_attempts_are_recorded_and_closed(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        store.run(lambda tx: tx.claims.claim(root.id, "r1", 30))
        store.run(
            lambda tx: tx.attempts.end_attempt(root.id, 1, "failed", TaskError("E", "boom", "tb"))
        )
        attempts = store.run(lambda tx: tx.attempts.task_attempts(root.id))
        assert attempts[0].outcome == "failed" and attempts[0].ended_at is not None
        assert attempts[0].error == TaskError("E", "boom", "tb")

    def test_job_progress_sums_only_each_tasks_latest_attempt(self, store: Store) -> None:
        a, b = spec(), spec()
        job = new_job(store, a, b)
        store.run(lambda tx: tx.claims.claim(a.id, "r", 30))
        store.run(lambda tx: tx.attempts.write_progress(a.id, 1, {"rows": (10, 4), None: (1, 0)}))
        store.run(lambda tx: tx.claims.claim(b.id, "r", 30))
        store.run(lambda tx: tx.attempts.write_progress(b.id, 1, {"rows": (5, 5)}))
        progress = store.run(lambda tx: tx.attempts.job_progress(job.id))
        assert [(p.label, p.total, p.done) for p in progress] == [(None, 1, 0), ("rows", 15, 9)]
        task = store.run(
            lambda tx: tx.tasks.lock_task(a.id)
        )  # a retry: attempt 2 replaces attempt 1
        task.state = TaskState.QUEUED
        store.run(lambda tx: tx.tasks.save_task(task))
        store.run(lambda tx: tx.claims.claim(a.id, "r", 30))
        store.run(lambda tx: tx.attempts.write_progress(a.id, 2, {"rows": (10, 1)}))
        progress = store.run(lambda tx: tx.attempts.job_progress(job.id))
        assert [(p.label, p.total, p.done) for p in progress] == [("rows", 15, 6)]

    def test_task_counts_and_stats(self, store: Store) -> None:
        a, b = spec(), spec()
        job = new_job(store, a, b)
        store.run(lambda tx: tx.claims.claim(a.id, "r", 30))
        store.run(lambda tx: tx.attempts.end_attempt(a.id, 1, "computed", None))
        counts = store.run(lambda tx: tx.tasks.task_counts(job.id))
        assert counts == {TaskState.RUNNING: 1, TaskState.QUEUED: 1}
        stats = store.run(lambda tx: tx.attempts.job_stats(job.id))
        assert stats.total_tasks == 2 and stats.first_task_started_at is not None
        assert stats.tasks_by_state == counts
        assert stats.compute_time >= dt.timedelta(0)
