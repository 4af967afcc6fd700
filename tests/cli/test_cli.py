"""Every command through click's test runner, on the embedded SQLite default (no services)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conveyor import Client, JobState
from conveyor.cli.main import cli
from tests.cli.flows import TASKS


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONVEYOR_BROKER_URL", raising=False)
    yield tmp_path


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


UNKNOWN_JOB = "01a223f3-1c7a-713c-8f90-f8be6015a190"


def run_tasks() -> None:
    with Client() as client:
        client.runner(tasks=TASKS).run_all()


COMMANDS = [
    ["demo"],
    ["worker"],
    ["monitor"],
    ["submit"],
    ["retry"],
    ["cancel"],
    ["jobs", "list"],
    ["jobs", "show"],
    ["jobs", "watch"],
    ["jobs", "diagram"],
    ["jobs", "delete"],
    ["clusters", "create"],
    ["clusters", "list"],
    ["clusters", "delete"],
    ["runners", "list"],
    ["db", "upgrade"],
    ["doctor"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0 and "Usage: conveyor" in result.output
    assert "Example" in result.output, "every command's help shows a worked example"


def test_version() -> None:
    assert invoke("--version").output.startswith("conveyor, version")


def test_demo_in_memory() -> None:
    result = invoke("demo", "--memory", "--scenes", "4", "--runners", "2")
    assert result.exit_code == 0, result.output
    assert "COMPLETED" in result.output and "ProcessScene" in result.output


def test_submit_show_list_and_json(home: Path) -> None:
    result = invoke("submit", "tests.cli.flows:Greet", '{"name": "ada", "times": 3}')
    assert result.exit_code == 0, result.output
    job_id = result.output.strip().splitlines()[-1]
    run_tasks()
    shown = invoke("jobs", "show", job_id)
    assert shown.exit_code == 0
    assert "COMPLETED" in shown.output and "hello ada #2" in shown.output
    assert "greetings" in shown.output and "3/3" in shown.output
    listed = json.loads(invoke("--json", "jobs", "list").output)
    assert [j["id"] for j in listed] == [job_id]
    assert listed[0]["state"] == "COMPLETED" and listed[0]["tasks_by_state"] == {"COMPUTED": 4}
    detail = json.loads(invoke("--json", "jobs", "show", job_id).output)
    assert detail["progress"] == [{"label": "greetings", "total": 3, "done": 3}]
    assert len(detail["tasks"]) == 4
    assert "flowchart TD" in invoke("jobs", "diagram", job_id).output


def test_submit_by_identifier_without_user_code(home: Path) -> None:
    result = invoke("submit", "Say", "--version", "v0.0", '"raw json"', "--name", "by-name")
    assert result.exit_code == 0, result.output
    run_tasks()
    listed = json.loads(invoke("--json", "jobs", "list", "--name", "BY-NAME").output)
    assert listed[0]["state"] == "COMPLETED"


def test_submit_reads_stdin(home: Path) -> None:
    job_id = invoke("submit", "tests.cli.flows:Say", "-", input='"from stdin"').output.split()[-1]
    run_tasks()
    detail = json.loads(invoke("--json", "jobs", "show", job_id).output)
    assert detail["state"] == "COMPLETED" and detail["tasks"][0]["display"] == "from stdin"


@pytest.fixture
def background_runner(home: Path) -> Iterator[None]:
    client = Client()
    runner = client.runner(tasks=TASKS)
    thread = threading.Thread(target=runner.run_forever)
    thread.start()
    yield
    runner.stop()
    thread.join(10)
    client.close()


def test_submit_wait_exits_0_on_completion_and_1_on_failure(background_runner: None) -> None:
    ok = invoke("submit", "tests.cli.flows:Greet", '{"name": "bo", "times": 2}', "--wait")
    assert ok.exit_code == 0, ok.output
    assert "COMPLETED" in ok.output and "greetings" in ok.output
    bad = invoke("submit", "tests.cli.flows:Explode", '"no"', "--wait")
    assert bad.exit_code == 1 and "FAILED" in bad.output and "conveyor jobs show" in bad.output
    watched = invoke("jobs", "watch", bad.output.split("Submitted job Explode ")[1].split()[0])
    assert watched.exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "nosuch.module:X", "1"], "no module named 'nosuch'"),
        (["submit", "tests.cli.flows:NOT_A_TASK", "1"], "not a Task class"),
        (["submit", "tests.cli.flows:Missing", "1"], "has no attribute 'Missing'"),
        (["submit", "tests.cli.flows:Greet", "{nope"], "not valid UTF-8 JSON"),
        (["submit", "tests.cli.flows:Greet", '{"nom": 1}'], "unknown fields ['nom']"),
        (["submit", "tests.cli.flows:Greet", '{"name": 5}'], "expected a string"),
        (["submit", "Say", "--version", "1.0", "1"], "Invalid version string"),
        (["submit", "Say", "--version", "v1.0", "{bad"], "not valid JSON"),
        (["submit", "Say", "--version", "v1.0", "1", "--cluster", "Bad_Slug"], "cluster slug"),
        (["jobs", "show", "not-a-uuid"], "is not a job id"),
        (["jobs", "list", "--since", "yesterday"], "use a duration like 30m"),
        (["jobs", "list", "--state", "DONE"], "'DONE' is not one of"),
    ],
)
def test_usage_errors_exit_2_with_one_clear_message(
    home: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--database-url", "postgresql://me:secret@127.0.0.1:1/x", "jobs", "list"], "unavailable"),
        (
            ["--database-url", "postgresql://me:secret@127.0.0.1:1/x", "submit", "Say", "-"],
            "unavailable",
        ),
        (
            ["--database-url", "postgresql://me:secret@127.0.0.1:1/x", "retry", UNKNOWN_JOB],
            "unavailable",
        ),
    ],
)
def test_runtime_errors_exit_1_with_one_clear_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    # Unknown jobs and clusters, bad URLs: usage errors now (tests/cli/test_exit_codes.py).
    monkeypatch.setenv("CONVEYOR_STARTUP_TIMEOUT", "0.5")
    result = CliRunner().invoke(cli, args, input='"x"')
    assert result.exit_code == 1, result.output
    assert message in result.output and "secret" not in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_verbose_shows_the_traceback(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_STARTUP_TIMEOUT", "0.5")
    url = "postgresql://me:pw@127.0.0.1:1/x"
    result = CliRunner().invoke(cli, ["-v", "--database-url", url, "jobs", "list"])
    assert result.exit_code == 1 and "Traceback" in result.output
    unknown = ["-v", "jobs", "show", "01a223f3-1c7a-713c-8f90-f8be6015a190"]
    result = CliRunner().invoke(cli, unknown)
    assert result.exit_code == 2 and "Traceback" in result.output


def test_retry_and_cancel_report_what_changed(home: Path) -> None:
    job_id = invoke("submit", "tests.cli.flows:Explode", '"kaboom"').output.split()[-1]
    run_tasks()
    shown = invoke("jobs", "show", job_id).output
    assert "FAILED" in shown and "RuntimeError: kaboom" in shown and "Traceback" in shown
    assert "Requeued 1 failed task" in invoke("retry", job_id).output
    assert "Canceled job" in invoke("cancel", job_id).output
    assert invoke("--json", "jobs", "list", "--state", "canceled").output.count(job_id) == 1
    assert "nothing to retry" not in invoke("retry", job_id).output
    result = invoke("jobs", "delete", job_id, "--yes")
    assert result.exit_code == 0 and invoke("--json", "jobs", "list").output.strip() == "[]"


def test_clusters_and_runners(home: Path) -> None:
    assert "Created cluster gpu-eu" in invoke("clusters", "create", "GPU EU").output
    listed = json.loads(invoke("--json", "clusters", "list").output)
    assert [c["slug"] for c in listed] == ["default", "gpu-eu"]
    assert "Deleted cluster gpu-eu" in invoke("clusters", "delete", "gpu-eu").output
    assert "No runners online" in invoke("runners", "list").output
    assert json.loads(invoke("--json", "runners", "list", "--all").output) == []


def test_db_upgrade_and_doctor(home: Path) -> None:
    result = invoke("db", "upgrade")
    assert result.exit_code == 0 and "conveyor.db" in result.output
    assert "up to date" in invoke("db", "upgrade").output
    doctor = CliRunner().invoke(cli, ["doctor"])
    assert doctor.exit_code == 0, doctor.output
    assert "SQLite" in doctor.output and "none://" in doctor.output


def test_doctor_fails_on_an_unreachable_broker(home: Path) -> None:
    result = CliRunner().invoke(cli, ["--broker-url", "amqp://guest:pw@127.0.0.1:1//", "doctor"])
    assert result.exit_code == 1
    assert "broker" in result.output and "pw" not in result.output


def test_json_doctor_prints_one_json_document_on_stdout(home: Path) -> None:
    # click >= 8.2 keeps stdout and stderr apart in every Result (mix_stderr is gone).
    result = CliRunner().invoke(cli, ["--json", "doctor"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["database", "schema", "broker", "runners"]
    assert all(c["ok"] for c in report["checks"]) and "SQLite" in report["checks"][0]["detail"]
    assert "✓" not in result.stdout + result.stderr  # no table anywhere


def test_json_doctor_reports_failures_on_stdout_and_exits_1(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_STARTUP_TIMEOUT", "0.5")
    args = ["--json", "--broker-url", "amqp://guest:pw@127.0.0.1:1//", "doctor"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    broker = next(c for c in report["checks"] if c["name"] == "broker")
    assert report["ok"] is False and broker["ok"] is False
    assert "pw" not in result.stdout and "✗" not in result.stdout + result.stderr


def test_job_state_after_wait_from_the_api(home: Path) -> None:
    job_id = invoke("submit", "tests.cli.flows:Say", '"x"').output.split()[-1]
    run_tasks()
    with Client() as client:
        assert client.jobs().wait(job_id, timeout=5).state is JobState.COMPLETED


def test_unreachable_services_fail_fast_with_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_STARTUP_TIMEOUT", "0.5")
    db = CliRunner().invoke(
        cli, ["--database-url", "postgresql://me:pw@127.0.0.1:1/x", "jobs", "list"]
    )
    assert db.exit_code == 1 and "is unavailable" in db.output and "pw" not in db.output
    broker = CliRunner().invoke(
        cli, ["--broker-url", "amqp://me:pw@127.0.0.1:1//", "worker", "tests.cli.flows:Say"]
    )
    assert broker.exit_code == 1 and "cannot connect to RabbitMQ" in broker.output
    assert ":pw@" not in broker.output
