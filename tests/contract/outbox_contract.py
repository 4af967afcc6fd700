"""The contract of ``tx.outbox`` (:class:`conveyor.core.ports.Outbox`)."""

from __future__ import annotations

import datetime as dt

from conveyor.core.ports import Store
from tests.contract.store_fixtures import LEAF, StoreFixture, new_job, spec


class OutboxContract(StoreFixture):
    def test_outbox_lease_keeps_sweeps_off_fresh_rows(self, store: Store) -> None:
        root = spec()
        new_job(store, root)
        assert (
            store.run(lambda tx: tx.outbox.claim_unpublished(30, 100)) == []
        )  # writer still owns it
        task = store.run(lambda tx: tx.tasks.lock_task(root.id))
        task.publish_after = store.run(lambda tx: tx.now()) - dt.timedelta(seconds=1)
        store.run(lambda tx: tx.tasks.save_task(task))
        messages = store.run(lambda tx: tx.outbox.claim_unpublished(30, 100))
        assert [m.task_id for m in messages] == [root.id]
        assert messages[0].identifier == LEAF and messages[0].cluster == "default"
        assert (
            store.run(lambda tx: tx.outbox.claim_unpublished(30, 100)) == []
        )  # leased by the sweep
        store.run(lambda tx: tx.outbox.mark_published([root.id]))
        loaded = store.run(lambda tx: tx.tasks.get_task(root.id))
        assert loaded.publish_pending is False and loaded.published_at is not None

    def test_republish_ready_marks_only_ready_queued_tasks(self, store: Store) -> None:
        ready, running = spec(), spec()
        job = new_job(store, ready, running)
        store.run(lambda tx: tx.outbox.mark_published([ready.id, running.id]))
        store.run(lambda tx: tx.claims.claim(running.id, "r", 30))
        messages = store.run(lambda tx: tx.outbox.republish_ready(job.id, 30))
        assert [m.task_id for m in messages] == [ready.id]
        assert store.run(lambda tx: tx.tasks.get_task(ready.id)).publish_pending
