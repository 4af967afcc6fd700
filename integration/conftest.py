"""Fixtures shared by the integration suites: real services, one fresh database per module.

``CONVEYOR_TEST_DATABASE_URL`` names the PostgreSQL server and maintenance database to create
test databases through (default ``postgresql://postgres@127.0.0.1:5432/postgres``). When it
cannot be reached the PostgreSQL tests are skipped locally and fail on CI (``CI`` set).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

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
