"""`conveyor ui`: options, the token from the environment, the warning when exposed without
one. The server itself is replaced by a recorder (the browser tests run the real one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conveyor.cli.main import cli


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    import uvicorn

    calls: list[dict[str, Any]] = []

    def record(app: Any, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", record)
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONVEYOR_UI_TOKEN", raising=False)
    yield calls


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_help_has_a_worked_example() -> None:
    result = invoke("ui", "--help")
    assert result.exit_code == 0
    assert "conveyor ui" in result.output and "--token" in result.output
    assert "127.0.0.1" in result.output and "/metrics" in result.output


def test_defaults_to_localhost_5555_without_a_token(served: list[dict[str, Any]]) -> None:
    result = invoke("ui")
    assert result.exit_code == 0, result.output
    [call] = served
    assert (call["host"], call["port"]) == ("127.0.0.1", 5555)
    assert call["app"].state.token is None
    assert "http://127.0.0.1:5555" in result.output and "Warning" not in result.output


def test_token_from_the_environment_is_used_and_never_printed(
    served: list[dict[str, Any]],
) -> None:
    result = invoke("ui", "--port", "8080", env={"CONVEYOR_UI_TOKEN": "s3cret-value"})
    assert result.exit_code == 0, result.output
    assert served[0]["app"].state.token == "s3cret-value" and served[0]["port"] == 8080
    assert "s3cret-value" not in result.output and "need the token" in result.output


def test_exposing_the_ui_without_a_token_warns(served: list[dict[str, Any]]) -> None:
    result = invoke("ui", "--host", "0.0.0.0")
    assert result.exit_code == 0
    assert "Warning" in result.output and "--token" in result.output
    assert "Warning" not in invoke("ui", "--host", "0.0.0.0", "--token", "t").output


def test_the_database_is_named_and_a_bad_port_is_a_usage_error(
    served: list[dict[str, Any]], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = invoke("--database-url", url, "ui")
    assert result.exit_code == 0 and url in result.output
    assert invoke("ui", "--port", "70000").exit_code == 2


def test_help_teaches_the_host_allow_list() -> None:
    text = " ".join(invoke("ui", "--help").output.split())
    assert "--allowed-host" in text and "CONVEYOR_UI_ALLOWED_HOSTS" in text
    assert "DNS rebinding" in text and "reverse proxy" in text


def test_the_host_allow_list_defaults_to_loopback_and_the_bound_address(
    served: list[dict[str, Any]],
) -> None:
    assert invoke("ui").exit_code == 0
    assert invoke("ui", "--host", "0.0.0.0").exit_code == 0
    assert invoke("ui", "--host", "ui.lan").exit_code == 0
    loopback = ("localhost", "127.0.0.1", "::1")
    assert [call["app"].state.allowed_hosts for call in served] == [
        loopback,
        loopback,
        (*loopback, "ui.lan"),
    ]


def test_allowed_hosts_from_flags_and_the_environment(served: list[dict[str, Any]]) -> None:
    flags = invoke("ui", "--allowed-host", "conveyor.example.com", "--allowed-host", "*.ops.io")
    assert flags.exit_code == 0, flags.output
    assert "conveyor.example.com, *.ops.io" in flags.output
    env = {"CONVEYOR_UI_ALLOWED_HOSTS": "a.example, b.example c.example"}
    assert invoke("ui", env=env).exit_code == 0
    first, second = (call["app"].state.allowed_hosts for call in served)
    assert first[3:] == ("conveyor.example.com", "*.ops.io")
    assert second[3:] == ("a.example", "b.example", "c.example")


def test_the_served_app_refuses_foreign_hosts_and_accepts_allowed_ones(
    served: list[dict[str, Any]],
) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    assert invoke("ui", "--allowed-host", "conveyor.example.com").exit_code == 0
    with TestClient(served[0]["app"], base_url="http://conveyor.example.com") as http:
        assert http.get("/healthz").status_code == 200
        assert http.get("/healthz", headers={"Host": "localhost:5555"}).status_code == 200
        refused = http.get("/healthz", headers={"Host": "evil.example"})
        assert refused.status_code == 400 and "evil.example" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://conveyor.example.com", "is a URL"),
        ("conveyor.example.com:443", "has a port"),
        ("bad host", "not a host name"),
    ],
)
def test_a_bad_allowed_host_is_a_usage_error(
    served: list[dict[str, Any]], value: str, message: str
) -> None:
    result = invoke("ui", "--allowed-host", value)
    assert result.exit_code == 2 and message in result.output
    assert "--allowed-host" in result.output and not served
