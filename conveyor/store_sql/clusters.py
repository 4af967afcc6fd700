"""Clusters in SQL (``ClusterRows``): the isolation boundary of runners."""

from __future__ import annotations

from sqlalchemy import delete, select, true

from conveyor.core.errors import AlreadyExistsError
from conveyor.core.model import Cluster
from conveyor.store_sql.executor import Executor
from conveyor.store_sql.rows import cluster_from, cluster_row
from conveyor.store_sql.schema import clusters


class SqlClusters:
    """The ``ClusterRows`` part of one transaction."""

    def __init__(self, ex: Executor) -> None:
        self._ex = ex

    def get_cluster(self, slug: str) -> Cluster | None:
        """Prebuilt; on PostgreSQL it also reads the transaction's ``now()`` (every submission
        checks its clusters first, then needs the time)."""
        rows = self._ex.hot_rows(self._ex.sql.get_cluster, {"p_slug": slug})[0]
        if not rows:
            return None
        row = rows[0]
        self._ex.prime_now(row.get("tx_now"))
        return cluster_from(row)

    def list_clusters(self) -> list[Cluster]:
        rows = self._ex.execute(select(clusters).order_by(clusters.c.slug))
        return [cluster_from(r._mapping) for r in rows]

    def insert_cluster(self, cluster: Cluster) -> None:
        stmt = (
            self._ex.insert(clusters)
            .values(**cluster_row(cluster))
            .on_conflict_do_nothing()
            .returning(clusters.c.slug)
        )
        if self._ex.execute(stmt).first() is None:
            raise AlreadyExistsError(f"A cluster with slug {cluster.slug!r} already exists")

    def delete_cluster(self, slug: str) -> bool:
        result = self._ex.execute(
            delete(clusters).where(clusters.c.slug == slug, clusters.c.deletable == true())
        )
        return bool(result.rowcount)
