"""``conveyor.config.Settings``: the stdlib loader that replaced pydantic-settings.

It must accept what pydantic-settings accepted (every runner process reads it), name the bad
variable in one line, and keep pydantic off the worker's import path.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conveyor.cli.main import cli
from conveyor.config import Settings, SettingsError, default_home
from conveyor.core.runner import RunnerSettings
from conveyor.core.usecases import Policy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No CONVEYOR_* variable of the machine running the tests, in any spelling."""
    for name in list(os.environ):
        if name.upper().startswith("CONVEYOR_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def test_defaults_without_environment() -> None:
    settings = Settings()
    assert settings.database_url is None and settings.broker_url is None
    assert settings.home == default_home() == Path.home() / ".conveyor"
    assert settings.amqp_namespace == "conveyor" and settings.amqp_queue_type is None
    assert settings.amqp_consumer_timeout == 1800.0 and settings.startup_timeout == 5.0
    assert settings.lease == 30.0 and settings.grace_period == 20.0
    assert settings.crash_limit == 10 and settings.max_input_bytes == 1024 * 1024
    assert settings.sweep_interval == 5.0 and settings.heartbeat_interval == 5.0
    assert settings.retry_backoff == 0.0 and settings.retry_backoff_factor == 2.0
    assert settings.retry_backoff_max == 600.0


def test_the_defaults_the_core_owns_are_its_own() -> None:
    """One definition each: the runner's and the state rules' dataclasses hold the defaults."""
    settings, runner, policy = Settings(), RunnerSettings(), Policy()
    assert (settings.lease, settings.grace_period) == (runner.lease, runner.grace_period)
    assert settings.sweep_interval == runner.sweep_interval
    assert settings.heartbeat_interval == runner.heartbeat_interval
    assert settings.max_input_bytes == runner.max_input_bytes
    assert settings.crash_limit == policy.crash_limit
    assert (settings.retry_backoff, settings.retry_backoff_factor, settings.retry_backoff_max) == (
        policy.retry_backoff,
        policy.retry_backoff_factor,
        policy.retry_backoff_max,
    )


def test_the_retry_back_off_from_its_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONVEYOR_RETRY_BACKOFF", "1.5")
    clean_env.setenv("CONVEYOR_RETRY_BACKOFF_FACTOR", "3")
    clean_env.setenv("CONVEYOR_RETRY_BACKOFF_MAX", "60")
    settings = Settings()
    assert (settings.retry_backoff, settings.retry_backoff_factor) == (1.5, 3.0)
    assert settings.retry_backoff_max == 60.0
    clean_env.setenv("CONVEYOR_RETRY_BACKOFF_FACTOR", "0.5")
    clean_env.setenv("CONVEYOR_RETRY_BACKOFF", "-1")
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert str(caught.value) == (
        "CONVEYOR_RETRY_BACKOFF: must be 0 or more, got '-1'; "
        "CONVEYOR_RETRY_BACKOFF_FACTOR: must be 1 or more, got '0.5'"
    )


def test_every_field_from_its_environment_variable(clean_env: pytest.MonkeyPatch) -> None:
    values = {
        "DATABASE_URL": "postgresql://u@db/x",
        "BROKER_URL": "amqp://rabbit//",
        "HOME": "/srv/conveyor",
        "AMQP_NAMESPACE": "staging",
        "AMQP_QUEUE_TYPE": "classic",
        "AMQP_CONSUMER_TIMEOUT": "900",
        "STARTUP_TIMEOUT": "0.5",
        "LEASE": "45",
        "GRACE_PERIOD": "0",
        "CRASH_LIMIT": "3",
        "SWEEP_INTERVAL": "0.2",
        "HEARTBEAT_INTERVAL": "1.5",
        "MAX_INPUT_BYTES": "2048",
        "RETRY_BACKOFF": "2",
        "RETRY_BACKOFF_FACTOR": "1.5",
        "RETRY_BACKOFF_MAX": "30",
    }
    for name, value in values.items():
        clean_env.setenv(f"CONVEYOR_{name}", value)
    assert Settings() == Settings(
        database_url="postgresql://u@db/x",
        broker_url="amqp://rabbit//",
        home=Path("/srv/conveyor"),
        amqp_namespace="staging",
        amqp_queue_type="classic",
        amqp_consumer_timeout=900.0,
        startup_timeout=0.5,
        lease=45.0,
        grace_period=0.0,
        crash_limit=3,
        sweep_interval=0.2,
        heartbeat_interval=1.5,
        max_input_bytes=2048,
        retry_backoff=2.0,
        retry_backoff_factor=1.5,
        retry_backoff_max=30.0,
    )
    settings = Settings()
    assert type(settings.lease) is float and type(settings.crash_limit) is int
    assert isinstance(settings.home, Path)


def test_variable_names_are_case_insensitive(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("conveyor_database_url", "sqlite:///lower.db")
    clean_env.setenv("Conveyor_Lease", "12")
    settings = Settings()
    assert settings.database_url == "sqlite:///lower.db" and settings.lease == 12.0


def test_the_upper_case_spelling_wins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("conveyor_lease", "12")
    clean_env.setenv("CONVEYOR_LEASE", "13")
    assert Settings().lease == 13.0


def test_keyword_arguments_override_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONVEYOR_LEASE", "abc")  # not even read
    clean_env.setenv("CONVEYOR_DATABASE_URL", "sqlite:///env.db")
    settings = Settings(lease=7, database_url=None)
    assert settings.lease == 7.0 and settings.database_url is None


def test_unknown_variables_are_ignored(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONVEYOR_NO_SUCH_SETTING", "x")
    clean_env.setenv("CONVEYOR_LOG_FORMAT", "json")  # a CLI flag's variable, not a setting
    clean_env.setenv("CONVEYOR_", "x")
    assert Settings() == Settings(home=default_home())


def test_unknown_keyword_arguments_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="leese"):
        Settings(leese=5)  # type: ignore[call-arg]


@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_urls_home_and_queue_type_mean_the_default(
    clean_env: pytest.MonkeyPatch, blank: str
) -> None:
    for name in ("DATABASE_URL", "BROKER_URL", "HOME", "AMQP_QUEUE_TYPE"):
        clean_env.setenv(f"CONVEYOR_{name}", blank)
    settings = Settings()
    assert settings.database_url is None and settings.broker_url is None
    assert settings.home == default_home() and settings.amqp_queue_type is None
    assert settings.embedded
    assert Settings(database_url=blank, broker_url=blank).resolved_broker_url() == "none://"


@pytest.mark.parametrize(
    ("text", "value"),
    [("45", 45.0), (" 5 ", 5.0), ("1e3", 1000.0), ("1_000", 1000.0), ("+2.5", 2.5)],
)
def test_numbers_parse_like_pydantic(
    clean_env: pytest.MonkeyPatch, text: str, value: float
) -> None:
    clean_env.setenv("CONVEYOR_LEASE", text)
    assert Settings().lease == value


@pytest.mark.parametrize(("text", "value"), [("3", 3), (" 7 ", 7), ("1_000", 1000), ("4.0", 4)])
def test_whole_numbers_parse_like_pydantic(
    clean_env: pytest.MonkeyPatch, text: str, value: int
) -> None:
    clean_env.setenv("CONVEYOR_CRASH_LIMIT", text)
    assert Settings().crash_limit == value
    assert type(Settings().crash_limit) is int


@pytest.mark.parametrize(
    ("variable", "text", "message"),
    [
        ("CONVEYOR_LEASE", "abc", "CONVEYOR_LEASE: expected a number, got 'abc'"),
        ("CONVEYOR_LEASE", "", "CONVEYOR_LEASE: expected a number, got ''"),
        ("conveyor_lease", "abc", "conveyor_lease: expected a number, got 'abc'"),
        ("CONVEYOR_GRACE_PERIOD", "0x10", "CONVEYOR_GRACE_PERIOD: expected a number, got '0x10'"),
        ("CONVEYOR_CRASH_LIMIT", "1.5", "CONVEYOR_CRASH_LIMIT: expected a whole number, got '1.5'"),
        ("CONVEYOR_MAX_INPUT_BYTES", "1MiB", "CONVEYOR_MAX_INPUT_BYTES: expected a whole number"),
        ("CONVEYOR_LEASE", "nan", "CONVEYOR_LEASE: expected a finite number, got 'nan'"),
        ("CONVEYOR_STARTUP_TIMEOUT", "inf", "CONVEYOR_STARTUP_TIMEOUT: expected a finite number"),
        ("CONVEYOR_LEASE", "0", "CONVEYOR_LEASE: must be more than 0, got '0'"),
        ("CONVEYOR_SWEEP_INTERVAL", "-1", "CONVEYOR_SWEEP_INTERVAL: must be more than 0"),
        ("CONVEYOR_HEARTBEAT_INTERVAL", "0", "CONVEYOR_HEARTBEAT_INTERVAL: must be more than 0"),
        ("CONVEYOR_GRACE_PERIOD", "-5", "CONVEYOR_GRACE_PERIOD: must be 0 or more, got '-5'"),
        ("CONVEYOR_CRASH_LIMIT", "-1", "CONVEYOR_CRASH_LIMIT: must be 0 or more, got '-1'"),
        (
            "CONVEYOR_AMQP_QUEUE_TYPE",
            "fast",
            "CONVEYOR_AMQP_QUEUE_TYPE: expected 'classic' or 'quorum', got 'fast'",
        ),
        (
            "CONVEYOR_AMQP_QUEUE_TYPE",
            "QUORUM",
            "CONVEYOR_AMQP_QUEUE_TYPE: expected 'classic' or 'quorum', got 'QUORUM'",
        ),
    ],
)
def test_a_bad_value_names_its_variable(
    clean_env: pytest.MonkeyPatch, variable: str, text: str, message: str
) -> None:
    clean_env.setenv(variable, text)
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_every_bad_value_is_reported_in_one_line(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONVEYOR_LEASE", "abc")
    clean_env.setenv("CONVEYOR_CRASH_LIMIT", "many")
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert str(caught.value) == (
        "CONVEYOR_LEASE: expected a number, got 'abc'; "
        "CONVEYOR_CRASH_LIMIT: expected a whole number, got 'many'"
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lease": "abc"}, "lease: expected a number, got 'abc'"),
        ({"lease": None}, "lease: expected a number, got None"),
        ({"crash_limit": 2.5}, "crash_limit: expected a whole number, got 2.5"),
        ({"amqp_namespace": 5}, "amqp_namespace: expected a string, got 5"),
        ({"database_url": 5}, "database_url: expected a URL string, got 5"),
        ({"home": 5}, "home: expected a folder path, got 5"),
        ({"amqp_queue_type": "lazy"}, "amqp_queue_type: expected 'classic' or 'quorum'"),
    ],
)
def test_a_bad_keyword_argument_names_the_field(values: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{re.escape(message)}"):
        Settings(**values)


def test_keyword_arguments_are_converted_like_the_environment() -> None:
    settings = Settings(lease="15", crash_limit="4", home="~/elsewhere")  # type: ignore[arg-type]
    assert settings.lease == 15.0 and settings.crash_limit == 4
    assert settings.home == Path("~/elsewhere")
    assert settings.embedded_database_path == Path.home() / "elsewhere" / "conveyor.db"
    assert Settings(lease=5).lease == 5.0 and type(Settings(lease=5).lease) is float


def test_replace_copies_without_reading_the_environment_and_checks(
    clean_env: pytest.MonkeyPatch,
) -> None:
    base = Settings(lease=40)
    clean_env.setenv("CONVEYOR_LEASE", "99")
    copy = dataclasses.replace(base, database_url="memory://")
    assert copy.lease == 40.0 and copy.database_url == "memory://"
    assert base.database_url is None
    with pytest.raises(SettingsError, match=r"^lease: must be more than 0"):
        dataclasses.replace(base, lease=-1)


def test_resolved_urls_and_embedded(tmp_path: Path) -> None:
    embedded = Settings(home=tmp_path)
    assert embedded.embedded
    assert embedded.embedded_database_path == tmp_path / "conveyor.db"
    assert embedded.resolved_database_url() == f"sqlite:///{tmp_path / 'conveyor.db'}"
    assert embedded.resolved_broker_url() == "none://"
    remote = Settings(database_url="postgresql://db/x", broker_url="amqp://rabbit//")
    assert not remote.embedded
    assert remote.resolved_database_url() == "postgresql://db/x"
    assert remote.resolved_broker_url() == "amqp://rabbit//"


def test_every_field_has_a_parser_a_doc_and_a_readme_row() -> None:
    names = [field.name for field in dataclasses.fields(Settings)]
    for field in dataclasses.fields(Settings):
        assert callable(field.metadata["parse"]) and field.metadata["doc"], field.name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"| `CONVEYOR_{name.upper()}`" in readme, name


def test_the_cli_prints_one_line_and_exits_2_for_a_bad_variable(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("CONVEYOR_HOME", str(tmp_path))
    clean_env.setenv("CONVEYOR_LEASE", "abc")
    result = CliRunner().invoke(cli, ["jobs", "list"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: invalid configuration: CONVEYOR_LEASE: expected a number, got 'abc'"]
    assert "Traceback" not in result.output
    assert not (tmp_path / "conveyor.db").exists()


def test_the_worker_import_path_imports_no_pydantic() -> None:
    """pydantic costs every runner process ~10 MiB and ~70 ms; only the web UI needs it."""
    code = (
        "import sys, conveyor.cli.main\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_core', 'pydantic_settings', 'fastapi')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("text", ["0", "0.5", "-20"])
def test_a_consumer_timeout_under_a_second_is_refused_with_the_unit_explained(
    clean_env: pytest.MonkeyPatch, text: str
) -> None:
    clean_env.setenv("CONVEYOR_AMQP_CONSUMER_TIMEOUT", text)
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert str(caught.value) == (
        f"CONVEYOR_AMQP_CONSUMER_TIMEOUT: must be at least 1 (seconds), got {text!r}; "
        "rabbitmq.conf's consumer_timeout = 20000 (ms) is 20 here"
    )


def test_a_20s_consumer_timeout_is_accepted(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONVEYOR_AMQP_CONSUMER_TIMEOUT", "20")
    assert Settings().amqp_consumer_timeout == 20.0
