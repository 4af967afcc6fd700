"""SQL store fixtures: a PostgreSQL store per test on a per-module database, emptied between
tests with one TRUNCATE (much faster than a database per test), and SQLite stores in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conveyor.store_sql import SqlStore
from conveyor.store_sql.engine import normalize_url

DATA_TABLES = ("jobs", "tasks", "task_dependencies", "task_attempts", "task_progress", "runners")


def reset(url: str) -> None:
    """Empty every table but keep the schema; leave only the ``default`` cluster."""
    engine = create_engine(normalize_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(DATA_TABLES)}"))
            conn.execute(text("DELETE FROM clusters WHERE slug <> 'default'"))
    finally:
        engine.dispose()


@pytest.fixture
def pg_store(postgres_database: str) -> Iterator[SqlStore]:
    store = SqlStore(postgres_database)
    reset(postgres_database)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{tmp_path / 'conveyor.db'}")
    try:
        yield store
    finally:
        store.close()
