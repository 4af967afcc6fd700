"""A real worker on PostgreSQL and a RabbitMQ failover list: it starts although the first
broker entry is dead, runs the job, and its banner and logs show no password.

PostgreSQL trusts local connections, so a planted password is accepted and must never be
shown; the broker's real password (``guest``) must not be shown either.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url

from conveyor import Client, JobState
from conveyor.cli.main import cli
from conveyor.config import Settings
from conveyor.core.runner import TaskRunner
from tests.cli.flows import Say

PLANTED = "s3cr3tPlanted"


def database_urls(database_url: str) -> list[str]:
    url = make_url(database_url)
    where = f"{url.host}:{url.port or 5432}/{url.database}"
    return [
        f"postgresql://{url.username}:{PLANTED}@{where}",
        f"postgresql://{url.username}@{where}?password={PLANTED}&application_name=leaks",
        f"postgresql://{url.username}:{PLANTED}@127.0.0.1:1,{where}?target_session_attrs=any",
    ]


@pytest.mark.parametrize("form", ["userinfo", "query", "multi-host"])
def test_a_worker_on_a_failover_list_runs_and_shows_no_password(
    form: str,
    postgres_empty_database: str,
    amqp_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    database_url = dict(
        zip(
            ["userinfo", "query", "multi-host"], database_urls(postgres_empty_database), strict=True
        )
    )[form]
    parts = urlsplit(amqp_url)
    dead = parts._replace(netloc=f"{parts.username}:{PLANTED}@127.0.0.1:1").geturl()
    broker_url = f"{dead};{amqp_url}"
    namespace = f"leaks{uuid.uuid4().hex[:8]}"
    for name, value in {
        "CONVEYOR_HOME": str(tmp_path),
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_BROKER_URL": broker_url,
        "CONVEYOR_AMQP_NAMESPACE": namespace,
        "CONVEYOR_AMQP_QUEUE_TYPE": "classic",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "500")
    with Client(settings=Settings()) as client:
        job = client.jobs().submit("leaks", Say("hello"))
    # The worker runs until its queues are drained instead of forever; all else is real.
    monkeypatch.setattr(TaskRunner, "run_forever", TaskRunner.run_all)
    caplog.set_level(logging.DEBUG)

    result = CliRunner().invoke(cli, ["worker", "tests.cli.flows:Say"])

    assert result.exit_code == 0, result.output
    assert "database:" in result.output and "broker:" in result.output
    assert "1 computed" in result.output
    with Client(settings=Settings()) as client:
        assert client.jobs().find(job).state is JobState.COMPLETED
    for text in (result.output, caplog.text):
        assert PLANTED not in text and "s3cr3t" not in text
        assert ":guest@" not in text
    assert result.output.count("***") >= 3  # the database and both broker entries
