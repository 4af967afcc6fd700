"""The composition root builds the policy and the runner settings, in one place each."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conveyor import Client, ExecutionContext, Task
from conveyor.bootstrap import (
    _flush_relays_at_exit,
    _relays,
    build_orchestrator,
    build_policy,
    build_runner_settings,
)
from conveyor.config import Settings
from conveyor.core.model import DispatchMessage
from conveyor.core.relay import OutboxRelay
from conveyor.core.usecases import Policy
from conveyor.memory.broker import InMemoryBroker
from conveyor.memory.store import InMemoryStore


def test_the_policy_comes_from_the_settings() -> None:
    settings = Settings(crash_limit=3, retry_backoff=1.5, retry_backoff_factor=3)
    policy = build_policy(settings)
    assert (policy.crash_limit, policy.retry_backoff, policy.retry_backoff_factor) == (3, 1.5, 3)
    with Client(settings=Settings(database_url="memory://", retry_backoff=4)) as client:
        assert client.service.policy.retry_backoff == 4.0
        assert client.service.policy.publish  # the broker's to decide, not the settings'


def test_a_policy_given_replaces_the_settings_and_the_broker_sets_publish() -> None:
    given = Policy(crash_limit=2, publish=True)
    with Client("memory://", "none://", policy=given) as client:
        assert client.service.policy.crash_limit == 2
        assert client.service.policy.publish is False  # none:// needs no messages


def test_custom_adapters_get_the_same_policy_from_the_settings() -> None:
    service = build_orchestrator(
        Settings(database_url="memory://", crash_limit=4),
        store=InMemoryStore(),
        broker=InMemoryBroker(),
    )
    assert service.policy.crash_limit == 4 and service.relay is None
    with pytest.raises(ValueError, match="both store= and broker="):
        build_orchestrator(Settings(), store=InMemoryStore())


def test_runner_settings_from_the_settings_and_what_only_arguments_set() -> None:
    built = build_runner_settings(
        Settings(lease=12, grace_period=1, sweep_interval=2, heartbeat_interval=3),
        default_timeout=9,
        max_input_bytes=64,
    )
    assert (built.lease, built.grace_period, built.default_timeout) == (12, 1, 9)
    assert (built.sweep_interval, built.heartbeat_interval, built.max_input_bytes) == (2, 3, 64)
    settings = Settings(database_url="memory://", grace_period=2, max_input_bytes=99)
    with Client(settings=settings) as client:
        runner = client.runner(tasks=[Noop], lease=7, timeout=5)
        assert (runner.settings.lease, runner.settings.grace_period) == (7, 2)
        assert (runner.settings.default_timeout, runner.settings.max_input_bytes) == (5, 99)


class Noop(Task):
    def execute(self, context: ExecutionContext) -> None:
        pass


def test_relays_built_here_are_flushed_at_exit() -> None:
    published: list[int] = []

    def publish(batch: Sequence[DispatchMessage]) -> int:
        published.append(len(batch))
        return len(batch)

    relay = OutboxRelay(publish)
    _relays.add(relay)
    try:
        relay.put([object()])  # type: ignore[list-item]
        _flush_relays_at_exit()
        assert published == [1]
    finally:
        relay.close()
