from __future__ import annotations

import pytest

from conveyor.memory.store import InMemoryStore
from tests.contract.query_contract import QueryContract


class TestInMemoryQueries(QueryContract):
    @pytest.fixture
    def store(self) -> InMemoryStore:
        return InMemoryStore()
