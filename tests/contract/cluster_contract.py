"""The contract of ``tx.clusters`` (:class:`conveyor.core.ports.ClusterRows`)."""

from __future__ import annotations

import pytest

from conveyor.core.errors import AlreadyExistsError
from conveyor.core.model import Cluster
from conveyor.core.ports import Store
from tests.contract.store_fixtures import StoreFixture


class ClusterRowsContract(StoreFixture):
    def test_default_cluster_exists_and_cannot_be_deleted(self, store: Store) -> None:
        default = store.run(lambda tx: tx.clusters.get_cluster("default"))
        assert default is not None and not default.deletable
        assert store.run(lambda tx: tx.clusters.delete_cluster("default")) is False
        assert store.run(lambda tx: tx.clusters.get_cluster("default")) is not None

    def test_clusters_are_created_listed_and_deleted(self, store: Store) -> None:
        store.run(lambda tx: tx.clusters.insert_cluster(Cluster("gpu", "GPU machines")))
        assert [c.slug for c in store.run(lambda tx: tx.clusters.list_clusters())] == [
            "default",
            "gpu",
        ]
        assert store.run(lambda tx: tx.clusters.get_cluster("gpu")) == Cluster(
            "gpu", "GPU machines"
        )
        assert store.run(lambda tx: tx.clusters.delete_cluster("gpu")) is True
        assert store.run(lambda tx: tx.clusters.delete_cluster("gpu")) is False

    def test_a_duplicate_cluster_slug_is_rejected(self, store: Store) -> None:
        store.run(lambda tx: tx.clusters.insert_cluster(Cluster("gpu", "GPU")))
        with pytest.raises(AlreadyExistsError):
            store.run(lambda tx: tx.clusters.insert_cluster(Cluster("gpu", "again")))
