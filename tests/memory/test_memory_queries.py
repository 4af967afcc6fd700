"""The monitoring-read contract (``tests/contract/query_contract.py``) on the in-memory store."""

from __future__ import annotations

import pytest

from conveyor.memory.store import InMemoryStore
from tests.contract.query_contract import MonitoringReadsContract


class TestMemoryReads(MonitoringReadsContract):
    @pytest.fixture
    def store(self) -> InMemoryStore:
        return InMemoryStore()
