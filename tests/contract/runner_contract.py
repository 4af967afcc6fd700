"""The contract of ``tx.runners`` (:class:`conveyor.core.ports.RunnerRows`)."""

from __future__ import annotations

from conveyor.core.model import RunnerInfo
from conveyor.core.ports import Store
from tests.contract.store_fixtures import LEAF, StoreFixture


class RunnerRowsContract(StoreFixture):
    def test_runner_registry_and_silence(self, store: Store) -> None:
        now = store.run(lambda tx: tx.now())
        info = RunnerInfo("r-1", "default", "host", 42, (LEAF,), now, now)
        store.run(lambda tx: tx.runners.upsert_runner(info))
        store.run(lambda tx: tx.runners.runner_heartbeat("r-1", None, 3, 1))
        (loaded,) = store.run(lambda tx: tx.runners.list_runners())
        assert (loaded.id, loaded.identifiers, loaded.tasks_computed, loaded.tasks_failed) == (
            "r-1",
            (LEAF,),
            3,
            1,
        )
        assert store.run(lambda tx: tx.runners.mark_silent_runners(3600)) == 0
        assert store.run(lambda tx: tx.runners.mark_silent_runners(-1)) == 1
        assert store.run(lambda tx: tx.runners.list_runners()) == []
        assert [
            r.state for r in store.run(lambda tx: tx.runners.list_runners(include_gone=True))
        ] == ["gone"]
        store.run(lambda tx: tx.runners.set_runner_state("r-1", "stopped"))
        assert (
            store.run(lambda tx: tx.runners.list_runners(include_gone=True))[0].state == "stopped"
        )
