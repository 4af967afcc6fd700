"""Fixtures shared by the integration suites: real PostgreSQL and RabbitMQ.

PostgreSQL: one fresh database per module or per test. RabbitMQ: one vhost per session
(`rabbitmqctl add_vhost`, deleted at the end), ``amqp_url`` pointing into it.

``CONVEYOR_TEST_DATABASE_URL`` names the PostgreSQL server and maintenance database to create
test databases through (default ``postgresql://postgres@127.0.0.1:5432/postgres``). When it
cannot be reached the PostgreSQL tests are skipped locally and fail on CI (``CI`` set).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import kombu
import pytest
from sqlalchemy import URL, create_engine, make_url, text
from sqlalchemy.exc import OperationalError

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _server_url() -> URL:
    url = make_url(os.environ.get("CONVEYOR_TEST_DATABASE_URL", DEFAULT_DATABASE_URL))
    return url.set(drivername="postgresql+psycopg")


def unavailable(reason: str) -> None:
    """Fail on CI, skip elsewhere: CI must never pass by skipping its real-service tests."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[URL]:
    """The maintenance-database URL of a reachable PostgreSQL server."""
    url = _server_url()
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        unavailable(
            f"PostgreSQL is not reachable at {url.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}"
        )
    finally:
        engine.dispose()
    yield url


def _admin(url: URL, sql: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres_database(postgres_server: URL) -> Iterator[str]:
    """A freshly created, empty database for one test module (dropped afterwards); its URL."""
    name = f"conveyor_test_{uuid.uuid4().hex[:12]}"
    _admin(postgres_server, f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_empty_database(postgres_server: URL) -> Iterator[str]:
    """A freshly created, empty database for one test (dropped afterwards); its URL."""
    name = f"conveyor_test_{uuid.uuid4().hex[:12]}"
    _admin(postgres_server, f'CREATE DATABASE "{name}"')
    try:
        yield postgres_server.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- RabbitMQ -------------------------------------------------------------------------------
BASE_URL = os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672").rstrip("/")
USER = os.environ.get("CONVEYOR_TEST_AMQP_USER", "guest")


class RabbitCtl:
    """``rabbitmqctl`` for this test session's vhost."""

    def __init__(self, executable: str, vhost: str) -> None:
        self.executable = executable
        self.vhost = vhost

    def __call__(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [self.executable, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def eval(self, expression: str) -> str:
        return self("eval", expression).strip()

    def rows(self, *args: str) -> list[list[str]]:
        """A ``list_*`` command's rows (tab-separated, no headers)."""
        out = self(*args, "--no-table-headers", "--quiet")
        return [line.split("\t") for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def rabbitmqctl() -> Iterator[RabbitCtl]:
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        unavailable("rabbitmqctl not found (install rabbitmq-server)")
        raise AssertionError("unreachable")
    conn = kombu.Connection(f"{BASE_URL}//", connect_timeout=3)
    try:
        conn.ensure_connection(max_retries=0)
    except Exception as exc:
        unavailable(f"RabbitMQ unreachable at {conn.as_uri()}: {exc}")
    finally:
        conn.release()
    vhost = f"conveyor-test-{uuid.uuid4().hex[:10]}"
    ctl = RabbitCtl(executable, vhost)
    try:
        ctl("add_vhost", vhost)
        ctl("set_permissions", "-p", vhost, USER, ".*", ".*", ".*")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        unavailable(f"cannot create a test vhost: {exc}")
    try:
        yield ctl
    finally:
        with contextlib.suppress(Exception):
            ctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def amqp_url(rabbitmqctl: RabbitCtl) -> str:
    return f"{BASE_URL}/{quote(rabbitmqctl.vhost, safe='')}"
