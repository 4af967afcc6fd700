"""Alembic migrations shipped in the package: up, down, up again; outdated databases refused."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from conveyor.core.errors import SchemaOutdatedError
from conveyor.store_sql import SqlStore, current_revision, downgrade, head_revision, upgrade
from conveyor.store_sql.engine import create_store_engine
from conveyor.store_sql.schema import metadata

TABLES = {"clusters", "jobs", "tasks", "task_dependencies", "task_attempts", "task_progress"}


def tables(url: str) -> set[str]:
    engine = create_store_engine(url, pooled=False)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.db'}"
    return str(request.getfixturevalue("postgres_empty_database"))


def test_upgrade_downgrade_and_upgrade_again(empty_url: str) -> None:
    assert current_revision(empty_url) is None
    upgrade(empty_url)
    assert current_revision(empty_url) == head_revision()
    assert tables(empty_url) >= TABLES
    downgrade(empty_url, "base")
    assert current_revision(empty_url) is None
    assert not (TABLES & tables(empty_url))
    upgrade(empty_url)
    assert current_revision(empty_url) == head_revision()
    store = SqlStore(empty_url)
    try:
        assert [c.slug for c in store.run(lambda tx: tx.clusters.list_clusters())] == ["default"]
    finally:
        store.close()


def test_the_migrations_build_exactly_the_declared_schema(empty_url: str) -> None:
    upgrade(empty_url)
    engine = create_store_engine(empty_url, pooled=False)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_an_empty_database_is_migrated_on_first_use_even_by_racing_processes(
    empty_url: str,
) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            SqlStore(empty_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert current_revision(empty_url) == head_revision()


def test_a_database_at_an_older_revision_must_be_upgraded(empty_url: str) -> None:
    upgrade(empty_url, "0001")
    with pytest.raises(SchemaOutdatedError, match="run `conveyor db upgrade`"):
        SqlStore(empty_url)
    upgrade(empty_url)
    SqlStore(empty_url).close()


def test_a_foreign_non_empty_database_is_not_touched(empty_url: str) -> None:
    engine = create_store_engine(empty_url, pooled=False)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutdatedError, match="no conveyor schema"):
        SqlStore(empty_url)
    assert tables(empty_url) == {"someone_elses"}
