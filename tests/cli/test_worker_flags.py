"""`conveyor worker` flags are settings given on the command line: they reach the runner's
settings and the state rules' policy through the composition root, like their variables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.core.runner import TaskRunner
from conveyor.core.usecases import Policy


@pytest.fixture
def seen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_BROKER_URL", "CONVEYOR_RETRY_BACKOFF"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    found: dict[str, object] = {}

    def run_forever(runner: TaskRunner) -> None:  # instead of running: what was built
        found.update(settings=runner.settings, policy=runner.service.policy)

    monkeypatch.setattr(TaskRunner, "run_forever", run_forever)
    yield found


def test_retry_backoff_lease_and_grace_flags_reach_the_runner_and_the_policy(
    seen: dict[str, object],
) -> None:
    args = ["worker", "--retry-backoff", "7", "--lease", "12", "--grace-period", "3"]
    result = CliRunner().invoke(cli, [*args, "--timeout", "9", "tests.cli.flows:Say"])
    assert result.exit_code == 0, result.output
    policy, settings = seen["policy"], seen["settings"]
    assert isinstance(policy, Policy) and policy.retry_backoff == 7.0
    assert (settings.lease, settings.grace_period, settings.default_timeout) == (12, 3, 9)  # type: ignore[attr-defined]


def test_the_retry_backoff_variable_applies_without_the_flag(
    seen: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_RETRY_BACKOFF", "2.5")
    monkeypatch.setenv("CONVEYOR_RETRY_BACKOFF_MAX", "20")
    result = CliRunner().invoke(cli, ["worker", "tests.cli.flows:Say"])
    assert result.exit_code == 0, result.output
    policy = seen["policy"]
    assert isinstance(policy, Policy)
    assert (policy.retry_backoff, policy.retry_backoff_max) == (2.5, 20.0)
