"""A message whose claim takes nothing is dropped with one log line that says why.

At ``-v`` (INFO) every dropped message is visible: routine duplicates at INFO, messages that
should never have reached the runner (an unknown task) at WARNING. The reason is read only on
the refusal path (``usecases.refusal``), so a successful claim costs nothing more.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import pytest

from conveyor import Client, ExecutionContext, Task
from conveyor.core import usecases
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    ClaimedTask,
    ClaimRefusal,
    NewTask,
    RefusalReason,
    TaskError,
    TaskState,
)
from conveyor.core.runner import TaskRunner
from conveyor.core.task import task_identifier

RAN: list[str] = []


class Job(Task):
    name: str = "x"

    def execute(self, context: ExecutionContext) -> None:
        RAN.append(self.name)


IDENT = task_identifier(Job)


@dataclass
class FakeDelivery:
    task_id: TaskId | None
    identifier: TaskIdentifier | None
    job_id: object = None
    acked: bool = False
    requeued: bool = False

    def ack(self) -> None:
        self.acked = True

    def requeue(self) -> None:
        self.requeued = True


def new_task(**kw: object) -> NewTask:
    return NewTask(TaskId(uuid7()), "default", IDENT, b'"x"', "Job", **kw)  # type: ignore[arg-type]


@pytest.fixture
def client() -> Client:
    return Client("memory://", "memory://")


@pytest.fixture
def runner(client: Client) -> TaskRunner:
    return client.runner(tasks=[Job])


def drop(runner: TaskRunner, task_id: TaskId, caplog: pytest.LogCaptureFixture) -> str:
    """Hand ``task_id``'s message to the runner; the one log line it leaves (INFO and up)."""
    caplog.clear()
    delivery = FakeDelivery(task_id, IDENT)
    with caplog.at_level(logging.INFO, logger="conveyor.core.runner"):
        runner._handle(delivery)
    assert delivery.acked and not delivery.requeued
    (record,) = [r for r in caplog.records if "drops the message" in r.getMessage()]
    assert str(task_id) in record.getMessage() and record.funcName == "_handle"
    assert record.task_id == str(task_id)  # type: ignore[attr-defined]
    return f"{record.levelname}: {record.getMessage()}"


def test_an_unknown_task_is_dropped_with_a_warning(
    runner: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    line = drop(runner, TaskId(uuid7()), caplog)
    assert line.startswith("WARNING") and "no such task" in line


def test_a_duplicate_of_a_computed_task_is_dropped_at_info(
    client: Client, runner: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    task = new_task()
    client.service.submit_job("dup", [task])
    runner.run_all()
    RAN.clear()
    line = drop(runner, task.id, caplog)
    assert line.startswith("INFO") and "already COMPUTED (attempt 1)" in line
    assert RAN == []


def test_a_task_running_elsewhere_is_dropped_at_info(
    client: Client, runner: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    task = new_task()
    client.service.submit_job("taken", [task])
    assert isinstance(client.service.claim(task.id, "default", "other-runner", 30), ClaimedTask)
    line = drop(runner, task.id, caplog)
    assert line.startswith("INFO") and "RUNNING on runner other-runner (attempt 1)" in line


def test_a_task_of_a_canceled_job_is_dropped_at_info(
    client: Client, runner: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    task = new_task()
    job = client.service.submit_job("canceled", [task])
    client.service.cancel_job(job.id)
    line = drop(runner, task.id, caplog)
    assert line.startswith("INFO") and "its job is CANCELED" in line


def test_a_task_waiting_for_dependencies_is_dropped_at_info(
    client: Client, runner: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    first = new_task()
    second = new_task(depends_on=(first.id,))
    client.service.submit_job("deps", [first, second])
    line = drop(runner, second.id, caplog)
    assert line.startswith("INFO") and "waits for its dependencies" in line


def test_a_task_in_retry_back_off_is_dropped_at_info(caplog: pytest.LogCaptureFixture) -> None:
    client = Client("memory://", "memory://")
    client.service.policy = dataclasses.replace(client.service.policy, retry_backoff=600)
    task = new_task(max_retries=1)
    client.service.submit_job("backoff", [task])
    claimed = client.service.claim(task.id, "default", "r", 30)
    assert isinstance(claimed, ClaimedTask)
    client.service.fail(claimed, TaskError("E", "boom"))
    line = drop(client.runner(tasks=[Job]), task.id, caplog)
    assert line.startswith("INFO") and "back-off" in line


def test_a_task_found_dispatchable_when_read_back_changed_meanwhile(client: Client) -> None:
    """The read follows the claim; a task requeued in between is reported, not misnamed."""
    task = new_task()
    client.service.submit_job("race", [task])
    found = client.service.store.run(lambda tx: usecases.refusal(tx, task.id, "default"))
    assert found.reason is RefusalReason.CHANGED and found.state is TaskState.QUEUED
    assert not found.suspicious


def test_the_fused_claim_of_a_duplicate_is_dropped_at_info(
    client: Client, runner: TaskRunner, caplog: pytest.LogCaptureFixture
) -> None:
    """The next delivery claimed in a completion's transaction (``_complete_and_claim_next``)
    leaves the same line when its claim is refused."""
    ran_first, done = new_task(), new_task()
    client.service.submit_job("fused", [ran_first, done])  # messages: ran_first, then done
    claimed = client.service.claim(done.id, "default", "r0", 30)
    assert isinstance(claimed, ClaimedTask)
    assert client.service.complete(claimed, [], None, {})
    with caplog.at_level(logging.INFO, logger="conveyor.core.runner"):
        runner.run_all()
    lines = [r for r in caplog.records if "drops the message" in r.getMessage()]
    assert [(r.levelname, str(done.id) in r.getMessage()) for r in lines] == [("INFO", True)]
    assert "already COMPUTED" in lines[0].getMessage()
    assert lines[0].funcName == "_complete_and_claim_next"
    assert runner.fused == 0 and runner.computed == 1


def test_a_successful_claim_reads_nothing_more(client: Client) -> None:
    """The refusal's reads happen only when the claim took nothing."""
    task = new_task()
    client.service.submit_job("hot", [task])
    reads: list[str] = []

    def run(tx: object) -> ClaimedTask | ClaimRefusal:
        class CountingPart:
            def __init__(self, part: object) -> None:
                self._part = part

            def __getattr__(self, name: str) -> object:
                if name in ("get_task", "get_job"):
                    reads.append(name)
                return getattr(self._part, name)

        class Counting:
            def __getattr__(self, name: str) -> object:
                part = getattr(tx, name)
                return CountingPart(part) if name in ("tasks", "jobs") else part

        return usecases.claim(Counting(), task.id, "default", "r", 30)  # type: ignore[arg-type]

    assert isinstance(client.service.store.run(run), ClaimedTask)
    assert reads == []
    assert isinstance(client.service.store.run(run), ClaimRefusal)
    assert reads == ["get_task"]


def test_refusals_read_as_sentences() -> None:
    task_id = TaskId(uuid7())
    other = ClaimRefusal(task_id, RefusalReason.OTHER_CLUSTER, "default", cluster="gpu")
    assert other.suspicious
    assert str(other) == "the task belongs to cluster 'gpu', not to the runner's cluster 'default'"
    assert not ClaimRefusal(task_id, RefusalReason.DONE, "default").suspicious
