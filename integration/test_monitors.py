"""Monitors and sweeps on PostgreSQL: every expired lease is requeued exactly once, and a
database outage does not expire the leases of holders that are alive."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import make_url

from conveyor.caches import NoCache
from conveyor.core.context import ExecutionContext
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask, TaskState
from conveyor.core.monitor import Monitor, MonitorSettings
from conveyor.core.reads import ReadService
from conveyor.core.registry import Runner
from conveyor.core.runner import RunnerSettings, TaskRunner
from conveyor.core.service import Orchestrator
from conveyor.core.task import Task, task_identifier
from conveyor.memory.broker import InMemoryBroker
from conveyor.store_sql import SqlStore


def reads_of(service: Orchestrator) -> ReadService:
    """The read service over ``service``'s store (reads are not the orchestrator's)."""
    return ReadService(service.store)


def test_concurrent_monitors_requeue_each_expired_task_once(postgres_empty_database: str) -> None:
    broker = InMemoryBroker()
    service = Orchestrator(SqlStore(postgres_empty_database), broker)
    ident = TaskIdentifier("Leaf", "v1.0")
    ids = [TaskId(uuid7()) for _ in range(200)]
    service.submit_job("crashed", [NewTask(i, "default", ident, b"", "Leaf") for i in ids])
    for task_id in ids:
        claimed = service.claim(task_id, "default", "dead-runner", 0.0)  # expired at once
        assert isinstance(claimed, ClaimedTask)
    published_before = broker.published
    barrier = threading.Barrier(4)

    def sweep() -> None:
        barrier.wait()
        monitor = Monitor(service)
        for _ in range(3):
            monitor.run_once()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tasks = [reads_of(service).get_task(i) for i in ids]
    assert all(t is not None and t.state is TaskState.QUEUED for t in tasks)
    assert {t.crash_count for t in tasks if t is not None} == {1}
    assert broker.published - published_before == len(ids), "one message per requeue"
    service.close()


class Relay:
    """A TCP relay to PostgreSQL that can be cut: what its clients see of a database restart
    (open connections drop, new ones are closed at once) without touching the shared server."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.down = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self.down.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.down.set()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def restore(self) -> None:
        self.down.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


RELEASE = threading.Event()
EXECUTIONS: list[str] = []


class Hold(Task):
    """Runs until the test releases it."""

    label: str

    def execute(self, context: ExecutionContext) -> None:
        EXECUTIONS.append(self.label)
        RELEASE.wait(120)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_database_outage_longer_than_the_lease_expires_no_live_lease(
    postgres_empty_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: PostgreSQL unreachable for longer than the lease. Three runners hold a task
    each; a monitor sweeps throughout (its sweep waits through the outage), and a second
    monitor made no call during it and sweeps the moment the database is back. No lease is
    expired, no task runs twice, no result is discarded."""
    caplog.set_level(logging.INFO, logger="conveyor")
    RELEASE.clear()
    EXECUTIONS.clear()
    url = make_url(postgres_empty_database)
    relay = Relay(url.host or "127.0.0.1", url.port or 5432)
    relayed = url.set(port=relay.port).render_as_string(hide_password=False)
    broker = InMemoryBroker()
    direct = Orchestrator(SqlStore(postgres_empty_database), broker)
    services: list[Orchestrator] = [direct]

    def through_relay() -> Orchestrator:
        services.append(Orchestrator(SqlStore(relayed), broker))
        return services[-1]

    lease = 8.0
    settings = RunnerSettings(
        lease=lease, sweep_interval=0.5, heartbeat_interval=1.0, receive_timeout=0.2
    )
    runners = [
        TaskRunner(through_relay(), "default", Runner([Hold]), NoCache(), settings)  # type: ignore[arg-type]
        for _ in range(3)
    ]
    monitor = Monitor(through_relay(), MonitorSettings(interval=0.2))
    sleeper = Monitor(through_relay())
    threads = [threading.Thread(target=r.run_forever, daemon=True) for r in runners]
    threads.append(threading.Thread(target=monitor.run_forever, daemon=True))
    ident = task_identifier(Hold)
    specs = [
        NewTask(TaskId(uuid7()), "default", ident, f'"t{i}"'.encode(), "Hold") for i in range(3)
    ]
    try:
        assert sleeper.run_once().requeued == 0  # its pool holds a connection from now on
        for thread in threads:
            thread.start()
        direct.submit_job("held", specs)

        def states() -> list[TaskState]:
            return [reads_of(direct).get_task(s.id).state for s in specs]  # type: ignore[union-attr]

        wait_until(lambda: states() == [TaskState.RUNNING] * 3, 30, "three running tasks")

        relay.cut()
        time.sleep(lease + 2)  # every lease runs out while nobody can reach the database
        relay.restore()
        assert sleeper.run_once().requeued == 0
        back = reads_of(direct).store_now()

        def extended() -> bool:
            tasks = [reads_of(direct).get_task(s.id) for s in specs]
            return all(
                t is not None and t.lease_expires is not None and t.lease_expires > back
                for t in tasks
            )

        wait_until(extended, 30, "the holders to extend their leases")
        RELEASE.set()
        wait_until(lambda: states() == [TaskState.COMPUTED] * 3, 30, "three computed tasks")
        for spec in specs:
            task = reads_of(direct).get_task(spec.id)
            assert task is not None and (task.attempt, task.crash_count) == (1, 0)
            assert [a.outcome for a in reads_of(direct).task_attempts(spec.id)] == ["computed"]
    finally:
        RELEASE.set()
        for runner in runners:
            runner.stop()
        monitor.stop()
        for thread in threads:
            thread.join(30)
        relay.close()
        for service in services:
            service.close()
    messages = [r.getMessage() for r in caplog.records]
    requeues = [m for m in messages if re.search(r"[1-9]\d* expired tasks requeued", m)]
    assert requeues == []
    assert not [m for m in messages if "discarded" in m or "lost the lease" in m], messages
    assert sorted(EXECUTIONS) == ["t0", "t1", "t2"]
