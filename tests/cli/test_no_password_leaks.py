"""A password planted in every URL form never reaches an output: banner, doctor, errors, logs.

No services: the databases and brokers here are dead ports (their error messages are what
leaks), and the worker banner test replaces only the network (the RabbitMQ probe, the store)
and the run loop. ``integration/test_no_password_leaks.py`` runs the banner for real.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conveyor.broker_amqp import AmqpBroker
from conveyor.cli.main import cli
from conveyor.core.errors import BrokerUnavailableError, StoreUnavailableError
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import DispatchMessage
from conveyor.core.runner import TaskRunner
from conveyor.memory.store import InMemoryStore
from conveyor.store_sql import SqlStore

PLANTED = "s3cr3tPlanted"

#: Every form of database URL that can carry a password (all at dead ports).
DATABASE_URLS = [
    f"postgresql://conveyor:{PLANTED}@127.0.0.1:1/conveyor",
    f"postgres://conveyor:{PLANTED}@127.0.0.1:1/conveyor",
    f"postgresql+psycopg://conveyor:{PLANTED}@127.0.0.1:1/conveyor",
    f"postgresql://conveyor@127.0.0.1:1/conveyor?sslmode=disable&password={PLANTED}",
    f"postgresql://conveyor:{PLANTED}@127.0.0.1:1/conveyor?password={PLANTED}",
    f"postgresql://conveyor@127.0.0.1:1/conveyor?sslpassword={PLANTED}",
    f"postgresql://conveyor:{PLANTED}@127.0.0.1:1,127.0.0.1:2/conveyor?target_session_attrs=any",
    f"postgresql://conveyor@/conveyor?host=127.0.0.1:1&host=127.0.0.1:2&password={PLANTED}",
]

#: Every form of broker URL that can carry a password (all at dead ports).
BROKER_URLS = [
    f"amqp://guest:{PLANTED}@127.0.0.1:1//",
    f"amqp://guest:guest@127.0.0.1:1//;amqp://guest:{PLANTED}@127.0.0.1:2//",
    f"amqp://a:{PLANTED}@127.0.0.1:1/v;amqp://b:{PLANTED}@127.0.0.1:2/v;amqp://c:{PLANTED}@127.0.0.1:3/v",
]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path))
    monkeypatch.setenv("CONVEYOR_STARTUP_TIMEOUT", "0.2")
    monkeypatch.delenv("CONVEYOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONVEYOR_BROKER_URL", raising=False)
    yield


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_clean(text: str) -> None:
    assert PLANTED not in text
    assert "s3cr3t" not in text and "Planted" not in text


@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
@pytest.mark.parametrize(
    ("database_url", "broker_url"),
    [(db, BROKER_URLS[i % len(BROKER_URLS)]) for i, db in enumerate(DATABASE_URLS)],
)
def test_doctor_masks_every_url_form(
    database_url: str, broker_url: str, json_flag: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = run(*json_flag, "--database-url", database_url, "--broker-url", broker_url, "doctor")
    assert result.exit_code == 1, result.output
    assert "database" in result.output and "broker" in result.output
    assert "***" in result.output  # the URLs are shown, masked
    assert_clean(result.output)
    assert_clean(caplog.text)


@pytest.mark.parametrize("database_url", DATABASE_URLS)
def test_commands_on_an_unreachable_database_mask_it(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for command in (["jobs", "list"], ["worker", "tests.cli.flows:Say"]):
        result = run("--database-url", database_url, *command)
        assert result.exit_code == 1, result.output
        assert "***" in result.output
        assert_clean(result.output)
    # `db upgrade` says it in one line too (it used to print the driver's traceback).
    upgrade = run("--database-url", database_url, "db", "upgrade")
    assert upgrade.exit_code == 1 and "Traceback" not in upgrade.output
    assert "is unavailable" in upgrade.output
    assert_clean(upgrade.output)
    assert_clean(str(upgrade.exception))
    assert_clean(caplog.text)


@pytest.mark.parametrize("broker_url", BROKER_URLS)
def test_a_worker_on_an_unreachable_broker_masks_every_entry(
    broker_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = run("--broker-url", broker_url, "worker", "tests.cli.flows:Say")
    assert result.exit_code == 1 and "cannot connect to RabbitMQ" in result.output
    assert "***" in result.output
    assert_clean(result.output)
    assert_clean(caplog.text)


@pytest.mark.parametrize("database_url", DATABASE_URLS)
def test_the_store_error_and_repr_are_masked(database_url: str) -> None:
    with pytest.raises((StoreUnavailableError, ValueError)) as info:
        SqlStore(database_url, retry_timeout=0.2, connect_timeout=1.0)
    assert "***" in str(info.value)
    assert_clean(str(info.value))
    assert_clean(repr(info.value))


@pytest.mark.parametrize("broker_url", BROKER_URLS)
def test_the_broker_error_and_repr_are_masked(broker_url: str) -> None:
    broker = AmqpBroker(broker_url, connect_timeout=1.0)
    try:
        assert_clean(repr(broker))
        with pytest.raises(BrokerUnavailableError) as info:
            broker.publish([_message()])
        assert "***" in str(info.value)
        assert_clean(str(info.value))
    finally:
        broker.close()


@pytest.mark.parametrize(
    ("database_url", "broker_url"),
    [(db, BROKER_URLS[i % len(BROKER_URLS)]) for i, db in enumerate(DATABASE_URLS)],
)
def test_the_worker_banner_masks_every_url_form(
    database_url: str, broker_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the network is replaced: the banner is built from the configured URLs as is."""
    import conveyor.bootstrap
    import conveyor.broker_amqp

    monkeypatch.setattr(
        conveyor.bootstrap, "build_store", lambda url, timeout=None: InMemoryStore()
    )
    monkeypatch.setattr(conveyor.broker_amqp, "server_version", lambda url, timeout=5.0: "3.10")
    monkeypatch.setattr(TaskRunner, "run_forever", lambda self: None)
    monkeypatch.setenv("COLUMNS", "500")  # one banner line per URL (no wrapping)
    result = run(
        "--database-url", database_url, "--broker-url", broker_url, "worker", "tests.cli.flows:Say"
    )
    assert result.exit_code == 0, result.output
    assert "database:" in result.output and "broker:" in result.output
    banner_urls = [line for line in result.output.splitlines() if "://" in line]
    assert len(banner_urls) == 2 and all("***" in line for line in banner_urls)
    assert_clean(result.output)


def _message() -> DispatchMessage:
    return DispatchMessage(
        TaskId(uuid7()), JobId(uuid7()), "default", TaskIdentifier("Say", "v1.0")
    )
