"""Every part's store contract (``tests/contract/store_contract.py``) on the in-memory store."""

from __future__ import annotations

import pytest

from conveyor.memory.store import InMemoryStore
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


class MemoryStore:
    @pytest.fixture
    def store(self) -> InMemoryStore:
        return InMemoryStore()


class TestMemoryTransactions(MemoryStore, TransactionContract):
    pass


class TestMemoryClusters(MemoryStore, ClusterRowsContract):
    pass


class TestMemoryJobs(MemoryStore, JobRowsContract):
    pass


class TestMemoryTasks(MemoryStore, TaskRowsContract):
    pass


class TestMemoryClaims(MemoryStore, ClaimsContract):
    pass


class TestMemoryOutbox(MemoryStore, OutboxContract):
    pass


class TestMemoryAttempts(MemoryStore, AttemptsContract):
    pass


class TestMemoryRunners(MemoryStore, RunnerRowsContract):
    pass
