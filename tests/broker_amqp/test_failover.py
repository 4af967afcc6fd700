"""Failover over ``amqp://a;amqp://b;amqp://c``: rotation order and back-off (no broker).

Only the single connection attempt (``_connect_one``) and the clock are replaced; the
integration suite runs the same lists against a real RabbitMQ.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from conveyor.broker_amqp import _connection
from conveyor.broker_amqp._connection import FailoverList, backoff_delays, open_connection
from conveyor.core.errors import BrokerUnavailableError


def hosts(*names: str) -> str:
    """A failover list of unique URLs (the rotation is remembered per URL string)."""
    tag = uuid.uuid4().hex[:8]
    return ";".join(f"amqp://u:pw{tag}@{name}-{tag}:5672//" for name in names)


class FakeBroker:
    """Stands in for the network: which hosts are up, and every attempt made."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, up: set[str]) -> None:
        self.up = up
        self.attempts: list[str] = []
        self.slept: list[float] = []
        self.now = 0.0
        monkeypatch.setattr(_connection, "_connect_one", self.connect)
        monkeypatch.setattr(_connection.time, "sleep", self.sleep)
        monkeypatch.setattr(_connection.time, "monotonic", lambda: self.now)

    def connect(self, entry: str, **kwargs: Any) -> str:
        host = entry.split("@", 1)[1].split("-", 1)[0]
        self.attempts.append(host)
        self.now += 0.01
        if host not in self.up:
            raise ConnectionRefusedError(111, "Connection refused")
        return f"connection to {host}"

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def connect(url: str, **kwargs: Any) -> Any:
    return open_connection(url, heartbeat=0, connect_timeout=1.0, name="test", **kwargs)


def test_a_dead_first_host_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    net = FakeBroker(monkeypatch, up={"b", "c"})
    assert connect(hosts("a", "b", "c")) == "connection to b"
    assert net.attempts == ["a", "b"]


def test_reconnects_start_at_the_host_that_worked_last(monkeypatch: pytest.MonkeyPatch) -> None:
    url = hosts("a", "b", "c")
    net = FakeBroker(monkeypatch, up={"b", "c"})
    connect(url)
    net.attempts.clear()
    connect(url)
    assert net.attempts == ["b"], "the dead first host is not retried before the live one"
    net.up = {"a", "c"}  # b died; the list's order continues after it and wraps around
    net.attempts.clear()
    assert connect(url) == "connection to c"
    assert net.attempts == ["b", "c"]
    net.up = {"a"}
    net.attempts.clear()
    assert connect(url) == "connection to a"
    assert net.attempts == ["c", "a"]


def test_the_rotation_is_shared_by_every_connection_of_a_url() -> None:
    url = hosts("a", "b", "c")
    first, second = FailoverList.of(url), FailoverList.of(url)
    assert first is second
    assert [i for i, _ in first.order()] == [0, 1, 2]
    first.connected(2)
    assert [i for i, _ in second.order()] == [2, 0, 1]
    assert FailoverList.of(hosts("a", "b", "c")) is not first


def test_every_host_down_names_each_one_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    url = hosts("a", "b", "c")
    net = FakeBroker(monkeypatch, up=set())
    with pytest.raises(BrokerUnavailableError) as info:
        connect(url)
    assert net.attempts == ["a", "b", "c"] and net.slept == [], "one pass, no sleep by default"
    message = str(info.value)
    assert message.startswith("cannot connect to RabbitMQ at any of the 3 URLs: ")
    assert message.count("Connection refused") == 3
    assert "u:***@a-" in message and "u:***@c-" in message and ":pw" not in message


def test_a_single_url_keeps_its_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeBroker(monkeypatch, up=set())
    with pytest.raises(
        BrokerUnavailableError, match=r"^cannot connect to RabbitMQ at amqp://u:\*\*\*@a-"
    ):
        connect(hosts("a"))


def test_retry_for_repeats_the_passes_with_jittered_back_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    net = FakeBroker(monkeypatch, up=set())
    with pytest.raises(BrokerUnavailableError):
        connect(hosts("a", "b"), retry_for=3.0)
    assert len(net.attempts) == 2 * (len(net.slept) + 1), "every pass tries the whole list"
    assert len(net.slept) >= 3
    assert net.now >= 3.0 and sum(net.slept) <= 3.0, "the last sleep is cut to the deadline"
    for slept, ceiling in zip(net.slept[:-1], [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0], strict=False):
        assert ceiling / 2 <= slept <= ceiling


def test_retry_for_stops_at_the_first_success(monkeypatch: pytest.MonkeyPatch) -> None:
    net = FakeBroker(monkeypatch, up=set())
    original: Callable[..., str] = net.connect
    calls = itertools.count()

    def comes_up_later(entry: str, **kwargs: Any) -> str:
        if next(calls) == 5:
            net.up = {"b"}
        return original(entry, **kwargs)

    monkeypatch.setattr(_connection, "_connect_one", comes_up_later)
    assert connect(hosts("a", "b"), retry_for=60.0) == "connection to b"
    assert net.attempts == ["a", "b"] * 3
    assert len(net.slept) == 2


def test_back_off_doubles_up_to_the_cap_with_equal_jitter() -> None:
    delays = list(itertools.islice(backoff_delays(0.1, 2.0, random.Random(7)), 10))
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0, 2.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    # Jitter: two processes that start backing off together do not retry in lockstep.
    other = list(itertools.islice(backoff_delays(0.1, 2.0, random.Random(8)), 10))
    assert delays != other
