"""Every part's store contract (``tests/contract/store_contract.py``), unchanged, on both
databases: one test class per part and database."""

from __future__ import annotations

import pytest

from conveyor.store_sql import SqlStore
from tests.contract.store_contract import (
    AttemptsContract,
    ClaimsContract,
    ClusterRowsContract,
    JobRowsContract,
    OutboxContract,
    RunnerRowsContract,
    TaskRowsContract,
    TransactionContract,
)


class PostgresStore:
    @pytest.fixture
    def store(self, pg_store: SqlStore) -> SqlStore:
        return pg_store


class SqliteStore:
    @pytest.fixture
    def store(self, sqlite_store: SqlStore) -> SqlStore:
        return sqlite_store


class TestPostgresTransactions(PostgresStore, TransactionContract):
    pass


class TestPostgresClusters(PostgresStore, ClusterRowsContract):
    pass


class TestPostgresJobs(PostgresStore, JobRowsContract):
    pass


class TestPostgresTasks(PostgresStore, TaskRowsContract):
    pass


class TestPostgresClaims(PostgresStore, ClaimsContract):
    pass


class TestPostgresOutbox(PostgresStore, OutboxContract):
    pass


class TestPostgresAttempts(PostgresStore, AttemptsContract):
    pass


class TestPostgresRunners(PostgresStore, RunnerRowsContract):
    pass


class TestSqliteTransactions(SqliteStore, TransactionContract):
    pass


class TestSqliteClusters(SqliteStore, ClusterRowsContract):
    pass


class TestSqliteJobs(SqliteStore, JobRowsContract):
    pass


class TestSqliteTasks(SqliteStore, TaskRowsContract):
    pass


class TestSqliteClaims(SqliteStore, ClaimsContract):
    pass


class TestSqliteOutbox(SqliteStore, OutboxContract):
    pass


class TestSqliteAttempts(SqliteStore, AttemptsContract):
    pass


class TestSqliteRunners(SqliteStore, RunnerRowsContract):
    pass
