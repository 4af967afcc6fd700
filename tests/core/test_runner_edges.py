"""Runner paths off the happy road: lost leases, poison deliveries, store outages."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import pytest

from conveyor import Client, ExecutionContext, JobState, Task, TaskState
from conveyor.core.errors import StoreUnavailableError
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.model import TaskState as State

RUNS: list[int] = []


class Stolen(Task):
    def execute(self, context: ExecutionContext) -> None:
        RUNS.append(context.current_task.attempt)
        if context.current_task.attempt == 1:
            time.sleep(0.6)


@dataclass
class FakeDelivery:
    task_id: TaskId | None
    identifier: TaskIdentifier | None
    acked: bool = False
    requeued: bool = False

    def ack(self) -> None:
        self.acked = True

    def requeue(self) -> None:
        self.requeued = True


def test_a_runner_that_loses_its_lease_discards_its_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    RUNS.clear()
    client = Client("memory://", "memory://")
    job = client.jobs().submit("stolen", Stolen())
    (task,) = client.jobs().tasks(job)

    def steal() -> None:  # what a sweep does after the lease expired
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            current = client.reads.get_task(task.id)
            if current is not None and current.state is State.RUNNING:
                break
            time.sleep(0.01)

        def requeue(tx: object) -> None:
            row = tx.tasks.lock_task(task.id)  # type: ignore[attr-defined]
            row.state = State.QUEUED
            tx.tasks.save_task(row)  # type: ignore[attr-defined]

        client.service.store.run(requeue)

    thief = threading.Thread(target=steal)
    thief.start()
    runner = client.runner(tasks=[Stolen], lease=0.3)
    with caplog.at_level(logging.WARNING):
        runner.run_all()
    thief.join()
    assert "lost the lease" in caplog.text
    assert RUNS == [1, 2]
    (task,) = client.jobs().tasks(job)
    assert task.state is TaskState.COMPUTED and task.attempt == 2
    assert client.jobs().find(job).state is JobState.COMPLETED


def test_a_delivery_for_an_unregistered_identifier_is_dropped_with_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client("memory://", "memory://")
    job = client.jobs().submit("poison", Stolen())
    (task,) = client.jobs().tasks(job)
    runner = client.runner(tasks=[Stolen])
    delivery = FakeDelivery(task.id, TaskIdentifier("Other", "v9.9"))
    with caplog.at_level(logging.WARNING):
        runner._handle(delivery)
    assert delivery.acked and "not registered on runner" in caplog.text
    assert client.reads.get_task(task.id).state is TaskState.QUEUED  # type: ignore[union-attr]


def test_a_claimed_task_this_runner_cannot_run_is_handed_back() -> None:
    client = Client("memory://", "memory://")

    class Other(Task):
        def execute(self, context: ExecutionContext) -> None: ...

    job = client.jobs().submit("handback", Other())
    (task,) = client.jobs().tasks(job)
    runner = client.runner(tasks=[Stolen])
    delivery = FakeDelivery(task.id, None)
    runner._handle(delivery)
    assert delivery.acked
    row = client.reads.get_task(task.id)
    assert row is not None and row.state is TaskState.QUEUED
    assert row.retry_count == 0 and row.system_requeues == 1


def test_a_stale_delivery_is_acked_and_dropped() -> None:
    client = Client("memory://", "memory://")
    job = client.jobs().submit("dup", Stolen())
    (task,) = client.jobs().tasks(job)
    client.jobs().cancel(job)
    runner = client.runner(tasks=[Stolen])
    delivery = FakeDelivery(task.id, task.identifier)
    runner._handle(delivery)
    assert delivery.acked


def test_run_forever_survives_a_store_outage(caplog: pytest.LogCaptureFixture) -> None:
    client = Client("memory://", "none://")
    runner = client.runner(tasks=[Stolen])
    calls = {"n": 0}
    original = client.service.claim_next

    def flaky_claim_next(*args: object, **kw: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreUnavailableError("database restarting")
        return original(*args, **kw)  # type: ignore[arg-type]

    client.service.claim_next = flaky_claim_next  # type: ignore[method-assign]
    RUNS.clear()
    job = client.jobs().submit("outage", Stolen())
    thread = threading.Thread(target=runner.run_forever)
    with caplog.at_level(logging.WARNING):
        thread.start()
        assert client.jobs().wait(job, timeout=10).state is JobState.COMPLETED
        runner.stop()
        thread.join(5)
    assert "database restarting" in caplog.text
    assert client.reads.list_runners(include_gone=True)[0].state == "stopped"


def test_run_all_raises_store_errors() -> None:
    client = Client("memory://", "none://")
    runner = client.runner(tasks=[Stolen])

    def broken(*args: object, **kw: object) -> object:
        raise StoreUnavailableError("down")

    client.service.claim_next = broken  # type: ignore[method-assign]
    client.service.expire_leases = broken  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailableError):
        runner.run_all()


def test_progress_and_display_are_reported_live() -> None:
    client = Client("memory://", "memory://")
    seen: list[object] = []
    gate = threading.Event()

    class Long(Task):
        def execute(self, context: ExecutionContext) -> None:
            context.progress("rows").add(10)
            context.progress("rows").done(4)
            context.current_task.display = "Long(40%)"
            gate.wait(5)

    job = client.jobs().submit("live", Long())
    from conveyor.core.runner import RunnerSettings

    runner = client.runner(tasks=[Long], settings=RunnerSettings(progress_interval=0.05))
    thread = threading.Thread(target=runner.run_all)
    thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        progress = client.jobs().find(job).progress
        (task,) = client.jobs().tasks(job)
        if progress and task.display == "Long(40%)":
            seen.append(progress)
            break
        time.sleep(0.02)
    gate.set()
    thread.join(5)
    assert seen and seen[0][0].done == 4  # type: ignore[index]


class Fails(Task):
    def execute(self, context: ExecutionContext) -> None:
        raise RuntimeError("boom")


def test_runner_log_lines_about_a_task_carry_its_ids_as_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``extra=`` context: the JSON log format turns these into fields for log collectors."""
    client = Client("memory://", "memory://")
    job = client.jobs().submit("fails", Fails())
    (task,) = client.jobs().tasks(job)
    runner = client.runner(tasks=[Fails])
    with caplog.at_level(logging.INFO, logger="conveyor.core.runner"):
        runner.run_all()
    (record,) = [r for r in caplog.records if "failed" in r.getMessage()]
    assert record.task_id == str(task.id)  # type: ignore[attr-defined]
    assert record.job_id == str(job.id)  # type: ignore[attr-defined]
    assert record.runner_id == runner.id  # type: ignore[attr-defined]
