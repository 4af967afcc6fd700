"""Expected errors print one line, unexpected ones their traceback (conveyor.cli.main).

Expected: conveyor's own errors (exit 2 for what was typed wrong, 1 for a world that failed)
and click's usage errors. Anything else is a bug, whatever its type: a ValueError or an OSError
raised by a mistake in the code used to be shown as one line (a ValueError even as a usage
error), and its traceback was lost. No services: the databases here are dead ports.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conveyor.cli import _app
from conveyor.cli.main import cli
from conveyor.core.errors import StoreUnavailableError

DEAD_DATABASE = "postgresql://conveyor@127.0.0.1:1/conveyor"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    monkeypatch.setenv("CONVEYOR_STARTUP_TIMEOUT", "0.2")
    for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    yield


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def client_raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """Every command that needs the client meets ``exc`` where it builds it."""

    def build(**_: object) -> None:
        raise exc

    monkeypatch.setattr(_app, "Client", build)


def assert_one_line(result: Result, exit_code: int, message: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.output.count("Error:") == 1 and message in result.output, result.output


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("invalid literal for int() with base 10: 'x'"),
        KeyError("state"),
        FileNotFoundError(2, "No such file or directory", "/nowhere/conveyor.db"),
        TimeoutError("timed out"),
        AttributeError("'NoneType' object has no attribute 'id'"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_an_unexpected_error_shows_its_traceback_and_says_it_is_a_bug(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    client_raising(monkeypatch, exc)
    result = run("jobs", "list")
    assert result.exit_code == 1, result.output
    assert "Traceback (most recent call last)" in result.output
    assert f"{type(exc).__name__}: " in result.output  # the traceback's last line
    assert f"unexpected {type(exc).__name__} (a bug)" in result.output
    assert "Usage:" not in result.output


@pytest.mark.parametrize("verbose", [[], ["-v"]], ids=["quiet", "-v"])
def test_a_conveyor_error_is_one_line_and_the_traceback_only_with_v(
    monkeypatch: pytest.MonkeyPatch, verbose: list[str]
) -> None:
    client_raising(monkeypatch, StoreUnavailableError("The database at x is unavailable"))
    result = run(*verbose, "jobs", "list")
    assert result.exit_code == 1, result.output
    assert "Error: The database at x is unavailable" in result.output
    assert ("Traceback" in result.output) == bool(verbose)
    assert "(a bug)" not in result.output


def test_db_upgrade_on_an_unreachable_database_is_one_line() -> None:
    """It used to print SQLAlchemy's whole traceback."""
    result = run("--database-url", DEAD_DATABASE, "db", "upgrade")
    assert_one_line(result, 1, "The database at postgresql://conveyor@127.0.0.1:1/conveyor")
    assert "is unavailable" in result.output


def test_a_file_the_user_named_that_is_missing_is_a_usage_error(tmp_path: Path) -> None:
    result = run("submit", "Say", "--version", "v1.0", f"@{tmp_path / 'missing.json'}")
    assert_one_line(result, 2, "cannot read input file")


def test_a_usage_error_is_still_click_s(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_one_line(run("jobs", "show", "not-a-uuid"), 2, "Invalid value for 'JOB_ID'")
    assert_one_line(run("jobs", "nosuch"), 2, "No such command 'nosuch'")


def test_db_upgrade_on_an_unusable_url_is_a_usage_error() -> None:
    result = run("--database-url", "mysql://me:secret@db/x", "db", "upgrade")
    assert_one_line(result, 2, "Unsupported database URL mysql://me:***@db/x")
    assert "secret" not in result.output
