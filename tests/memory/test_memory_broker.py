from __future__ import annotations

import pytest

from conveyor.memory.broker import InMemoryBroker
from tests.contract.broker_contract import BrokerContract


class TestInMemoryBroker(BrokerContract):
    @pytest.fixture
    def broker(self) -> InMemoryBroker:
        return InMemoryBroker()

    @pytest.fixture
    def second_broker(self, broker: InMemoryBroker) -> InMemoryBroker:
        return broker
