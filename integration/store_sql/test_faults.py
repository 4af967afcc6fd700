"""Faults at the database edge: unreachable server, connections killed mid-transaction,
values the database cannot store."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from conveyor.core.errors import AlreadyExistsError, StoreUnavailableError
from conveyor.core.model import Cluster, JobQuery
from conveyor.core.usecases import Policy, submit_job
from conveyor.store_sql import SqlStore
from conveyor.store_sql.engine import normalize_url
from tests.contract.store_contract import spec


def terminate_backends(url: str, only_pid: int | None = None) -> int:
    """``pg_terminate_backend`` on the conveyor sessions of the database (or on one pid)."""
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            condition = "pid = :pid" if only_pid is not None else "application_name = 'conveyor'"
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        f"WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        f"AND {condition}"
                    ),
                    {"pid": only_pid},
                ).all()
            )
    finally:
        engine.dispose()


def test_an_unreachable_database_fails_fast_with_the_password_masked() -> None:
    url = "postgresql://conveyor:s3cret-pw@127.0.0.1:1/conveyor"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        SqlStore(url, retry_timeout=1.0, connect_timeout=1.0)
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "conveyor:***@127.0.0.1:1/conveyor" in message


def test_pooled_connections_killed_between_transactions_are_replaced(pg_store: SqlStore) -> None:
    for _ in range(3):  # fill the pool
        pg_store.run(lambda tx: tx.clusters.list_clusters())
    assert terminate_backends(pg_store.url) >= 1
    job, _ = pg_store.run(lambda tx: submit_job(tx, "after-kill", [spec()], Policy()))
    assert pg_store.run(lambda tx: tx.jobs.get_job(job.id)) is not None


def test_a_connection_killed_mid_transaction_is_retried_and_nothing_is_half_applied(
    pg_store: SqlStore,
) -> None:
    calls: list[int] = []

    def work(tx: Any) -> str:
        calls.append(1)
        tx.clusters.insert_cluster(Cluster("half", "Half applied?"))
        if len(calls) == 1:
            pid = tx.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            terminate_backends(pg_store.url, only_pid=pid)
        job, _ = submit_job(tx, "whole", [spec(cluster="half")], Policy())
        return str(job.id)

    job_id = pg_store.run(work)
    assert len(calls) == 2
    clusters = [c.slug for c in pg_store.run(lambda tx: tx.clusters.list_clusters())]
    assert clusters == ["default", "half"]
    jobs = pg_store.run(lambda tx: tx.jobs.query_jobs(JobQuery()))
    assert [str(j.id) for j in jobs] == [job_id]


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest) -> SqlStore:
    return request.getfixturevalue("pg_store" if request.param == "postgresql" else "sqlite_store")


@pytest.mark.parametrize(
    ("display_name", "error"),
    [
        ("bad \udc80 surrogate", "not valid UTF-8"),
        ("nul \x00 inside", "NUL"),
        ("x" * 5000, "too long"),
    ],
)
def test_values_the_database_cannot_store_are_refused_and_nothing_is_written(
    store: SqlStore, display_name: str, error: str
) -> None:
    def work(tx: Any) -> None:
        tx.clusters.insert_cluster(Cluster("first", "fine"))
        tx.clusters.insert_cluster(Cluster("second", display_name))

    with pytest.raises(ValueError, match=error):
        store.run(work)
    assert [c.slug for c in store.run(lambda tx: tx.clusters.list_clusters())] == ["default"]


def test_an_oversized_task_name_is_refused(store: SqlStore) -> None:
    from conveyor.core.identifiers import TaskIdentifier

    with pytest.raises(ValueError):
        store.run(
            lambda tx: submit_job(tx, "j", [spec(TaskIdentifier("n" * 300, "v1.0"))], Policy())
        )


def test_sqlite_writers_in_separate_stores_queue_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = SqlStore(url), SqlStore(url)
    try:

        def slow_writer(tx: Any) -> None:
            tx.clusters.insert_cluster(Cluster("slow", "slow"))
            time.sleep(0.5)

        writer = threading.Thread(target=lambda: first.run(slow_writer))
        writer.start()
        time.sleep(0.1)
        second.run(lambda tx: tx.clusters.insert_cluster(Cluster("fast", "fast")))
        writer.join()
        slugs = [c.slug for c in second.run(lambda tx: tx.clusters.list_clusters())]
        assert slugs == ["default", "fast", "slow"]
    finally:
        first.close()
        second.close()


def test_a_bulk_insert_of_taken_task_ids_is_refused_whole(store: SqlStore) -> None:
    roots = [spec() for _ in range(300)]  # above the COPY threshold on PostgreSQL
    job, _ = store.run(lambda tx: submit_job(tx, "bulk", roots, Policy()))
    again = store.run(lambda tx: tx.tasks.job_tasks(job.id, limit=1000))
    with pytest.raises(AlreadyExistsError):
        store.run(lambda tx: tx.tasks.insert_tasks(again))
    assert len(store.run(lambda tx: tx.tasks.job_tasks(job.id, limit=1000))) == 300


def test_an_in_memory_sqlite_store_works_across_threads() -> None:
    store = SqlStore("sqlite://")
    try:
        errors: list[BaseException] = []

        def create(n: int) -> None:
            try:
                store.run(lambda tx: tx.clusters.insert_cluster(Cluster(f"c{n}", f"C{n}")))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(store.run(lambda tx: tx.clusters.list_clusters())) == 9
    finally:
        store.close()
