"""The early-ack and give-back deadlines derived from RabbitMQ's ``consumer_timeout``."""

from __future__ import annotations

import pytest

from conveyor.broker_amqp import AmqpBroker
from conveyor.broker_amqp._consumer import READY_MAX_AGE, ack_deadlines


def test_the_default_timeout_keeps_the_60s_margin() -> None:
    assert ack_deadlines(1800.0, 60.0) == (1740.0, READY_MAX_AGE)


@pytest.mark.parametrize("timeout", [1.0, 3.0, 20.0, 60.0, 61.0, 240.0])
def test_any_timeout_of_a_second_or_more_leaves_three_quarters_of_it_before_the_early_ack(
    timeout: float,
) -> None:
    early_after, ready_max_age = ack_deadlines(timeout, 60.0)
    assert 0.75 * timeout <= early_after < timeout
    assert 0 < ready_max_age <= early_after


def test_a_20s_timeout_acks_after_15s() -> None:
    assert ack_deadlines(20.0, 60.0) == (15.0, 15.0)


def test_a_smaller_explicit_margin_is_kept() -> None:
    assert ack_deadlines(20.0, 2.0) == (18.0, 18.0)


@pytest.mark.parametrize("timeout", [0.0, 0.5, -3.0, float("nan")])
def test_a_timeout_below_one_second_is_refused_with_the_unit_explained(timeout: float) -> None:
    with pytest.raises(ValueError, match=r"consumer_timeout must be at least 1 s.*20000"):
        ack_deadlines(timeout, 60.0)
    with pytest.raises(ValueError, match="consumer_timeout must be at least 1 s"):
        AmqpBroker("amqp://guest:guest@127.0.0.1:1//", consumer_timeout=timeout)


def test_a_negative_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="early_ack_margin must be 0 s or more, got -1"):
        ack_deadlines(20.0, -1.0)
