"""Time the store was unreachable does not count against a lease.

A holder cannot extend its lease while the database is down; a sweep right after the database
came back used to requeue every task whose lease ran out meanwhile, and each holder's result
was then discarded (issue 12: 3 tasks re-executed after a 9 s outage with a 5 s lease). The
rule lives where every sweeper goes through (``Orchestrator.expire_leases``): after an outage
of D seconds, a sweep takes only leases overdue by more than D, for 2·D.

The database here is an in-memory store behind per-process "connections" that behave as
``SqlStore`` does: a call made while the database is down retries until it is back (or fails
after its retry budget), and a pooled connection that died in an outage fails its first
attempt. Both clocks (the store's and the processes' monotonic one) are fake and move together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from conveyor import ExecutionContext, Task
from conveyor.caches import NoCache
from conveyor.core.errors import StoreUnavailableError
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask, RunnerInfo, TaskState
from conveyor.core.monitor import Monitor, MonitorSettings
from conveyor.core.reads import ReadService
from conveyor.core.registry import Runner
from conveyor.core.runner import TaskRunner
from conveyor.core.service import Orchestrator
from conveyor.memory.broker import InMemoryBroker
from conveyor.memory.store import InMemoryStore


def reads_of(service: Orchestrator) -> ReadService:
    """The read service over ``service``'s store (reads are not the orchestrator's)."""
    return ReadService(service.store)


T = TypeVar("T")
LEASE = 5.0
LEAF = TaskIdentifier("Leaf", "v1.0")


class Clocks:
    def __init__(self) -> None:
        self.t = 0.0
        self.base = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.base + dt.timedelta(seconds=self.t)

    def monotonic(self) -> float:
        return self.t

    def at(self, t: float) -> None:
        assert t >= self.t, "time only moves forward"
        self.t = t


class ConnectionLost(Exception):
    pass


class DeadTx:
    """A transaction on a connection that died: its first statement fails."""

    def __getattr__(self, name: str) -> Any:
        raise ConnectionLost(name)


class Database:
    """One store with a schedule of outages."""

    def __init__(self, clocks: Clocks) -> None:
        self.clocks = clocks
        self.store = InMemoryStore(clocks.now)
        self.outages: list[tuple[float, float]] = []

    def down(self, start: float, end: float) -> None:
        self.outages.append((start, end))

    def back_at(self, t: float) -> float | None:
        return next((end for start, end in self.outages if start <= t < end), None)

    def generation(self, t: float) -> int:
        """Connections opened before an outage began are dead after it."""
        return sum(1 for start, _ in self.outages if start <= t)


class Connection:
    """One process's view of the database, retrying as ``SqlStore.run`` does."""

    def __init__(self, db: Database, retry_timeout: float = 30.0) -> None:
        self.db = db
        self.retry_timeout = retry_timeout
        self.generation = 0

    def run(self, fn: Callable[[Any], T]) -> T:
        clocks, db = self.db.clocks, self.db
        back = db.back_at(clocks.t)
        if back is not None:
            if back - clocks.t > self.retry_timeout:
                clocks.at(clocks.t + self.retry_timeout)
                raise StoreUnavailableError("the database is unavailable")
            clocks.at(back)  # connection attempts refused until it came back
            self.generation = db.generation(clocks.t)
        elif self.generation < db.generation(clocks.t):
            self.generation = db.generation(clocks.t)
            with contextlib.suppress(ConnectionLost):  # the pooled connection died: retried
                fn(DeadTx())
        return db.store.run(fn)

    def close(self) -> None: ...


class Leaf(Task):
    def execute(self, context: ExecutionContext) -> None: ...


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def db(clocks: Clocks) -> Database:
    return Database(clocks)


def process(db: Database, **kw: Any) -> Orchestrator:
    """An orchestrator with its own connection, as in a separate process."""
    return Orchestrator(Connection(db, **kw), InMemoryBroker(), clock=db.clocks.monotonic)  # type: ignore[arg-type]


def running(holder: Orchestrator, count: int, runner_id: str = "holder") -> list[ClaimedTask]:
    specs = [NewTask(TaskId(uuid7()), "default", LEAF, b"", "Leaf") for _ in range(count)]
    holder.submit_job("live", specs)
    claims = [holder.claim(spec.id, "default", runner_id, LEASE) for spec in specs]
    assert all(isinstance(c, ClaimedTask) for c in claims)
    return claims  # type: ignore[return-value]


def extend_all(holder: Orchestrator, claims: list[ClaimedTask]) -> None:
    assert all(holder.extend_lease(c, LEASE) for c in claims), "a live holder lost its lease"


def finish_all(holder: Orchestrator, claims: list[ClaimedTask]) -> None:
    assert all(holder.complete(c, [], None, {}) for c in claims), "a result was discarded"
    for claimed in claims:
        task = reads_of(holder).get_task(claimed.id)
        assert task is not None and task.state is TaskState.COMPUTED
        assert (task.attempt, task.crash_count) == (1, 0)


def test_a_monitor_that_waited_through_the_outage_leaves_live_leases_alone(
    db: Database, clocks: Clocks
) -> None:
    """The issue's run: the monitor's sweep waits for the database, which returns after the
    leases ran out; the sweep then gets through before the holders' extensions."""
    holder, monitor = process(db), Monitor(process(db))
    claims = running(holder, 3)
    clocks.at(0.5)
    assert monitor.run_once().requeued == 0
    db.down(1.0, 10.0)  # 9 s, longer than the 5 s leases
    clocks.at(2.0)
    assert monitor.run_once().requeued == 0  # waited until 10.0, then swept
    assert clocks.t == 10.0
    clocks.at(10.5)  # the holders' retried extensions get through
    extend_all(holder, claims)
    clocks.at(12.0)
    assert monitor.run_once().requeued == 0
    finish_all(holder, claims)


def test_a_monitor_that_slept_through_the_outage_sees_it_in_its_dead_connection(
    db: Database, clocks: Clocks
) -> None:
    """A sweeper that made no call while the database was down: its pooled connection died,
    so its first call after the outage is retried, and the outage is taken to span from its
    last successful call."""
    holder, monitor = process(db), Monitor(process(db))
    claims = running(holder, 3)
    clocks.at(0.5)
    assert monitor.run_once().requeued == 0
    db.down(1.0, 10.0)
    clocks.at(10.1)
    assert monitor.run_once().requeued == 0
    clocks.at(10.5)
    extend_all(holder, claims)
    finish_all(holder, claims)


def test_an_outage_longer_than_the_stores_retries_counts_from_the_last_success(
    db: Database, clocks: Clocks
) -> None:
    holder, monitor = process(db), Monitor(process(db))
    claims = running(holder, 2)
    clocks.at(0.5)
    monitor.run_once()
    db.down(1.0, 70.0)
    clocks.at(2.0)
    with pytest.raises(StoreUnavailableError):
        monitor.run_once()  # gave up after 30 s (run_forever logs it and tries again)
    clocks.at(69.0)
    assert monitor.run_once().requeued == 0  # waited until 70
    clocks.at(71.0)
    extend_all(holder, claims)
    finish_all(holder, claims)


def test_runners_sweeps_follow_the_same_rule(db: Database, clocks: Clocks) -> None:
    """A runner's own sweep (``_housekeeping``) after its extension waited for the database
    does not take another runner's lease: the rule is in the orchestrator every sweeper uses."""
    other, mine = process(db), process(db)
    claims = running(other, 2, "other-runner")
    (own,) = running(mine, 1, "this-runner")
    runner = TaskRunner(mine, "default", Runner([Leaf]), NoCache())  # type: ignore[arg-type]
    db.down(1.0, 10.0)
    clocks.at(3.0)
    extend_all(mine, [own])  # waited until 10
    runner._housekeeping(force_sweep=True)
    assert all(reads_of(mine).get_task(c.id).state is TaskState.RUNNING for c in claims)  # type: ignore[union-attr]
    clocks.at(10.5)
    extend_all(other, claims)
    finish_all(other, claims)


def test_a_crashed_holder_is_still_recovered_once_overdue_by_the_outage(
    db: Database, clocks: Clocks
) -> None:
    holder, monitor = process(db), Monitor(process(db))
    (alive,) = running(holder, 1, "alive")
    (crashed,) = running(holder, 1, "crashed")  # never extends again
    clocks.at(0.5)
    monitor.run_once()
    db.down(1.0, 10.0)
    clocks.at(2.0)
    assert monitor.run_once().requeued == 0
    clocks.at(10.5)
    extend_all(holder, [alive])
    clocks.at(14.0)  # the crashed lease (expired at 5.0) is overdue by 9 s: not 9.5 yet
    assert monitor.run_once().requeued == 0
    clocks.at(15.0)
    assert monitor.run_once().requeued == 1
    task = reads_of(holder).get_task(crashed.id)
    assert task is not None and task.state is TaskState.QUEUED and task.crash_count == 1
    finish_all(holder, [alive])


def test_without_an_outage_leases_expire_on_time(db: Database, clocks: Clocks) -> None:
    holder, monitor = process(db), Monitor(process(db))
    running(holder, 1)
    clocks.at(4.9)
    assert monitor.run_once().requeued == 0
    clocks.at(5.0)
    assert monitor.run_once().requeued == 1


def test_the_grace_ends_two_outages_after_the_store_came_back(db: Database, clocks: Clocks) -> None:
    service = process(db)

    def call() -> None:  # any store call of the orchestrator goes through its availability
        service.availability.run(service.store, lambda tx: tx.now())

    call()
    db.down(1.0, 4.0)
    clocks.at(2.0)
    call()  # waited until 4.0: outage from 0.0 (the last success) to 4.0
    assert service.availability.grace() == 4.0
    clocks.at(11.9)
    assert service.availability.grace() == 4.0
    clocks.at(12.0)
    assert service.availability.grace() == 0.0


def registered(service: Orchestrator, clocks: Clocks, runner_id: str) -> None:
    service.register_runner(
        RunnerInfo(runner_id, "default", "host", 1, (LEAF,), clocks.now(), clocks.now())
    )


def states_of(service: Orchestrator) -> dict[str, str]:
    return {r.id: r.state for r in reads_of(service).list_runners(include_gone=True)}


def test_runners_silent_only_because_of_the_outage_are_not_marked_gone(
    db: Database, clocks: Clocks
) -> None:
    # Given: a live runner and a crashed one, and a monitor marking runners gone after 10 s
    live, dead = process(db), process(db)
    monitor = Monitor(process(db), MonitorSettings(runner_silence=10.0))
    registered(live, clocks, "live")
    registered(dead, clocks, "dead")
    clocks.at(0.5)
    assert monitor.run_once().runners_gone == 0
    # When: the database is down for 19 s (longer than the silence) and the monitor's sweep
    # waits through it
    db.down(1.0, 20.0)
    clocks.at(2.0)
    # Then: nobody is marked gone right after it: no heartbeat could land meanwhile
    assert monitor.run_once().runners_gone == 0
    assert clocks.t == 20.0
    clocks.at(20.5)
    live.runner_heartbeat("live", None, 0, 0)
    # and the runner that really stopped is marked gone once silent for the silence plus the
    # outage (19.5 s, from the monitor's last success at 0.5), the live one is not
    clocks.at(29.0)  # dead: silent 28.5 s < 10 + 19.5
    assert monitor.run_once().runners_gone == 0
    clocks.at(45.0)
    live.runner_heartbeat("live", None, 0, 0)
    assert monitor.run_once().runners_gone == 1
    assert states_of(monitor.service) == {"live": "online", "dead": "gone"}
