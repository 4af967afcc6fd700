"""libpq's multi-host URL (``postgresql://u:p@h1:5433,h2:5434/db``) on a real PostgreSQL.

The first host is a dead port and the second the real server: libpq tries them in order, so
the store must connect, migrate and run a workflow, with the other query parameters kept.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url

from conveyor import Client, ExecutionContext, JobState, Task
from conveyor.cli.main import cli
from conveyor.config import Settings
from conveyor.core.errors import StoreUnavailableError
from conveyor.store_sql import SqlStore

DEAD = "127.0.0.1:1"


class Double(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = str(2 * self.n)


def multi_host(database_url: str, query: str = "", *, password: str | None = None) -> str:
    """The fixture's database behind a dead first host, in libpq's authority form."""
    url = make_url(database_url)
    secret = password if password is not None else url.password
    userinfo = f"{url.username}{f':{secret}' if secret else ''}@"
    real = f"{url.host}:{url.port or 5432}"
    return f"postgresql://{userinfo}{DEAD},{real}/{url.database}{f'?{query}' if query else ''}"


def test_a_dead_first_host_fails_over_to_the_second(
    postgres_empty_database: str, tmp_path: Path
) -> None:
    url = multi_host(postgres_empty_database, "target_session_attrs=read-write")
    settings = Settings(database_url=url, broker_url="none://", home=tmp_path)
    with Client(settings=settings) as client:
        job = client.jobs().submit("multi-host", Double(21))
        client.runner(tasks=[Double]).run_all()
        assert client.jobs().find(job).state is JobState.COMPLETED


def test_the_other_query_parameters_reach_libpq(postgres_empty_database: str) -> None:
    """The server is a primary: ``primary`` connects, and no host satisfies ``standby``, so
    the parameter was passed on (a dropped one would have connected to the primary)."""
    store = SqlStore(multi_host(postgres_empty_database, "target_session_attrs=primary"))
    try:
        assert store.run(lambda tx: [c.slug for c in tx.clusters.list_clusters()]) == ["default"]
    finally:
        store.close()
    with pytest.raises(StoreUnavailableError):
        SqlStore(
            multi_host(postgres_empty_database, "target_session_attrs=standby"),
            retry_timeout=0.5,
            connect_timeout=2.0,
        )


def test_doctor_accepts_it_and_masks_its_password(
    postgres_empty_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    monkeypatch.delenv("CONVEYOR_BROKER_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "500")
    # The server trusts local connections, so any password works; it must never be shown.
    url = multi_host(postgres_empty_database, "application_name=mh", password="s3cr3tPlanted")
    result = CliRunner().invoke(cli, ["--database-url", url, "doctor"])
    assert result.exit_code == 0, result.output
    assert f"{DEAD}," in result.output and ":***@" in result.output
    assert "s3cr3tPlanted" not in result.output
