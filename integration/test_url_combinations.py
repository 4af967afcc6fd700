"""Any store URL works with any broker URL (design §2b): a small workflow on each pair."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conveyor import Client, ExecutionContext, JobState, Task
from conveyor.config import Settings

SEEN: list[int] = []


class Part(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        SEEN.append(self.n)


class Whole(Task):
    parts: int

    def execute(self, context: ExecutionContext) -> None:
        parts = context.submit_subtasks([Part(i) for i in range(self.parts)])
        context.submit_subtask(Part(-1), depends_on=parts)


@pytest.mark.parametrize("broker", ["none", "memory", "amqp"])
@pytest.mark.parametrize("store", ["sqlite", "postgresql", "memory"])
def test_every_store_works_with_every_broker(
    store: str, broker: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'c.db'}",
        "postgresql": lambda: request.getfixturevalue("postgres_empty_database"),
        "memory": lambda: "memory://",
    }[store]()
    broker_url = {
        "none": lambda: "none://",
        "memory": lambda: "memory://",
        "amqp": lambda: request.getfixturevalue("amqp_url"),
    }[broker]()
    settings = Settings(
        database_url=database_url,
        broker_url=broker_url,
        amqp_namespace=f"combo{uuid.uuid4().hex[:8]}",
        home=tmp_path,
    )
    SEEN.clear()
    with Client(settings=settings) as client:
        job = client.jobs().submit("combo", Whole(5))
        client.runner(tasks=[Whole, Part]).run_all()
        assert client.jobs().find(job).state is JobState.COMPLETED
    assert sorted(SEEN[:-1]) == [0, 1, 2, 3, 4] and SEEN[-1] == -1


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_MAX_INPUT_BYTES", "10")
    monkeypatch.setenv("CONVEYOR_DATABASE_URL", "memory://")
    with Client() as client:
        assert client.max_input_bytes == 10
        with pytest.raises(ValueError, match="over the 10-byte limit"):
            client.jobs().submit("big", Part(10**12))


def test_submissions_over_rabbitmq_are_published_by_the_relay_and_marked(
    postgres_empty_database: str, amqp_url: str, rabbitmqctl: object, tmp_path: Path
) -> None:
    """``submit`` returns after its commit; the relay publishes in batches, marks the rows
    published, and ``close`` flushes it: every message is in its queue, none left pending."""
    namespace = f"relay{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=postgres_empty_database,
        broker_url=amqp_url,
        amqp_namespace=namespace,
        amqp_queue_type="classic",
        home=tmp_path,
    )
    with Client(settings=settings) as client:
        jobs = [client.service.submit_job(f"r{i}", [_spec(Part(i))]) for i in range(300)]
        relay = client.service.relay
        assert relay is not None
    assert relay.published == 300
    with Client(settings=settings) as reader:
        for job in jobs[::50]:
            (task,) = reader.jobs().tasks(job.id)
            assert not task.publish_pending and task.published_at is not None
    queues = {
        name: int(depth)
        for name, depth in rabbitmqctl.rows(
            "list_queues", "-p", rabbitmqctl.vhost, "name", "messages"
        )
    }  # type: ignore[attr-defined]
    assert sum(depth for name, depth in queues.items() if name.startswith(namespace)) == 300


def _spec(task: Task) -> object:
    from conveyor.core.context import new_task_spec

    return new_task_spec(task, cluster="default")
