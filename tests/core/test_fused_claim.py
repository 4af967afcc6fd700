"""A completion that claims the runner's next delivery in the same transaction (one commit per
task in a backlog): the rules stay those of a completion followed by a claim."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from conveyor import Client, ExecutionContext, JobState, Task, TaskState
from conveyor.core import usecases
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, ClaimRefusal, RefusalReason
from conveyor.core.ports import StoreTx
from conveyor.core.reads import ReadService
from conveyor.core.service import Orchestrator


def reads_of(service: Orchestrator) -> ReadService:
    """The read service over ``service``'s store (reads are not the orchestrator's)."""
    return ReadService(service.store)


ORDER: list[int] = []


class Step(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        ORDER.append(self.n)


class Fan(Task):
    width: int

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks([Step(i) for i in range(self.width)])


def job_state_writes(client: Client) -> list[JobState]:
    """Wrap the store's transactions so every job-state write is recorded."""
    writes: list[JobState] = []
    store = client.service.store
    original_run = store.run

    def run(fn: Callable[[StoreTx], object]) -> object:
        def wrapped(tx: StoreTx) -> object:
            set_job_state = tx.jobs.set_job_state

            def record(job_id: JobId, state: JobState) -> None:
                before = tx.jobs.get_job(job_id)
                if before is not None and before.state is not state:
                    writes.append(state)
                set_job_state(job_id, state)

            tx.jobs.set_job_state = record  # type: ignore[method-assign]
            return fn(tx)

        return original_run(wrapped)

    store.run = run  # type: ignore[method-assign]
    return writes


def test_a_backlog_runs_with_one_transaction_per_task_and_the_job_stays_running() -> None:
    ORDER.clear()
    client = Client("memory://", "memory://")
    job = client.jobs().submit("backlog", [Step(i) for i in range(20)])
    writes = job_state_writes(client)
    runner = client.runner(tasks=[Step])
    runner.run_all()
    assert sorted(ORDER) == list(range(20))
    assert runner.computed == 20
    assert runner.fused == 19  # every completion but the last claimed the next task
    assert client.jobs().find(job).state is JobState.COMPLETED
    # RUNNING once, COMPLETED once: no RUNNING -> STARTED -> RUNNING flip per task.
    assert writes == [JobState.RUNNING, JobState.COMPLETED]
    assert all(t.state is TaskState.COMPUTED for t in client.jobs().tasks(job))


def test_subtasks_and_fused_claims_complete_the_tree() -> None:
    ORDER.clear()
    client = Client("memory://", "memory://")
    job = client.jobs().submit("fan", Fan(width=30))
    runner = client.runner(tasks=[Fan, Step])
    runner.run_all()
    assert sorted(ORDER) == list(range(30))
    assert runner.fused >= 29
    assert client.jobs().find(job).state is JobState.COMPLETED


def test_a_fused_claim_of_a_task_that_is_not_dispatchable_is_dropped_and_the_result_kept() -> None:
    client = Client("memory://", "memory://")
    job = client.jobs().submit("one", [Step(1), Step(2)])
    first, second = client.jobs().tasks(job)
    service = client.service
    claimed = service.claim(first.id, "default", "r1", 30.0)
    assert isinstance(claimed, ClaimedTask)
    # Someone else took the second task meanwhile: the fused claim finds it RUNNING.
    assert isinstance(service.claim(second.id, "default", "r2", 30.0), ClaimedTask)
    recorded, following = service.complete_and_claim(
        claimed, [], None, {}, lambda: second.id, "default", "r1", 30.0
    )
    assert recorded and isinstance(following, ClaimRefusal)
    assert following.reason is RefusalReason.RUNNING and following.runner_id == "r2"
    assert reads_of(service).get_task(first.id).state is TaskState.COMPUTED  # type: ignore[union-attr]
    assert reads_of(service).get_task(second.id).runner_id == "r2"  # type: ignore[union-attr]
    assert client.jobs().find(job).state is JobState.RUNNING


def test_a_stale_completion_still_claims_the_next_task() -> None:
    client = Client("memory://", "memory://")
    job = client.jobs().submit("stale", [Step(1), Step(2)])
    first, second = client.jobs().tasks(job)
    service = client.service
    claimed = service.claim(first.id, "default", "r1", 30.0)
    assert isinstance(claimed, ClaimedTask)
    stale = dataclasses.replace(claimed, attempt=claimed.attempt + 1)
    recorded, following = service.complete_and_claim(
        stale, [], None, {}, lambda: second.id, "default", "r1", 30.0
    )
    assert not recorded
    assert isinstance(following, ClaimedTask) and following.id == second.id
    assert reads_of(service).get_task(first.id).state is TaskState.RUNNING  # type: ignore[union-attr]


def test_when_the_claim_leaves_the_job_the_job_state_is_still_written() -> None:
    client = Client("memory://", "memory://")
    a = client.jobs().submit("a", [Step(1), Step(2)])
    b = client.jobs().submit("b", [Step(3), Step(4)])
    task_a, _ = client.jobs().tasks(a)
    task_b, _ = client.jobs().tasks(b)
    service = client.service
    claimed = service.claim(task_a.id, "default", "r1", 30.0)
    assert isinstance(claimed, ClaimedTask)
    recorded, following = service.complete_and_claim(
        claimed, [], None, {}, lambda: task_b.id, "default", "r1", 30.0
    )
    assert recorded and isinstance(following, ClaimedTask) and following.job_id == b.id
    # Job a has work done and nothing running: STARTED, although the claim went elsewhere.
    assert client.jobs().find(a).state is JobState.STARTED
    assert client.jobs().find(b).state is JobState.RUNNING


@pytest.mark.parametrize(
    ("finished", "following", "expected"),
    [("b", "b", True), ("a", "b", True), ("b", "a", False), ("a", None, False)],
)
def test_fused_claims_only_move_to_the_same_or_a_newer_job(
    finished: str, following: str | None, expected: bool
) -> None:
    ids = {"a": JobId(str(uuid7())), "b": JobId(str(uuid7()))}
    next_job = ids[following] if following is not None else None
    assert usecases.may_claim_after(ids[finished], next_job) is expected


def test_a_delivery_of_an_older_job_is_claimed_on_its_own() -> None:
    ORDER.clear()
    client = Client("memory://", "memory://")
    older = client.jobs().submit("older", [Step(1)])
    newer = client.jobs().submit("newer", [Step(2)])
    broker = client.service.broker
    # Queue order reversed: the newer job's task first, then the older one's.
    for queue in broker._queues.values():  # type: ignore[attr-defined]
        queue.reverse()
    offered: list[TaskId | None] = []
    runner = client.runner(tasks=[Step])
    original = runner._following

    def spy(job: JobId) -> TaskId | None:
        result = original(job)
        offered.append(result)
        return result

    runner._following = spy  # type: ignore[method-assign]
    runner.run_all()
    assert ORDER == [2, 1]
    assert offered[0] is None  # not fused: job ids would be locked in descending order
    assert runner.fused == 0 and runner.computed == 2
    assert client.jobs().find(older).state is JobState.COMPLETED
    assert client.jobs().find(newer).state is JobState.COMPLETED


def test_heartbeats_and_sweeps_still_run_between_chained_tasks() -> None:
    ORDER.clear()
    client = Client("memory://", "memory://")
    client.jobs().submit("chain", [Step(i) for i in range(30)])
    runner = client.runner(tasks=[Step])
    calls: list[bool] = []
    original = runner._housekeeping

    def counting(*, force_sweep: bool) -> None:
        calls.append(force_sweep)
        original(force_sweep=force_sweep)

    runner._housekeeping = counting  # type: ignore[method-assign]
    runner.run_all()
    assert runner.fused >= 25
    assert len(calls) >= 30  # once per task, chained or not
