"""The broker contract suite, unchanged, against the RabbitMQ adapter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.broker_amqp import AmqpBroker
from tests.contract.broker_contract import BrokerContract


class TestAmqpBrokerContract(BrokerContract):
    @pytest.fixture
    def broker(self, make_broker: Callable[..., AmqpBroker]) -> AmqpBroker:
        return make_broker()

    @pytest.fixture
    def second_broker(self, make_broker: Callable[..., AmqpBroker]) -> AmqpBroker:
        return make_broker()


class TestAmqpBrokerContractClassic(BrokerContract):
    """The same contract on classic queues (the non-default type)."""

    @pytest.fixture
    def broker(self, make_broker: Callable[..., AmqpBroker]) -> AmqpBroker:
        return make_broker(queue_type="classic")

    @pytest.fixture
    def second_broker(self, make_broker: Callable[..., AmqpBroker]) -> AmqpBroker:
        return make_broker(queue_type="classic")
