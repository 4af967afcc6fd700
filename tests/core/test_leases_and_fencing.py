"""Leases, crash counting, fencing, give-back and the outbox, with a controllable clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from conveyor.core import usecases
from conveyor.core.errors import BrokerUnavailableError
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    ClaimedTask,
    ClaimRefusal,
    DispatchMessage,
    JobState,
    NewTask,
    TaskError,
    TaskState,
)
from conveyor.core.reads import ReadService
from conveyor.core.service import Orchestrator
from conveyor.core.usecases import Policy
from conveyor.memory.broker import InMemoryBroker
from conveyor.memory.store import InMemoryStore


def reads_of(service: Orchestrator) -> ReadService:
    """The read service over ``service``'s store (reads are not the orchestrator's)."""
    return ReadService(service.store)


LEAF = TaskIdentifier("Leaf", "v1.0")


class FakeClock:
    def __init__(self) -> None:
        self.current = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += dt.timedelta(seconds=seconds)


class FlakyBroker(InMemoryBroker):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def publish(self, messages: Sequence[DispatchMessage]) -> None:
        if self.down:
            raise BrokerUnavailableError("broker down")
        super().publish(messages)


def spec(**kw: object) -> NewTask:
    return NewTask(TaskId(uuid7()), "default", LEAF, b'"x"', "Leaf", **kw)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(clock: FakeClock) -> Orchestrator:
    return Orchestrator(InMemoryStore(clock.now), FlakyBroker(), Policy(crash_limit=3))


def test_an_expired_lease_requeues_the_task_and_counts_a_crash(
    service: Orchestrator, clock: FakeClock
) -> None:
    root = spec()
    job = service.submit_job("crash", [root])
    first = service.claim(root.id, "default", "r1", 30)
    assert (
        isinstance(first, ClaimedTask)
        and reads_of(service).job_record(job.id).state is JobState.RUNNING
    )
    clock.advance(29)
    assert service.expire_leases() == 0
    clock.advance(2)
    assert service.expire_leases() == 1
    task = reads_of(service).get_task(root.id)
    assert task is not None
    assert (task.state, task.crash_count, task.retry_count) == (TaskState.QUEUED, 1, 0)
    assert reads_of(service).job_record(job.id).state is JobState.STARTED
    second = service.claim(root.id, "default", "r2", 30)
    assert isinstance(second, ClaimedTask) and second.attempt == 2
    outcomes = [a.outcome for a in reads_of(service).task_attempts(root.id)]
    assert outcomes == ["expired", "running"]


def test_past_the_crash_limit_the_task_fails(service: Orchestrator, clock: FakeClock) -> None:
    root = spec()
    job = service.submit_job("crash-limit", [root])
    for _ in range(4):  # crash limit 3: three re-runs, the fourth expiry fails it
        assert isinstance(service.claim(root.id, "default", "r", 10), ClaimedTask)
        clock.advance(11)
        service.expire_leases()
    task = reads_of(service).get_task(root.id)
    assert task is not None and task.state is TaskState.FAILED and task.crash_count == 4
    assert task.error is not None and task.error.type == "CrashLimitExceeded"
    assert reads_of(service).job_record(job.id).state is JobState.FAILED
    assert service.retry_job(job.id) == 1
    task = reads_of(service).get_task(root.id)
    assert task is not None and task.crash_count == 0 and task.state is TaskState.QUEUED


def test_a_zombies_late_result_is_discarded(service: Orchestrator, clock: FakeClock) -> None:
    root = spec()
    job = service.submit_job("zombie", [root])
    zombie = service.claim(root.id, "default", "zombie", 10)
    assert isinstance(zombie, ClaimedTask)
    clock.advance(11)
    service.expire_leases()
    alive = service.claim(root.id, "default", "alive", 10)
    assert isinstance(alive, ClaimedTask)
    assert service.extend_lease(zombie, 10) is False
    assert service.complete(zombie, [spec()], "zombie display", {}) is False
    assert service.fail(zombie, TaskError("E", "late")) is False
    assert service.complete(alive, [], "alive display", {}) is True
    task = reads_of(service).get_task(root.id)
    assert task is not None and task.display == "alive display" and task.attempt == 2
    assert reads_of(service).job_record(job.id).state is JobState.COMPLETED
    assert len(list(reads_of(service).iter_tasks(job.id))) == 1


def test_completion_is_idempotent_on_task_and_attempt(service: Orchestrator) -> None:
    root = spec()
    job = service.submit_job("idempotent", [root])
    claimed = service.claim(root.id, "default", "r", 10)
    assert isinstance(claimed, ClaimedTask)
    children = [spec()]
    assert service.complete(claimed, children, None, {}) is True
    assert service.complete(claimed, children, None, {}) is True  # a retried commit
    assert len(list(reads_of(service).iter_tasks(job.id))) == 2


def test_system_requeues_are_capped(service: Orchestrator) -> None:
    root = spec()
    job = service.submit_job("give-back", [root])
    for _ in range(10):
        claimed = service.claim(root.id, "default", "r", 10)
        assert isinstance(claimed, ClaimedTask)
        service.give_back(claimed, "shutdown")
    task = reads_of(service).get_task(root.id)
    assert task is not None and task.state is TaskState.QUEUED and task.retry_count == 0
    claimed = service.claim(root.id, "default", "r", 10)
    assert isinstance(claimed, ClaimedTask)
    service.give_back(claimed, "shutdown")
    task = reads_of(service).get_task(root.id)
    assert task is not None and task.state is TaskState.FAILED
    assert reads_of(service).job_record(job.id).state is JobState.FAILED


def test_retry_back_off_delays_the_next_claim(clock: FakeClock) -> None:
    service = Orchestrator(InMemoryStore(clock.now), InMemoryBroker(), Policy(retry_backoff=10))
    root = spec(max_retries=2)
    service.submit_job("backoff", [root])
    claimed = service.claim(root.id, "default", "r", 30)
    assert isinstance(claimed, ClaimedTask)
    service.fail(claimed, TaskError("E", "boom"))
    assert isinstance(service.claim(root.id, "default", "r", 30), ClaimRefusal)
    clock.advance(10)
    claimed = service.claim(root.id, "default", "r", 30)
    assert isinstance(claimed, ClaimedTask) and claimed.retry_count == 1
    service.fail(claimed, TaskError("E", "boom"))
    clock.advance(10)
    assert isinstance(service.claim(root.id, "default", "r", 30), ClaimRefusal)  # 20 s back-off
    clock.advance(10)
    assert isinstance(service.claim(root.id, "default", "r", 30), ClaimedTask)


def test_unpublished_messages_are_sent_by_the_outbox_sweep(
    service: Orchestrator, clock: FakeClock
) -> None:
    broker = service.broker
    assert isinstance(broker, FlakyBroker)
    broker.down = True
    root = spec()
    service.submit_job("outbox", [root])
    assert broker.depth() == 0
    task = reads_of(service).get_task(root.id)
    assert task is not None and task.publish_pending
    broker.down = False
    assert service.publish_outbox() == 0  # the writer's publish lease still holds
    clock.advance(31)
    assert service.publish_outbox() == 1
    assert broker.depth() == 1
    task = reads_of(service).get_task(root.id)
    assert task is not None and not task.publish_pending and task.published_at is not None


def test_expiry_inside_a_failed_optional_subtree_skips_the_task(
    service: Orchestrator, clock: FakeClock
) -> None:
    root = spec()
    job = service.submit_job("optional-expiry", [root])
    claimed = service.claim(root.id, "default", "r", 10)
    assert isinstance(claimed, ClaimedTask)
    boundary = spec(optional=True)
    service.complete(claimed, [boundary], None, {})
    parent = service.claim(boundary.id, "default", "r", 10)
    assert isinstance(parent, ClaimedTask)
    failing, slow = spec(), spec()
    service.complete(parent, [failing, slow], None, {})
    slow_claim = service.claim(slow.id, "default", "r", 10)
    failing_claim = service.claim(failing.id, "default", "r", 10)
    assert isinstance(slow_claim, ClaimedTask) and isinstance(failing_claim, ClaimedTask)
    service.fail(failing_claim, TaskError("E", "boom"))
    clock.advance(11)
    service.expire_leases()
    task = reads_of(service).get_task(slow.id)
    assert task is not None and task.state is TaskState.SKIPPED
    assert reads_of(service).job_record(job.id).state is JobState.COMPLETED


def test_derive_job_state_precedence() -> None:
    from conveyor.core.model import JobFacts

    def facts(**kw: object) -> JobFacts:
        base: dict[str, object] = dict(
            state=JobState.RUNNING,
            any_running=False,
            any_failed=False,
            any_work_done=False,
            all_roots_complete=False,
        )
        base.update(kw)
        return JobFacts(**base)  # type: ignore[arg-type]

    derive = usecases.derive_job_state
    assert derive(facts(state=JobState.CANCELED, any_failed=True)) is JobState.CANCELED
    assert derive(facts(any_failed=True, any_running=True)) is JobState.FAILED
    assert derive(facts(all_roots_complete=True)) is JobState.COMPLETED
    assert derive(facts(any_running=True, any_work_done=True)) is JobState.RUNNING
    assert derive(facts(any_work_done=True)) is JobState.STARTED
    assert derive(facts()) is JobState.SUBMITTED
