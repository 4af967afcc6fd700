"""Concurrency on PostgreSQL: many runners (threads, each with its own connection) drive jobs
through the real use cases (``conveyor.core.usecases``) and the SQL store.

Each test checks an exactly-once property that READ COMMITTED would break if a primitive were
written as read-then-write: a fan-in releases its dependent once, trees and diamonds complete
once, one claim wins, a zombie's late completion is discarded.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest

from conveyor.core import usecases
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    ClaimedTask,
    JobState,
    NewTask,
    RegisteredIdentifier,
    TaskError,
    TaskState,
)
from conveyor.core.usecases import Outcome, Policy
from conveyor.store_sql import SqlStore, SqlTx

NODE = TaskIdentifier("Node", "v1.0")
REG = [RegisteredIdentifier("Node", 1, 0)]
POLICY = Policy(publish=True)
THREADS = 8


def node(kind: str, *, depends_on: tuple[TaskId, ...] = (), **kw: Any) -> NewTask:
    return NewTask(
        id=TaskId(uuid7()),
        cluster="default",
        identifier=NODE,
        input=kind.encode(),
        display=kind,
        depends_on=depends_on,
        **kw,
    )


class Boom(Exception):
    """Raised by a test behaviour: the attempt fails (a user error)."""


class CountingJobs:
    """Delegates to the transaction's job rows; counts job COMPLETED transitions."""

    def __init__(self, jobs: Any, seen: list[JobId]) -> None:
        self._jobs = jobs
        self._seen = seen

    def set_job_state(self, job_id: JobId, state: JobState) -> bool:
        changed = bool(self._jobs.set_job_state(job_id, state))
        if changed and state is JobState.COMPLETED:
            self._seen.append(job_id)
        return changed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jobs, name)


class CountingTx:
    """Delegates to the real transaction, its ``jobs`` counting committed COMPLETED
    transitions."""

    def __init__(self, tx: Any, seen: list[JobId]) -> None:
        self._tx = tx
        self.jobs = CountingJobs(tx.jobs, seen)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


class Harness:
    """Runners that claim with ``claim_next`` and execute ``behaviour(claimed)`` → subtasks."""

    def __init__(self, store: SqlStore, behaviour: Callable[[ClaimedTask], list[NewTask]]) -> None:
        self.store = store
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.executions: Counter[TaskId] = Counter()
        self.published: Counter[TaskId] = Counter()
        self.completed_transitions: list[JobId] = []
        self.errors: list[BaseException] = []

    def _run(self, fn: Callable[[Any], Any]) -> Any:
        # A retried transaction discards its counts: record them only once it committed.
        def counted(tx: Any) -> Any:
            seen: list[JobId] = []
            result = fn(CountingTx(tx, seen))
            return result, seen

        result, seen = self.store.run(counted)
        with self.lock:
            self.completed_transitions += seen
        return result

    def submit(self, *roots: NewTask) -> JobId:
        job, _ = self.store.run(lambda tx: usecases.submit_job(tx, "job", list(roots), POLICY))
        return job.id

    def worker(self, n: int, job_id: JobId) -> None:
        try:
            idle_since: float | None = None
            while True:
                claimed = self._run(
                    lambda tx: tx.claims.claim_next("default", REG, f"runner-{n}", 60)
                )
                if claimed is None:
                    state = self.store.run(lambda tx: tx.jobs.get_job(job_id)).state
                    if state in (JobState.COMPLETED, JobState.FAILED):
                        return
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 60:
                        raise AssertionError("no progress for 60 s")
                    time.sleep(0.002)
                    continue
                idle_since = None
                # claim_next bypasses usecases.claim's job refresh: do it as the runner would.
                self._run(partial(usecases.refresh_job_state, job_id=claimed.job_id))
                try:
                    subtasks = self.behaviour(claimed)
                except Boom as exc:
                    record: Any = partial(
                        usecases.fail_running,
                        task_id=claimed.id,
                        attempt=claimed.attempt,
                        error=TaskError("Boom", str(exc)),
                        user_error=True,
                        outcome="failed",
                        policy=POLICY,
                    )
                else:
                    record = partial(
                        usecases.complete,
                        task_id=claimed.id,
                        attempt=claimed.attempt,
                        subtasks=subtasks,
                        display=None,
                        progress={},
                        policy=POLICY,
                    )
                outcome: Outcome = self._run(record)
                assert outcome.recorded
                with self.lock:
                    self.executions[claimed.id] += 1
                    for message in outcome.to_publish:
                        self.published[message.task_id] += 1
        except BaseException as exc:
            with self.lock:
                self.errors.append(exc)

    def drive(self, job_id: JobId, threads: int = THREADS) -> None:
        workers = [threading.Thread(target=self.worker, args=(n, job_id)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=300)
        assert not self.errors, self.errors[0]

    def assert_completed_once(self, job_id: JobId) -> list[Any]:
        job = self.store.run(lambda tx: tx.jobs.get_job(job_id))
        assert job.state is JobState.COMPLETED
        assert self.completed_transitions == [job_id]
        tasks: list[Any] = []
        after = None
        while True:
            page = self.store.run(
                lambda tx, after=after: tx.tasks.job_tasks(job_id, after=after, limit=5000)
            )
            if not page:
                break
            tasks += page
            after = page[-1].id
        assert all(t.state is TaskState.COMPUTED and t.complete for t in tasks)
        assert all(t.attempt == 1 for t in tasks)
        assert all(self.executions[t.id] == 1 for t in tasks)
        assert all(t.deps_open == 0 and t.open_children == 0 for t in tasks)
        return tasks


def test_a_wide_fan_in_releases_its_dependent_exactly_once(pg_store: SqlStore) -> None:
    width = 1000
    sink_ids: list[TaskId] = []

    def behaviour(claimed: ClaimedTask) -> list[NewTask]:
        if claimed.input != b"root":
            return []
        leaves = [node("leaf") for _ in range(width)]
        sink = node("sink", depends_on=tuple(leaf.id for leaf in leaves))
        sink_ids.append(sink.id)
        return [*leaves, sink]

    harness = Harness(pg_store, behaviour)
    job_id = harness.submit(node("root"))
    harness.drive(job_id, threads=12)
    tasks = harness.assert_completed_once(job_id)
    assert len(tasks) == width + 2
    (sink_id,) = sink_ids
    assert harness.published[sink_id] == 1  # released (made ready) exactly once
    assert harness.executions[sink_id] == 1


def test_deep_trees_and_diamonds_complete_exactly_once(pg_store: SqlStore) -> None:
    # Every "tree" node at depth < 4 spawns three trees and one diamond; a diamond spawns
    # a → (b, c) → d, where d spawns a smaller tree: dependencies across whole subtrees.
    def behaviour(claimed: ClaimedTask) -> list[NewTask]:
        kind, _, depth_text = claimed.input.decode().partition(":")
        depth = int(depth_text or 0)
        if kind == "tree" and depth < 4:
            return [
                *(node(f"tree:{depth + 1}") for _ in range(3)),
                node(f"diamond:{depth + 1}"),
            ]
        if kind == "diamond":
            a = node(f"tree:{depth + 2}")
            b = node(f"tree:{depth + 2}", depends_on=(a.id,))
            c = node(f"tree:{depth + 2}", depends_on=(a.id,))
            d = node(f"tree:{depth + 1}", depends_on=(b.id, c.id))
            return [a, b, c, d]
        return []

    harness = Harness(pg_store, behaviour)
    job_id = harness.submit(node("tree:0"), node("diamond:0"), node("tree:3"))
    harness.drive(job_id)
    tasks = harness.assert_completed_once(job_id)
    assert len(tasks) > 300


def test_failures_in_optional_subtrees_skip_their_queued_tasks_under_concurrency(
    pg_store: SqlStore,
) -> None:
    # 20 optional boundaries, each with 10 children that spawn grandchildren; in every
    # boundary one child fails. The job still completes, once; every task ends done, and a
    # failed boundary has no QUEUED or RUNNING task left below it.
    def behaviour(claimed: ClaimedTask) -> list[NewTask]:
        kind = claimed.input.decode()
        if kind == "root":
            return [node("boundary", optional=True) for _ in range(20)]
        if kind == "boundary":
            return [node("fail"), *(node("child") for _ in range(9))]
        if kind == "child":
            return [node("leaf") for _ in range(3)]
        if kind == "fail":
            raise Boom("this one fails")
        return []

    harness = Harness(pg_store, behaviour)
    job_id = harness.submit(node("root"))
    harness.drive(job_id, threads=12)
    job = pg_store.run(lambda tx: tx.jobs.get_job(job_id))
    assert job is not None and job.state is JobState.COMPLETED
    assert harness.completed_transitions == [job_id]
    tasks = pg_store.run(lambda tx: tx.tasks.job_tasks(job_id, limit=10_000))
    assert all(t.complete for t in tasks)
    states = Counter(t.state for t in tasks)
    assert states[TaskState.FAILED_OPTIONAL] == 20
    assert set(states) <= {TaskState.COMPUTED, TaskState.FAILED_OPTIONAL, TaskState.SKIPPED}
    boundaries = [t for t in tasks if t.optional]
    assert len(boundaries) == 20 and all(t.subtree_failed for t in boundaries)


def test_many_roots_finishing_together_complete_the_job_once(pg_store: SqlStore) -> None:
    harness = Harness(pg_store, lambda claimed: [])
    job_id = harness.submit(*(node("leaf") for _ in range(200)))
    harness.drive(job_id, threads=16)
    harness.assert_completed_once(job_id)


def test_concurrent_claims_of_one_task_have_exactly_one_winner(pg_store: SqlStore) -> None:
    roots = [node("leaf") for _ in range(20)]
    pg_store.run(lambda tx: usecases.submit_job(tx, "job", roots, POLICY))
    for root in roots:
        winners = race_claims(pg_store, root.id)
        assert len(winners) == 1
        task = pg_store.run(lambda tx, task_id=root.id: tx.tasks.get_task(task_id))
        assert task.attempt == 1 and task.runner_id == winners[0].id_runner
        attempts = pg_store.run(lambda tx, task_id=root.id: tx.attempts.task_attempts(task_id))
        assert len(attempts) == 1


def race_claims(store: SqlStore, task_id: TaskId) -> list[Any]:
    """THREADS runners claim one task at the same instant; the winners."""
    barrier = threading.Barrier(THREADS)
    winners: list[Any] = []

    def race(n: int) -> None:
        barrier.wait()
        claimed = store.run(lambda tx: usecases.claim(tx, task_id, "default", f"r{n}", 30))
        if isinstance(claimed, ClaimedTask):
            winners.append(SimpleNamespace(id_runner=f"r{n}", claimed=claimed))

    threads = [threading.Thread(target=race, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return winners


def test_a_zombies_late_completion_is_rejected(pg_store: SqlStore) -> None:
    root = node("leaf")
    pg_store.run(lambda tx: usecases.submit_job(tx, "job", [root], POLICY))
    zombie = pg_store.run(lambda tx: usecases.claim(tx, root.id, "default", "zombie", 0))
    assert isinstance(zombie, ClaimedTask)
    pg_store.run(lambda tx: usecases.expire_leases(tx, POLICY))
    healthy = pg_store.run(lambda tx: usecases.claim(tx, root.id, "default", "healthy", 60))
    assert isinstance(healthy, ClaimedTask) and healthy.attempt == zombie.attempt + 1
    late = pg_store.run(
        lambda tx: usecases.complete(tx, root.id, zombie.attempt, [node("x")], None, {}, POLICY)
    )
    assert late.recorded is False and late.to_publish == []
    task = pg_store.run(lambda tx: tx.tasks.get_task(root.id))
    assert task.state is TaskState.RUNNING and task.runner_id == "healthy"
    done = pg_store.run(
        lambda tx: usecases.complete(tx, root.id, healthy.attempt, [], None, {}, POLICY)
    )
    assert done.recorded
    assert pg_store.run(lambda tx: tx.tasks.get_task(root.id)).open_children == 0
    job = pg_store.run(lambda tx: tx.jobs.get_job(task.job_id))
    assert job.state is JobState.COMPLETED


@pytest.mark.parametrize("round_", range(10))
def test_a_zombie_racing_the_sweeper_is_recorded_or_discarded_never_both(
    pg_store: SqlStore, round_: int
) -> None:
    root = node("leaf")
    pg_store.run(lambda tx: usecases.submit_job(tx, "job", [root], POLICY))
    zombie = pg_store.run(lambda tx: usecases.claim(tx, root.id, "default", "zombie", 0))
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def complete() -> None:
        barrier.wait()
        results["late"] = pg_store.run(
            lambda tx: usecases.complete(tx, root.id, zombie.attempt, [], None, {}, POLICY)
        )

    def sweep() -> None:
        barrier.wait()
        results["swept"] = pg_store.run(lambda tx: usecases.expire_leases(tx, POLICY))

    threads = [threading.Thread(target=complete), threading.Thread(target=sweep)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    task = pg_store.run(lambda tx: tx.tasks.get_task(root.id))
    if results["late"].recorded:
        assert task.state is TaskState.COMPUTED and task.complete
        assert results["swept"].to_publish == []
    else:
        assert task.state is TaskState.QUEUED and task.crash_count == 1
        assert [m.task_id for m in results["swept"].to_publish] == [root.id]


def test_marking_published_skips_rows_another_transaction_holds(pg_store: SqlStore) -> None:
    """The relay's mark never waits for a runner: a mark that waited for a task a runner was
    finishing, while that runner's fused claim waited for a row the mark held, deadlocked."""
    first, second = node("a"), node("b")
    pg_store.run(lambda tx: usecases.submit_job(tx, "mark", [first, second], POLICY))
    holding = threading.Event()
    release = threading.Event()

    def hold(tx: SqlTx) -> None:
        tx.tasks.lock_task(first.id)  # a runner claiming or finishing it
        holding.set()
        assert release.wait(10)

    holder = threading.Thread(target=pg_store.run, args=(hold,))
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        pg_store.run(lambda tx: tx.outbox.mark_published([first.id, second.id]))
        assert time.monotonic() - started < 1.0  # did not wait for the holder
    finally:
        release.set()
        holder.join()
    tasks = {
        t.id: t
        for t in pg_store.run(
            lambda tx: [tx.tasks.get_task(first.id), tx.tasks.get_task(second.id)]
        )
    }
    assert tasks[second.id].published_at is not None and not tasks[second.id].publish_pending
    assert tasks[first.id].publish_pending  # left for its claim or the outbox sweep
