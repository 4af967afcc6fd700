"""Fixtures of the web API tests: a real client on an embedded SQLite file, real runners,
and FastAPI's TestClient on the UI application."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor import Client, Job
from conveyor.config import Settings
from conveyor.web import create_app
from tests.web.flows import TASKS, Report

with warnings.catch_warnings():
    # Starlette's TestClient announces a move to httpx2; httpx works the same.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


#: Where the tests' requests go: the UI's default address.
BASE_URL = "http://127.0.0.1:5555"


def sqlite_client(folder: Path) -> Client:
    settings = Settings(home=folder / "home", sweep_interval=0.2, heartbeat_interval=0.5)
    return Client(database_url=f"sqlite:///{folder / 'conveyor.db'}", settings=settings)


def run_all(client: Client) -> None:
    client.runner(tasks=TASKS).run_all()


@dataclass
class World:
    """A database with one failed job (its Summarize step failed) and one completed job."""

    client: Client
    http: TestClient
    failed: Job
    completed: Job
    flag: Path


def make_world(folder: Path, token: str | None = None) -> Iterator[World]:
    client = sqlite_client(folder)
    flag = folder / "flag"
    done_flag = folder / "done-flag"
    done_flag.touch()
    completed = client.jobs().submit("weekly report", Report(str(done_flag), chunks=3))
    failed = client.jobs().submit("nightly report", Report(str(flag), chunks=20))
    run_all(client)
    # A loopback Host, as a browser on this machine sends it (TestClient's default
    # "testserver" is a foreign name the UI refuses).
    app = create_app(client.service, reads=client.reads, token=token)
    with TestClient(app, base_url=BASE_URL) as http:
        yield World(client, http, failed, completed, flag)
    client.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Shared by the read-only tests of a module."""
    yield from make_world(tmp_path_factory.mktemp("web"))


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[World]:
    """A world of its own, for tests that change it."""
    yield from make_world(tmp_path)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[World]:
    """A world whose UI requires the token 's3cret' for actions."""
    yield from make_world(tmp_path, token="s3cret")
