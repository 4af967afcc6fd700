"""A refused claim on the SQL store says why, read in the claim's own transaction.

PostgreSQL's claim is one statement that returns no row when it takes nothing; the reason is
then read from the task row (and the job row when the task looks dispatchable) in the same
transaction. A runner drops the message with one log line naming the task and that reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from conveyor import ExecutionContext, Task
from conveyor.caches import NoCache
from conveyor.core import usecases
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    ClaimedTask,
    Cluster,
    NewTask,
    RefusalReason,
    TaskError,
    TaskState,
)
from conveyor.core.registry import Runner
from conveyor.core.runner import TaskRunner
from conveyor.core.service import Orchestrator
from conveyor.core.task import task_identifier
from conveyor.core.usecases import Policy
from conveyor.memory.broker import InMemoryBroker
from conveyor.store_sql import SqlStore

POLICY = Policy(retry_backoff=600)


class Noop(Task):
    def execute(self, context: ExecutionContext) -> None: ...


IDENT = task_identifier(Noop)


@dataclass
class FakeDelivery:
    task_id: TaskId | None
    identifier: TaskIdentifier | None
    job_id: object = None
    acked: bool = False

    def ack(self) -> None:
        self.acked = True

    def requeue(self) -> None:
        raise AssertionError("a refused claim acks its message")


def leaf(cluster: str = "default", **kw: object) -> NewTask:
    return NewTask(TaskId(uuid7()), cluster, IDENT, b"", "Noop", **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest) -> SqlStore:
    return request.getfixturevalue("pg_store" if request.param == "postgresql" else "sqlite_store")  # type: ignore[no-any-return]


def test_every_refusal_reason_is_read_in_the_claims_transaction(store: SqlStore) -> None:
    done, running, waiting, backing_off = leaf(), leaf(), leaf(), leaf(max_retries=1)
    dependent = leaf(depends_on=(waiting.id,))
    store.run(
        lambda tx: usecases.submit_job(
            tx, "reasons", [done, running, waiting, backing_off, dependent], POLICY
        )
    )
    store.run(lambda tx: tx.clusters.insert_cluster(Cluster("other", "Other")))
    foreign = leaf(cluster="other")
    store.run(lambda tx: usecases.submit_job(tx, "elsewhere", [foreign], POLICY))
    canceled = leaf()
    held, _ = store.run(lambda tx: usecases.submit_job(tx, "held", [canceled], POLICY))
    store.run(lambda tx: usecases.cancel_job(tx, held.id))

    def claim(task_id: TaskId, runner: str = "r") -> object:
        return store.run(lambda tx: usecases.claim(tx, task_id, "default", runner, 30))

    first = claim(done.id)
    assert isinstance(first, ClaimedTask)
    store.run(lambda tx: usecases.complete(tx, done.id, first.attempt, [], None, {}, POLICY))
    assert isinstance(claim(running.id, "holder"), ClaimedTask)
    failing = claim(backing_off.id)
    assert isinstance(failing, ClaimedTask)
    store.run(
        lambda tx: usecases.fail_running(
            tx,
            backing_off.id,
            failing.attempt,
            TaskError("E", "boom"),
            user_error=True,
            outcome="failed",
            policy=POLICY,
        )
    )
    found = {
        name: claim(task_id)
        for name, task_id in [
            ("unknown", TaskId(uuid7())),
            ("done", done.id),
            ("running", running.id),
            ("waiting", dependent.id),
            ("backing_off", backing_off.id),
            ("canceled", canceled.id),
            ("foreign", foreign.id),
        ]
    }
    reasons = {name: getattr(r, "reason", None) for name, r in found.items()}
    assert reasons == {
        "unknown": RefusalReason.UNKNOWN_TASK,
        "done": RefusalReason.DONE,
        "running": RefusalReason.RUNNING,
        "waiting": RefusalReason.WAITING,
        "backing_off": RefusalReason.BACKING_OFF,
        "canceled": RefusalReason.JOB_INACTIVE,
        "foreign": RefusalReason.OTHER_CLUSTER,
    }
    assert str(found["done"]) == "already COMPUTED (attempt 1): a duplicate message"
    assert str(found["running"]) == "RUNNING on runner holder (attempt 1)"
    assert str(found["canceled"]) == "its job is CANCELED: its tasks are not dispatched"
    assert str(found["foreign"]) == (
        "the task belongs to cluster 'other', not to the runner's cluster 'default'"
    )
    task = store.run(lambda tx: tx.tasks.get_task(foreign.id))
    assert task.state is TaskState.QUEUED and task.attempt == 0


def test_a_runner_logs_each_dropped_message_at_info(
    pg_store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    service = Orchestrator(pg_store, InMemoryBroker())
    runner = TaskRunner(service, "default", Runner([Noop]), NoCache())
    task = leaf()
    service.submit_job("dup", [task])
    runner.run_all()
    unknown = TaskId(uuid7())
    with caplog.at_level(logging.INFO, logger="conveyor.core.runner"):
        for task_id in (task.id, unknown):
            delivery = FakeDelivery(task_id, IDENT)
            runner._handle(delivery)
            assert delivery.acked
    lines = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if "drops the message" in r.getMessage()
    ]
    assert [level for level, _ in lines] == ["INFO", "WARNING"]
    assert str(task.id) in lines[0][1] and "already COMPUTED (attempt 1)" in lines[0][1]
    assert str(unknown) in lines[1][1] and "no such task" in lines[1][1]
