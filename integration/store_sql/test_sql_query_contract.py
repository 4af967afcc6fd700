"""The monitoring-read contract (``tests/contract/query_contract.py``), unchanged, on both
databases."""

from __future__ import annotations

import pytest

from conveyor.store_sql import SqlStore
from tests.contract.query_contract import MonitoringReadsContract


class TestPostgresReads(MonitoringReadsContract):
    @pytest.fixture
    def store(self, pg_store: SqlStore) -> SqlStore:
        return pg_store


class TestSqliteReads(MonitoringReadsContract):
    @pytest.fixture
    def store(self, sqlite_store: SqlStore) -> SqlStore:
        return sqlite_store
