"""The store contract (``tests/contract/store_contract.py``), unchanged, on both databases."""

from __future__ import annotations

import pytest

from conveyor.store_sql import SqlStore
from tests.contract.store_contract import StoreContract


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, pg_store: SqlStore) -> SqlStore:
        return pg_store


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, sqlite_store: SqlStore) -> SqlStore:
        return sqlite_store
