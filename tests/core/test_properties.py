"""Property test: random task trees/DAGs, failures, retries, crashes and runner interleavings.

Hypothesis builds a tree of task specs (children submitted at completion, dependencies on
earlier siblings, optional flags, per-task retry budgets and failure counts) and then drives the
orchestrator step by step, choosing which of several concurrently running tasks finishes, fails
or crashes next. After every step and at the end it checks the invariants of design §2.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    DONE_STATES,
    ClaimedTask,
    JobState,
    NewTask,
    RegisteredIdentifier,
    TaskError,
    TaskRecord,
    TaskState,
)
from conveyor.core.polling import PollingDispatcher
from conveyor.core.reads import ReadService
from conveyor.core.service import Orchestrator
from conveyor.core.usecases import Policy, derive_job_state
from conveyor.memory.store import InMemoryStore

IDENT = TaskIdentifier("Node", "v1.0")
REG = [RegisteredIdentifier("Node", 1, 0)]
LEASE = 10.0


@dataclass
class Spec:
    optional: bool
    max_retries: int
    failures: int  # failing executions before it succeeds
    deps: list[int]
    children: list[Spec] = field(default_factory=list)


def specs(depth: int) -> st.SearchStrategy[list[Spec]]:
    """A list of sibling specs; each may depend on earlier siblings."""

    @st.composite
    def build(draw: st.DrawFn) -> list[Spec]:
        count = draw(st.integers(0, 4 if depth > 0 else 0))
        out = []
        for i in range(count):
            deps = sorted(draw(st.sets(st.integers(0, i - 1), max_size=2))) if i else []
            children = draw(specs(depth - 1)) if depth > 0 else []
            out.append(
                Spec(
                    optional=draw(st.booleans()),
                    max_retries=draw(st.integers(0, 2)),
                    failures=draw(st.sampled_from([0, 0, 0, 1, 2, 4])),
                    deps=deps,
                    children=children,
                )
            )
        return out

    return build()


class Clock:
    def __init__(self) -> None:
        self.t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self.t


def new_tasks(children: list[Spec], path: str) -> list[NewTask]:
    ids = [TaskId(uuid7()) for _ in children]
    return [
        NewTask(
            id=ids[i],
            cluster="default",
            identifier=IDENT,
            input=json.dumps(f"{path}.{i}").encode(),
            display=f"{path}.{i}",
            depends_on=tuple(ids[d] for d in spec.deps),
            max_retries=spec.max_retries,
            optional=spec.optional,
        )
        for i, spec in enumerate(children)
    ]


class Simulation:
    def __init__(self, roots: list[Spec]) -> None:
        self.clock = Clock()
        self.store = InMemoryStore(self.clock.now)
        self.service = Orchestrator(self.store, PollingDispatcher(), Policy(crash_limit=2))
        self.reads = ReadService(self.store)
        self.by_path: dict[str, Spec] = {}
        self.executions: Counter[str] = Counter()
        self.running: list[ClaimedTask] = []
        self.job_states: list[JobState] = []
        self.job_retries = 0
        self._index("r", roots)
        # roots are never optional (Tilebox) and have no dependencies
        for spec in roots:
            spec.optional, spec.deps = False, []
        self.job_id: JobId = self.service.submit_job("prop", new_tasks(roots, "r")).id

    def _index(self, path: str, children: list[Spec]) -> None:
        for i, spec in enumerate(children):
            self.by_path[f"{path}.{i}"] = spec
            self._index(f"{path}.{i}", spec.children)

    def tasks(self) -> dict[TaskId, TaskRecord]:
        return {t.id: t for t in self.reads.iter_tasks(self.job_id)}

    def subtree_done(self, tasks: dict[TaskId, TaskRecord], task_id: TaskId) -> bool:
        task = tasks[task_id]
        if task.state not in DONE_STATES:
            return False
        return all(self.subtree_done(tasks, c.id) for c in tasks.values() if c.parent_id == task_id)

    def claim(self) -> bool:
        claimed = self.service.claim_next("default", REG, f"r{len(self.running)}", LEASE)
        if claimed is None:
            return False
        self.check_claimed(claimed)
        return True

    def check_claimed(self, claimed: ClaimedTask) -> None:
        tasks = self.tasks()
        job = self.reads.job_record(self.job_id)
        assert job.state not in (JobState.FAILED, JobState.CANCELED, JobState.COMPLETED)
        for dep in claimed.depends_on:  # only after each dependency's whole subtree completed
            assert self.subtree_done(tasks, dep), "started before a dependency's subtree"
        self.running.append(claimed)

    def finish(self, index: int, then_claim: int | None = None) -> None:
        """Record the outcome of a running task; with ``then_claim`` a success also claims,
        in the same transaction, the queued task at that index (dispatchable or not), as a
        runner does with the delivery it has in hand."""
        claimed = self.running.pop(index)
        path = json.loads(claimed.input)
        spec = self.by_path[path]
        self.executions[path] += 1
        if self.executions[path] <= spec.failures:
            self.service.fail(claimed, TaskError("Boom", path), user_error=True)
        elif then_claim is None:
            self.service.complete(claimed, new_tasks(spec.children, path), None, {})
        else:
            queued = sorted(t.id for t in self.tasks().values() if t.state is TaskState.QUEUED)
            target = queued[then_claim % len(queued)] if queued else None
            _, following = self.service.complete_and_claim(
                claimed,
                new_tasks(spec.children, path),
                None,
                {},
                lambda: target,
                "default",
                f"r{len(self.running)}",
                LEASE,
            )
            if isinstance(following, ClaimedTask):
                self.check_claimed(following)

    def crash(self, index: int) -> None:
        """The runner of one running task dies: every other runner extends its lease."""
        crashed = self.running.pop(index)
        self.clock.t += dt.timedelta(seconds=LEASE / 2)
        for other in self.running:
            assert self.service.extend_lease(other, LEASE)
        self.clock.t += dt.timedelta(seconds=LEASE / 2 + 1)
        self.service.expire_leases()
        assert not self.service.extend_lease(crashed, LEASE)

    def observe(self) -> None:
        state = self.reads.job_record(self.job_id).state
        facts = self.store.run(lambda tx: tx.jobs.job_facts(self.job_id))
        assert state is derive_job_state(facts), "the job row disagrees with its facts"
        if self.job_states and self.job_states[-1] is JobState.COMPLETED:
            assert state is JobState.COMPLETED, "a completed job changed state"
        self.job_states.append(state)

    def check_final(self) -> None:
        tasks = self.tasks()
        by_state = Counter(t.state for t in tasks.values())
        assert by_state[TaskState.RUNNING] == 0
        assert sum(by_state.values()) == len(tasks)
        for task in tasks.values():
            path = json.loads(task.input)
            spec = self.by_path[path]
            kids = [c for c in tasks.values() if c.parent_id == task.id]
            if task.state is TaskState.COMPUTED:
                assert len(kids) == len(spec.children), "subtasks must come with COMPUTED"
            else:
                assert kids == [], "a task that did not compute has no subtasks"
            assert task.complete == self.subtree_done(tasks, task.id)
            budget = (task.max_retries + 1) * (self.job_retries + 1)
            assert self.executions[path] <= budget, "more executions than retries allow"
            if task.state is TaskState.FAILED:
                assert not task.optional_path
            if task.state in (TaskState.FAILED_OPTIONAL, TaskState.SKIPPED):
                assert task.optional_path
        job = self.reads.job_record(self.job_id)
        roots_done = all(t.complete for t in tasks.values() if t.parent_id is None)
        if by_state[TaskState.FAILED]:
            assert job.state is JobState.FAILED
        elif roots_done:
            assert job.state is JobState.COMPLETED
            assert self.job_states.count(JobState.COMPLETED) >= 1
            first = self.job_states.index(JobState.COMPLETED)
            assert all(s is JobState.COMPLETED for s in self.job_states[first:])
        else:
            raise AssertionError(f"job stuck: {job.state} {by_state}")


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(roots=specs(3).filter(bool), data=st.data())
def test_random_workflows_respect_every_rule(roots: list[Spec], data: st.DataObject) -> None:
    sim = Simulation(roots)
    for _ in range(400):
        sim.observe()
        actions = ["claim"] if sim.service.has_dispatchable("default", REG) else []
        if sim.running:
            actions += ["finish", "finish", "finish+claim", "crash"]
        if not actions:
            job = sim.reads.job_record(sim.job_id)
            if job.state is JobState.FAILED and sim.job_retries < 3:
                sim.job_retries += 1
                assert sim.service.retry_job(sim.job_id) >= 1
                continue
            break
        action = data.draw(st.sampled_from(actions))
        if action == "claim":
            assert sim.claim()
        else:
            index = data.draw(st.integers(0, len(sim.running) - 1))
            if action == "crash":
                sim.crash(index)
            elif action == "finish":
                sim.finish(index)
            else:
                sim.finish(index, then_claim=data.draw(st.integers(0, 50)))
    else:
        return  # very long runs are cut; the invariants checked on the way still hold
    sim.observe()
    sim.check_final()
