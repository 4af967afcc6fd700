"""Real `conveyor worker` / `monitor` processes on a real stack, with markers to count by.

``stack`` is parametrised: RabbitMQ + PostgreSQL (a fresh database and a fresh AMQP namespace
per test) and the embedded default (a SQLite file, runners claiming from it, no broker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conveyor import Client
from conveyor.config import Settings

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Stack:
    """One test's deployment: URLs, a marker folder and the processes it started."""

    name: str
    database_url: str
    broker_url: str
    namespace: str
    tmp: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _client: Client | None = None

    @property
    def markers(self) -> Path:
        path = self.tmp / "markers"
        path.mkdir(exist_ok=True)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update(
            CONVEYOR_DATABASE_URL=self.database_url,
            CONVEYOR_BROKER_URL=self.broker_url,
            CONVEYOR_AMQP_NAMESPACE=self.namespace,
            CONVEYOR_HOME=str(self.tmp / "home"),
            CONVEYOR_SWEEP_INTERVAL="0.5",
            CONVEYOR_HEARTBEAT_INTERVAL="1",
            E2E_MARKERS=str(self.markers),
            PYTHONPATH=str(REPO),
            PYTHONUNBUFFERED="1",
        )
        env.update(extra)
        return env

    def spawn(self, *args: str, log: str, **env: str) -> subprocess.Popen[bytes]:
        handle = open(self.tmp / f"{log}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor", "-v", *args],
            cwd=REPO,
            env=self.env(**env),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def worker(
        self,
        *tasks: str,
        cluster: str = "default",
        lease: float = 3.0,
        grace: float = 20.0,
        concurrency: int = 1,
        log: str | None = None,
        runner: str = "",
    ) -> subprocess.Popen[bytes]:
        name = log or f"worker-{len(self.procs)}"
        args = [
            "worker",
            "--cluster",
            cluster,
            "--lease",
            str(lease),
            "--grace-period",
            str(grace),
            "--concurrency",
            str(concurrency),
            *tasks,
        ]
        return self.spawn(*args, log=name, E2E_RUNNER=runner or name)

    def monitor(self) -> subprocess.Popen[bytes]:
        return self.spawn("monitor", "--interval", "0.5", log="monitor")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(
                settings=Settings(
                    database_url=self.database_url,
                    broker_url=self.broker_url,
                    amqp_namespace=self.namespace,
                    home=self.tmp / "home",
                )
            )
        return self._client

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*.log"))
        )

    def markers_of(self, kind: str) -> list[tuple[str, dict[str, str]]]:
        found = []
        for path in self.markers.glob(f"{kind}--*"):
            key = path.name.split("--")[1]
            fields = dict(part.split("=", 1) for part in path.read_text().split() if "=" in part)
            found.append((key, fields))
        return found

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._client is not None:
            self._client.close()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{stack.logs()}")


@pytest.fixture(params=["rabbitmq+postgres", "embedded"])
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    if request.param == "embedded":
        built = Stack(
            "embedded", f"sqlite:///{tmp_path / 'conveyor.db'}", "none://", "e2e", tmp_path
        )
    else:
        database = request.getfixturevalue("postgres_empty_database")
        amqp = request.getfixturevalue("amqp_url")
        built = Stack(request.param, database, amqp, f"e2e{uuid.uuid4().hex[:10]}", tmp_path)
    try:
        yield built
    finally:
        built.stop_all()


@pytest.fixture
def pg_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    """RabbitMQ + PostgreSQL only (for faults of those services)."""
    database = request.getfixturevalue("postgres_empty_database")
    amqp = request.getfixturevalue("amqp_url")
    built = Stack("rabbitmq+postgres", database, amqp, f"e2e{uuid.uuid4().hex[:10]}", tmp_path)
    try:
        yield built
    finally:
        built.stop_all()
