"""A runner only ever claims tasks of its own cluster, whatever queue a message arrives on.

Routing puts a cluster's messages on that cluster's queues, but a message is only a doorbell
anyone with broker access can ring: a misrouted or forged message naming another cluster's
task must not run it on machines that were not meant for it. The claim itself checks the
task's cluster (``StoreTx.claim_task``); the runner drops such a message with a warning that
names the task, its cluster and the runner's.
"""

from __future__ import annotations

import logging

import pytest

from conveyor import Client, ExecutionContext, Task
from conveyor.core.identifiers import TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    ClaimedTask,
    ClaimRefusal,
    DispatchMessage,
    NewTask,
    RefusalReason,
    TaskState,
)
from conveyor.core.task import task_identifier
from conveyor.memory.broker import InMemoryBroker

RAN: list[str] = []


class Work(Task):
    label: str

    def execute(self, context: ExecutionContext) -> None:
        RAN.append(self.label)


IDENT = task_identifier(Work)


def task_of(cluster: str, label: str) -> NewTask:
    return NewTask(TaskId(uuid7()), cluster, IDENT, f'"{label}"'.encode(), "Work")


@pytest.fixture
def client() -> Client:
    RAN.clear()
    client = Client("memory://", "memory://")
    client.service.create_cluster("other")
    return client


def forge(client: Client, task: NewTask, job_id: object, cluster: str) -> None:
    """Publish a message naming ``task`` onto ``cluster``'s queue, as a misrouting would."""
    broker = client.service.broker
    assert isinstance(broker, InMemoryBroker)
    broker.publish([DispatchMessage(task.id, job_id, cluster, task.identifier)])  # type: ignore[arg-type]


def drops(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "drops the message" in r.getMessage()]


def test_a_message_for_another_clusters_task_on_this_queue_is_not_run(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = task_of("other", "foreign")
    job = client.service.submit_job("elsewhere", [foreign])
    forge(client, foreign, job.id, "default")
    runner = client.runner("default", tasks=[Work])
    with caplog.at_level(logging.INFO, logger="conveyor.core.runner"):
        runner.run_all()
    assert RAN == []
    task = client.reads.get_task(foreign.id)
    assert task is not None and task.state is TaskState.QUEUED and task.attempt == 0
    assert client.reads.task_attempts(foreign.id) == []
    (record,) = drops(caplog)
    message = record.getMessage()
    assert record.levelno == logging.WARNING and record.funcName == "_handle"
    assert str(foreign.id) in message
    assert "cluster 'other'" in message and "runner's cluster 'default'" in message
    # The runner it was meant for still runs it.
    client.runner("other", tasks=[Work]).run_all()
    assert RAN == ["foreign"]
    task = client.reads.get_task(foreign.id)
    assert task is not None and task.state is TaskState.COMPUTED and task.attempt == 1


def test_the_fused_claim_of_another_clusters_task_is_refused_too(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """The next delivery, claimed in the completion's transaction, passes the same rule."""
    mine = task_of("default", "mine")
    client.service.submit_job("here", [mine])
    foreign = task_of("other", "foreign")
    job = client.service.submit_job("elsewhere", [foreign])  # a newer job: may be fused
    forge(client, foreign, job.id, "default")
    runner = client.runner("default", tasks=[Work])
    with caplog.at_level(logging.INFO, logger="conveyor.core.runner"):
        runner.run_all()
    assert RAN == ["mine"] and runner.fused == 0
    (record,) = drops(caplog)
    assert record.levelno == logging.WARNING
    assert record.funcName == "_complete_and_claim_next"
    assert "cluster 'other'" in record.getMessage()
    task = client.reads.get_task(foreign.id)
    assert task is not None and task.state is TaskState.QUEUED and task.attempt == 0


def test_a_claim_by_id_names_the_runners_cluster(client: Client) -> None:
    foreign = task_of("other", "foreign")
    client.service.submit_job("elsewhere", [foreign])
    refused = client.service.claim(foreign.id, "default", "r", 30)
    assert isinstance(refused, ClaimRefusal) and refused.reason is RefusalReason.OTHER_CLUSTER
    assert (refused.cluster, refused.runner_cluster) == ("other", "default")
    claimed = client.service.claim(foreign.id, "other", "r", 30)
    assert isinstance(claimed, ClaimedTask) and claimed.cluster == "other"
