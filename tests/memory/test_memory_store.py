from __future__ import annotations

import pytest

from conveyor.memory.store import InMemoryStore
from tests.contract.store_contract import StoreContract


class TestInMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> InMemoryStore:
        return InMemoryStore()
