"""Bad input exits 2 with a message naming what was wrong, whichever path finds it.

`submit` has two paths (``module:Class``, checked against the class's fields, and a name with
``--version``, submitted as is) and used to answer the same mistake differently: an oversized
input exited 1 on one and 2 on the other, an unknown cluster 1 on both. Each mistake is run
through every path here. Unknown jobs and clusters, taken names and unusable URLs are usage
errors in every command too: exit 1 is left to a world that failed (services unreachable).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conveyor.cli.main import cli

UNKNOWN_JOB = "01a223f3-1c7a-713c-8f90-f8be6015a190"
#: The same task reached by both paths of `submit`: by import path and by name + version.
BY_CLASS = ["tests.cli.flows:Say"]
BY_NAME = ["Say", "--version", "v0.0"]
PATHS = pytest.mark.parametrize("path", [BY_CLASS, BY_NAME], ids=["module:Class", "--version"])


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    monkeypatch.setenv("CONVEYOR_MAX_INPUT_BYTES", "64")
    for name in ("CONVEYOR_DATABASE_URL", "CONVEYOR_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def assert_usage_error(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    for word in words:
        assert word in result.output, (word, result.output)
    assert "Traceback" not in result.output
    assert result.output.count("Error:") == 1


@PATHS
def test_an_oversized_input_is_a_usage_error_on_every_path(path: list[str]) -> None:
    result = run("submit", *path, '"' + "x" * 100 + '"')
    assert_usage_error(result, "Invalid value for INPUT", "over the 64-byte limit", "job cache")


@PATHS
def test_an_oversized_input_from_stdin_too(path: list[str]) -> None:
    result = run("submit", *path, "-", input='"' + "x" * 100 + '"')
    assert_usage_error(result, "Invalid value for INPUT", "over the 64-byte limit")


@PATHS
def test_an_unknown_cluster_is_a_usage_error_on_every_path(path: list[str]) -> None:
    result = run("submit", *path, '"x"', "--cluster", "nowhere")
    assert_usage_error(
        result,
        "Invalid value for --cluster",
        "Unknown cluster 'nowhere'",
        "conveyor clusters create nowhere",
        "Usage: conveyor submit",
    )


@PATHS
def test_a_malformed_cluster_slug_is_a_usage_error_on_every_path(path: list[str]) -> None:
    result = run("submit", *path, '"x"', "--cluster", "Bad_Slug")
    assert_usage_error(result, "Invalid value for --cluster", "Invalid cluster slug")


@PATHS
def test_bad_json_input_is_a_usage_error_on_every_path(path: list[str]) -> None:
    result = run("submit", *path, "{nope")
    assert_usage_error(result, "Invalid value for INPUT", "JSON")


@PATHS
def test_an_empty_job_name_is_a_usage_error_on_every_path(path: list[str]) -> None:
    result = run("submit", *path, '"x"', "--name", " ")
    assert_usage_error(result, "Invalid value for --name", "a job name cannot be empty")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ("tests.cli.flows:Missing", "has no attribute 'Missing'"),
        ("tests.cli.flows:NOT_A_TASK", "not a Task class"),
        ("nosuch.module:X", "no module named 'nosuch'"),
        ("tests.cli.flows", "names 3 task classes"),
    ],
)
def test_an_unknown_task_class_is_a_usage_error_naming_task(task: str, message: str) -> None:
    result = run("submit", task if ":" in task else task + ":", '"x"')
    assert_usage_error(result, "Invalid value for TASK", message)


def test_a_bad_task_name_or_version_names_the_argument() -> None:
    assert_usage_error(
        run("submit", "x" * 300, "--version", "v1.0", '"x"'), "Invalid value for TASK", "too long"
    )
    assert_usage_error(
        run("submit", "Say", "--version", "1.0", '"x"'),
        "Invalid value for --version",
        "Invalid version string",
    )


def test_input_that_does_not_fit_the_class_names_input() -> None:
    result = run("submit", "tests.cli.flows:Greet", '{"nom": 1}')
    assert_usage_error(result, "Invalid value for INPUT", "unknown fields ['nom']")


def test_jobs_list_refuses_an_unknown_or_malformed_cluster_like_submit() -> None:
    assert_usage_error(
        run("jobs", "list", "--cluster", "nowhere"),
        "Invalid value for --cluster",
        "Unknown cluster 'nowhere'",
    )
    assert_usage_error(
        run("jobs", "list", "--cluster", "Bad_Slug"),
        "Invalid value for --cluster",
        "Invalid cluster slug",
    )
    assert run("jobs", "list", "--cluster", "default").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "show", UNKNOWN_JOB],
        ["jobs", "watch", UNKNOWN_JOB],
        ["jobs", "diagram", UNKNOWN_JOB],
        ["jobs", "delete", UNKNOWN_JOB, "--yes"],
        ["retry", UNKNOWN_JOB],
        ["cancel", UNKNOWN_JOB],
    ],
    ids=" ".join,
)
def test_an_unknown_job_is_a_usage_error_in_every_command(args: list[str]) -> None:
    result = run(*args)
    assert_usage_error(result, f"No job with id {UNKNOWN_JOB}", f"Usage: conveyor {args[0]}")


def test_cluster_commands_refuse_bad_names_with_exit_2() -> None:
    assert run("clusters", "create", "gpu").exit_code == 0
    assert_usage_error(
        run("clusters", "create", "gpu"), "Invalid value for NAME", "'gpu' already exists"
    )
    assert_usage_error(
        run("clusters", "create", "GPU", "--slug", "gpu"), "Invalid value for --slug", "exists"
    )
    assert_usage_error(
        run("clusters", "create", "GPU", "--slug", "Bad_Slug"),
        "Invalid value for --slug",
        "Invalid cluster slug",
    )
    assert_usage_error(run("clusters", "create", ""), "Invalid value for NAME", "name is required")
    assert_usage_error(
        run("clusters", "delete", "nowhere"), "Invalid value for SLUG", "Unknown cluster"
    )
    assert_usage_error(
        run("clusters", "delete", "default"), "Invalid value for SLUG", "cannot be deleted"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--database-url", "mysql://me:secret@db/x", "jobs", "list"], "mysql://me:***@db/x"),
        (["--broker-url", "kafka://x", "jobs", "list"], "Unsupported broker URL scheme"),
        (["--broker-url", "kafka://x", "submit", *BY_NAME, '"x"'], "Unsupported broker URL"),
    ],
)
def test_an_unusable_url_is_a_usage_error(args: list[str], message: str) -> None:
    result = run(*args)
    assert_usage_error(result, message)
    assert "secret" not in result.output
