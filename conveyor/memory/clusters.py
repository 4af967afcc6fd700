"""Clusters in memory (:class:`conveyor.core.ports.ClusterRows`)."""

from __future__ import annotations

from conveyor.core.errors import AlreadyExistsError
from conveyor.core.model import Cluster
from conveyor.memory.journal import Journal


class MemoryClusters:
    def __init__(self, journal: Journal) -> None:
        self._j = journal
        self._t = journal.t

    def get_cluster(self, slug: str) -> Cluster | None:
        return self._t.clusters.get(slug)

    def list_clusters(self) -> list[Cluster]:
        return [self._t.clusters[k] for k in sorted(self._t.clusters)]

    def insert_cluster(self, cluster: Cluster) -> None:
        if cluster.slug in self._t.clusters:
            raise AlreadyExistsError(f"A cluster with slug {cluster.slug!r} already exists")
        self._j.set(self._t.clusters, cluster.slug, cluster)

    def delete_cluster(self, slug: str) -> bool:
        cluster = self._t.clusters.get(slug)
        if cluster is None or not cluster.deletable:
            return False
        self._j.delete(self._t.clusters, slug)
        return True
