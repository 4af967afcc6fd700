"""The contract of ``tx.tasks`` (:class:`conveyor.core.ports.TaskRows`)."""

from __future__ import annotations

import datetime as dt

from conveyor.core.identifiers import TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import TaskError, TaskState
from conveyor.core.ports import Store
from tests.contract.store_fixtures import StoreFixture, child_record, new_job, spec


class TaskRowsContract(StoreFixture):
    def test_insert_tasks_stores_dependencies_and_paths(self, store: Store) -> None:
        root = spec()
        job = new_job(store, root)
        parent = store.run(lambda tx: tx.tasks.get_task(root.id))
        a = child_record(parent, optional=True, optional_path=(TaskId(uuid7()),))
        b = child_record(parent, depends_on=(a.id,), deps_open=1)
        store.run(lambda tx: tx.tasks.insert_tasks([a, b]))
        loaded_b = store.run(lambda tx: tx.tasks.get_task(b.id))
        assert loaded_b.depends_on == (a.id,) and loaded_b.deps_open == 1
        assert store.run(lambda tx: tx.tasks.get_task(a.id)).optional_path == a.optional_path
        tasks = store.run(lambda tx: tx.tasks.job_tasks(job.id))
        assert [t.id for t in tasks] == [root.id, a.id, b.id]
        assert [
            t.id for t in store.run(lambda tx: tx.tasks.job_tasks(job.id, after=root.id, limit=1))
        ] == [a.id]

    def test_save_task_writes_every_mutable_field(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        task = store.run(lambda tx: tx.tasks.lock_task(root.id))
        now = store.run(lambda tx: tx.now())
        task.state = TaskState.FAILED
        task.display = "Leaf\nboom"
        task.retry_count, task.crash_count, task.system_requeues = 2, 3, 4
        task.open_children, task.subtree_failed = 5, True
        task.error = TaskError("ValueError", "boom", "Traceback ...")
        task.not_before = now + dt.timedelta(seconds=5)
        task.stopped_at = now
        task.publish_pending = False
        store.run(lambda tx: tx.tasks.save_task(task))
        loaded = store.run(lambda tx: tx.tasks.get_task(root.id))
        assert loaded.state is TaskState.FAILED and loaded.display == "Leaf\nboom"
        assert (loaded.retry_count, loaded.crash_count, loaded.system_requeues) == (2, 3, 4)
        assert loaded.open_children == 5 and loaded.subtree_failed
        assert loaded.error == TaskError("ValueError", "boom", "Traceback ...")
        assert loaded.not_before == task.not_before and loaded.stopped_at == now
        assert loaded.publish_pending is False

    def test_fenced_writes_need_the_current_attempt(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        store.run(lambda tx: tx.claims.claim(root.id, "r", 30))
        assert store.run(lambda tx: tx.tasks.extend_lease(root.id, 1, 60)) is not None
        assert store.run(lambda tx: tx.tasks.extend_lease(root.id, 2, 60)) is None
        assert store.run(lambda tx: tx.tasks.set_display(root.id, 1, "half way")) is True
        assert store.run(lambda tx: tx.tasks.set_display(root.id, 0, "zombie")) is False
        assert store.run(lambda tx: tx.tasks.get_task(root.id)).display == "half way"
        assert store.run(lambda tx: tx.attempts.write_progress(root.id, 1, {"x": (4, 1)})) is True
        assert store.run(lambda tx: tx.attempts.write_progress(root.id, 7, {"x": (9, 9)})) is False

    def test_extend_lease_moves_the_expiry_forward(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        claimed = store.run(lambda tx: tx.claims.claim(root.id, "r", 1))
        new_expiry = store.run(lambda tx: tx.tasks.extend_lease(root.id, 1, 120))
        assert new_expiry is not None and new_expiry > claimed.lease_expires
        assert store.run(lambda tx: tx.tasks.get_task(root.id)).lease_expires == new_expiry

    def test_expired_leases_lists_only_expired_running_tasks(self, store: Store) -> None:
        expired, alive, queued = spec(), spec(), spec()
        new_job(store, expired, alive, queued)
        store.run(lambda tx: tx.claims.claim(expired.id, "r", 0))
        store.run(lambda tx: tx.claims.claim(alive.id, "r", 300))
        found = store.run(lambda tx: tx.tasks.expired_leases(10))
        assert [t.id for t in found] == [expired.id]

    def test_expired_leases_can_ask_for_leases_overdue_by_some_seconds(self, store: Store) -> None:
        long_ago, just_now = spec(), spec()
        new_job(store, long_ago, just_now)
        store.run(lambda tx: tx.claims.claim(long_ago.id, "r", -60))  # expired a minute ago
        store.run(lambda tx: tx.claims.claim(just_now.id, "r", -1))
        overdue_30 = store.run(lambda tx: tx.tasks.expired_leases(10, 30.0))
        assert [t.id for t in overdue_30] == [long_ago.id]
        assert store.run(lambda tx: tx.tasks.expired_leases(10, 3600.0)) == []
        found = store.run(lambda tx: tx.tasks.expired_leases(10, 0.0))
        assert sorted(t.id for t in found) == sorted([long_ago.id, just_now.id])

    def test_counters_release_dependents_and_decrement_parents(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        parent = store.run(lambda tx: tx.tasks.lock_task(root.id))
        a = child_record(parent)
        b = child_record(parent)
        c = child_record(parent, depends_on=(a.id, b.id), deps_open=2)
        d = child_record(parent, depends_on=(a.id,), deps_open=1)
        store.run(lambda tx: tx.tasks.insert_tasks([a, b, c, d]))
        parent.open_children = 4
        store.run(lambda tx: tx.tasks.save_task(parent))
        released = store.run(lambda tx: tx.tasks.release_dependents(a.id, 30))
        assert [t.id for t in released] == [d.id]
        assert released[0].publish_pending
        assert store.run(lambda tx: tx.tasks.get_task(c.id)).deps_open == 1
        released = store.run(lambda tx: tx.tasks.release_dependents(b.id, None))
        assert [t.id for t in released] == [c.id] and not released[0].publish_pending
        updated = store.run(lambda tx: tx.tasks.decrement_open_children(root.id))
        assert updated.open_children == 3 and updated.id == root.id
        assert store.run(lambda tx: tx.tasks.mark_complete(a.id)) is True
        assert store.run(lambda tx: tx.tasks.mark_complete(a.id)) is False

    def test_queued_descendants_walks_the_whole_subtree(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        parent = store.run(lambda tx: tx.tasks.get_task(root.id))
        mid = child_record(parent, state=TaskState.COMPUTED)
        store.run(lambda tx: tx.tasks.insert_tasks([mid]))
        deep = child_record(mid)
        running = child_record(mid)
        store.run(lambda tx: tx.tasks.insert_tasks([deep, running]))
        store.run(lambda tx: tx.claims.claim(running.id, "r", 30))
        assert store.run(lambda tx: tx.tasks.queued_descendants(root.id)) == [deep.id]
        assert store.run(lambda tx: tx.tasks.queued_descendants(deep.id)) == []

    def test_any_subtree_failed(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        assert store.run(lambda tx: tx.tasks.any_subtree_failed([root.id])) is False
        task = store.run(lambda tx: tx.tasks.lock_task(root.id))
        task.subtree_failed = True
        store.run(lambda tx: tx.tasks.save_task(task))
        assert store.run(lambda tx: tx.tasks.any_subtree_failed([TaskId(uuid7()), root.id])) is True
        assert store.run(lambda tx: tx.tasks.any_subtree_failed([])) is False

    def test_requeue_failed_tasks_resets_counters(self, store: Store) -> None:
        failed, done = spec(), spec()
        job = new_job(store, failed, done)
        task = store.run(lambda tx: tx.tasks.lock_task(failed.id))
        task.state, task.retry_count, task.crash_count = TaskState.FAILED, 3, 2
        task.error = TaskError("E", "m")
        store.run(lambda tx: tx.tasks.save_task(task))
        other = store.run(lambda tx: tx.tasks.lock_task(done.id))
        other.state = TaskState.FAILED_OPTIONAL
        store.run(lambda tx: tx.tasks.save_task(other))
        assert store.run(lambda tx: tx.tasks.requeue_failed_tasks(job.id)) == 1
        loaded = store.run(lambda tx: tx.tasks.get_task(failed.id))
        assert loaded.state is TaskState.QUEUED
        assert (loaded.retry_count, loaded.crash_count, loaded.error) == (0, 0, None)
        assert store.run(lambda tx: tx.tasks.get_task(done.id)).state is TaskState.FAILED_OPTIONAL
