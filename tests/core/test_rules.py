"""Design §2 state rules, end to end through the public API on in-memory adapters."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import ClassVar

import pytest

from conveyor import (
    Client,
    ClusterNotFoundError,
    ExecutionContext,
    InMemoryCache,
    JobState,
    ProgressIndicator,
    Task,
    TaskState,
)
from conveyor.core.context import new_task_spec

#: Side-effect log written by the tasks themselves (never the orchestrator's bookkeeping).
LOG: list[str] = []
FLAKY: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset() -> None:
    LOG.clear()
    FLAKY.clear()


class Leaf(Task):
    name: str

    def execute(self, context: ExecutionContext) -> None:
        LOG.append(self.name)
        context.progress("leaves").done(1)


class Mark(Task):
    name: str

    def execute(self, context: ExecutionContext) -> None:
        LOG.append(self.name)


class FanOut(Task):
    name: str
    count: int

    def execute(self, context: ExecutionContext) -> None:
        LOG.append(self.name)
        context.progress("leaves").add(self.count)
        context.submit_subtasks([Leaf(f"{self.name}/{i}") for i in range(self.count)])


class Fails(Task):
    name: str

    def execute(self, context: ExecutionContext) -> None:
        LOG.append(self.name)
        raise ValueError(f"{self.name} failed")


class Flaky(Task):
    """Fails the first ``failures`` executions."""

    name: str
    failures: int

    def execute(self, context: ExecutionContext) -> None:
        FLAKY[self.name] += 1
        LOG.append(self.name)
        if FLAKY[self.name] <= self.failures:
            raise RuntimeError(f"flaky {self.name} #{FLAKY[self.name]}")


def states(client: Client, job: object) -> Counter[TaskState]:
    return Counter(t.state for t in client.jobs().tasks(job))  # type: ignore[arg-type]


def run(client: Client, *tasks: type[Task], cluster: str | None = None, **kw: object) -> None:
    client.runner(cluster, tasks=list(tasks), **kw).run_all()  # type: ignore[arg-type]


class TestSubtasksAndDependencies:
    def test_a_dependent_starts_only_after_its_dependencies_whole_subtree(
        self, client: Client
    ) -> None:
        class Pipeline(Task):
            def execute(self, context: ExecutionContext) -> None:
                first = context.submit_subtask(FanOut("fan", 5))
                context.submit_subtask(Mark("after"), depends_on=[first])

        job = client.jobs().submit("pipeline", Pipeline())
        run(client, Pipeline, FanOut, Leaf, Mark)
        assert LOG[-1] == "after"
        assert sorted(LOG[:-1]) == sorted(["fan", *[f"fan/{i}" for i in range(5)]])
        found = client.jobs().find(job)
        assert found.state is JobState.COMPLETED
        assert found.progress == [ProgressIndicator("leaves", 5, 5)]
        assert all(t.complete for t in client.jobs().tasks(job))

    def test_tilebox_progress_example(self, client: Client) -> None:
        class Root(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.progress("test").add(4)
                context.submit_subtasks([Step() for _ in range(4)])

        class Step(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.progress("test").done(1)

        job = client.jobs().submit("progress", Root())
        run(client, Root, Step)
        found = client.jobs().find(job)
        assert found.state is JobState.COMPLETED
        assert found.progress == [ProgressIndicator("test", 4, 4)]

    def test_dependencies_may_only_name_earlier_siblings(self, client: Client) -> None:
        errors: list[str] = []

        class Bad(Task):
            def execute(self, context: ExecutionContext) -> None:
                other = ExecutionContext.__new__(ExecutionContext)
                foreign = context.submit_subtask(Leaf("x"))
                context._subtasks.clear()  # forget it: it is no sibling any more
                for dep in (foreign, "not-a-future"):
                    try:
                        context.submit_subtask(Leaf("y"), depends_on=dep)  # type: ignore[arg-type]
                    except (ValueError, TypeError) as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                del other

        client.jobs().submit("bad", Bad())
        run(client, Bad, Leaf)
        assert errors[0].startswith("ValueError: Dependent task 0 does not exist")
        assert errors[1].startswith("TypeError: Invalid dependency")

    def test_subtasks_of_a_failed_attempt_never_exist(self, client: Client) -> None:
        class SubmitsThenFails(Task):
            def execute(self, context: ExecutionContext) -> None:
                FLAKY["parent"] += 1
                context.submit_subtasks([Leaf(f"child-{FLAKY['parent']}-{i}") for i in range(3)])
                if FLAKY["parent"] == 1:
                    raise RuntimeError("first attempt fails after submitting")

        job = client.jobs().submit("no-dupes", SubmitsThenFails(), max_retries=1)
        run(client, SubmitsThenFails, Leaf)
        tasks = list(client.jobs().tasks(job))
        assert len(tasks) == 4
        assert sorted(x for x in LOG) == ["child-2-0", "child-2-1", "child-2-2"]
        assert client.jobs().find(job).state is JobState.COMPLETED

    def test_async_execute(self, client: Client) -> None:
        class Sleepy(Task):
            async def execute(self, context: ExecutionContext) -> None:
                await asyncio.sleep(0.01)
                LOG.append("async")

        job = client.jobs().submit("async", Sleepy())
        run(client, Sleepy)
        assert LOG == ["async"] and client.jobs().find(job).state is JobState.COMPLETED

    def test_display_is_editable_and_recorded(self, client: Client) -> None:
        class Named(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.current_task.display = "Named(tile 7)"

        job = client.jobs().submit("display", Named())
        run(client, Named)
        (task,) = client.jobs().tasks(job)
        assert task.display == "Named(tile 7)"


class TestFailures:
    def test_a_failed_task_fails_its_job_and_holds_the_queue(self, client: Client) -> None:
        class Root(Task):
            def execute(self, context: ExecutionContext) -> None:
                failing = context.submit_subtask(Fails("boom"))
                context.submit_subtask(Leaf("held"), depends_on=[failing])
                context.submit_subtask(Leaf("sibling"))

        job = client.jobs().submit("fails", Root())
        run(client, Root, Fails, Leaf)
        found = client.jobs().find(job)
        assert found.state is JobState.FAILED
        assert "held" not in LOG
        counts = states(client, job)
        assert counts[TaskState.FAILED] == 1 and counts[TaskState.QUEUED] >= 1
        failed = next(t for t in client.jobs().tasks(job) if t.state is TaskState.FAILED)
        assert failed.error is not None and failed.error.type == "ValueError"
        assert "boom failed" in failed.error.message and "Traceback" in failed.error.traceback
        assert failed.display == "Fails\nValueError('boom failed')"

    def test_retry_requeues_failed_tasks_and_the_job_completes(self, client: Client) -> None:
        job = client.jobs().submit("flaky", Flaky("f", 1))
        run(client, Flaky)
        assert client.jobs().find(job).state is JobState.FAILED
        assert client.jobs().retry(job) == 1
        assert client.jobs().find(job).state in (JobState.SUBMITTED, JobState.STARTED)
        run(client, Flaky)
        assert client.jobs().find(job).state is JobState.COMPLETED
        assert LOG == ["f", "f"]
        (task,) = client.jobs().tasks(job)
        assert task.retry_count == 0 and task.attempt == 2

    def test_tilebox_movies_example_redoes_only_unfinished_work(self, client: Client) -> None:
        class Movies(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.submit_subtasks([Leaf("a"), Flaky("b", 1), Leaf("c")])
                context.submit_subtask(Leaf("d"), depends_on=[])

        job = client.jobs().submit("movies", Movies())
        run(client, Movies, Leaf, Flaky)
        assert client.jobs().find(job).state is JobState.FAILED
        before = list(LOG)
        assert client.jobs().retry(job) == 1
        run(client, Movies, Leaf, Flaky)
        assert client.jobs().find(job).state is JobState.COMPLETED
        assert sorted(LOG) == ["a", "b", "b", "c", "d"]
        assert LOG[: len(before)] == before

    def test_max_retries_allows_n_plus_one_executions(self, client: Client) -> None:
        ok = client.jobs().submit("ok", Flaky("ok", 2), max_retries=2)
        run(client, Flaky)
        assert client.jobs().find(ok).state is JobState.COMPLETED
        (task,) = client.jobs().tasks(ok)
        assert task.retry_count == 2 and LOG.count("ok") == 3

        LOG.clear()
        bad = client.jobs().submit("bad", Flaky("bad", 3), max_retries=2)
        run(client, Flaky)
        assert client.jobs().find(bad).state is JobState.FAILED
        assert LOG.count("bad") == 3

    def test_undecodable_input_fails_the_task_and_the_runner_goes_on(self, client: Client) -> None:
        spec = new_task_spec(Leaf("x"), cluster="default")
        broken = type(spec)(**{**{f: getattr(spec, f) for f in spec.__slots__}, "input": b"{"})
        bad = client.service.submit_job("broken", [broken])
        good = client.jobs().submit("good", Leaf("good"))
        run(client, Leaf)
        assert client.jobs().find(bad.id).state is JobState.FAILED
        (task,) = client.jobs().tasks(bad.id)
        assert task.error is not None and task.error.type == "InputDecodeError"
        assert client.jobs().find(good).state is JobState.COMPLETED

    def test_a_subtask_for_an_unknown_cluster_fails_its_parent(self, client: Client) -> None:
        class Misrouted(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.submit_subtask(Leaf("x"), cluster="nowhere")

        job = client.jobs().submit("misrouted", Misrouted())
        run(client, Misrouted, Leaf)
        (task,) = client.jobs().tasks(job)
        assert task.state is TaskState.FAILED
        assert task.error is not None and "Unknown cluster 'nowhere'" in task.error.message

    def test_no_cache_gives_a_clear_error_and_a_cache_is_per_job(self, client: Client) -> None:
        class UsesCache(Task):
            key: str

            def execute(self, context: ExecutionContext) -> None:
                context.job_cache[self.key] = b"v"
                LOG.append(",".join(context.job_cache))

        failed = client.jobs().submit("nocache", UsesCache("a"))
        run(client, UsesCache)
        (task,) = client.jobs().tasks(failed)
        assert task.error is not None and task.error.type == "NoCacheError"
        cache = InMemoryCache()
        one = client.jobs().submit("one", UsesCache("a"))
        two = client.jobs().submit("two", UsesCache("b"))
        run(client, UsesCache, cache=cache)
        assert LOG == ["a", "b"]
        assert cache.group(str(one.id))["a"] == b"v" and "a" not in cache.group(str(two.id))

    def test_a_timeout_fails_the_attempt_and_retries_apply(self, client: Client) -> None:
        class Hangs(Task):
            task_timeout: ClassVar[float | None] = 0.3

            def execute(self, context: ExecutionContext) -> None:
                FLAKY["hang"] += 1
                if FLAKY["hang"] == 1:
                    time.sleep(30)
                    FLAKY["hang_returned"] += 1

        job = client.jobs().submit("hangs", Hangs(), max_retries=1)
        run(client, Hangs)
        # the runner did not wait for the hung execution: it is abandoned, still asleep
        assert FLAKY["hang_returned"] == 0
        assert client.jobs().find(job).state is JobState.COMPLETED
        attempts = client.reads.task_attempts(next(client.jobs().tasks(job)).id)
        assert [a.outcome for a in attempts] == ["timeout", "computed"]


class TestOptional:
    def test_tilebox_optional_subtask(self, client: Client) -> None:
        class Root(Task):
            def execute(self, context: ExecutionContext) -> None:
                failing = context.submit_subtask(Fails("opt"), optional=True)
                context.submit_subtask(Leaf("dependent"), depends_on=[failing])

        job = client.jobs().submit("optional", Root())
        run(client, Root, Fails, Leaf)
        assert client.jobs().find(job).state is JobState.COMPLETED
        assert states(client, job) == {TaskState.COMPUTED: 2, TaskState.FAILED_OPTIONAL: 1}
        assert "dependent" in LOG

    def test_tilebox_optional_subbranch(self, client: Client) -> None:
        class OptionalSubtasks(Task):
            def execute(self, context: ExecutionContext) -> None:
                failing = context.submit_subtask(Fails("inner"))
                context.submit_subtask(Leaf("skipped"), depends_on=[failing])

        class Root(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.submit_subtask(OptionalSubtasks(), optional=True)
                context.submit_subtask(Leaf("succeeds"))

        job = client.jobs().submit("subbranch", Root())
        run(client, Root, OptionalSubtasks, Fails, Leaf)
        assert client.jobs().find(job).state is JobState.COMPLETED
        assert states(client, job) == {
            TaskState.COMPUTED: 3,
            TaskState.FAILED_OPTIONAL: 1,
            TaskState.SKIPPED: 1,
        }
        assert "skipped" not in LOG

    def test_a_nested_optional_boundary_keeps_its_outer_siblings(self, client: Client) -> None:
        class Inner(Task):
            def execute(self, context: ExecutionContext) -> None:
                bad = context.submit_subtask(Fails("1b-child"))
                context.submit_subtask(Leaf("1b-after"), depends_on=[bad])

        class Outer(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.submit_subtask(Leaf("1a"))
                inner = context.submit_subtask(Inner(), optional=True)
                context.submit_subtask(Leaf("1c"), depends_on=[inner])

        class Root(Task):
            def execute(self, context: ExecutionContext) -> None:
                outer = context.submit_subtask(Outer(), optional=True)
                context.submit_subtask(Leaf("always"), depends_on=[outer])

        job = client.jobs().submit("nested", Root())
        run(client, Root, Outer, Inner, Fails, Leaf)
        assert client.jobs().find(job).state is JobState.COMPLETED
        assert {"1a", "1c", "always"} <= set(LOG) and "1b-after" not in LOG
        counts = states(client, job)
        assert counts[TaskState.FAILED_OPTIONAL] == 1 and counts[TaskState.SKIPPED] == 1

    def test_a_failing_optional_with_retries_left_retries_first(self, client: Client) -> None:
        class Root(Task):
            def execute(self, context: ExecutionContext) -> None:
                context.submit_subtask(Flaky("opt", 1), optional=True, max_retries=1)

        job = client.jobs().submit("optional-retry", Root())
        run(client, Root, Flaky)
        assert states(client, job) == {TaskState.COMPUTED: 2}


class TestCancelAndRetry:
    def test_cancel_holds_queued_tasks_and_retry_resumes(self, client: Client) -> None:
        job = client.jobs().submit("cancel", [Leaf("a"), Leaf("b")])
        client.jobs().cancel(job)
        run(client, Leaf)
        assert LOG == [] and client.jobs().find(job).state is JobState.CANCELED
        assert client.jobs().retry(job) == 0
        run(client, Leaf)
        assert sorted(LOG) == ["a", "b"]
        assert client.jobs().find(job).state is JobState.COMPLETED

    def test_cancel_and_retry_of_a_completed_job_change_nothing(self, client: Client) -> None:
        job = client.jobs().submit("done", Leaf("a"))
        run(client, Leaf)
        client.jobs().cancel(job)
        assert client.jobs().retry(job) == 0
        assert client.jobs().find(job).state is JobState.COMPLETED

    def test_cancel_of_a_failed_job_makes_it_canceled(self, client: Client) -> None:
        job = client.jobs().submit("failed", Fails("x"))
        run(client, Fails)
        client.jobs().cancel(job)
        assert client.jobs().find(job).state is JobState.CANCELED
        assert client.jobs().retry(job) == 1

    def test_subtasks_created_after_cancel_are_not_dispatched(self, client: Client) -> None:
        class CancelsItsJob(Task):
            def execute(self, context: ExecutionContext) -> None:
                client.jobs().cancel(context.current_task.job.id)  # thread-safe client use
                context.submit_subtask(Leaf("late"))

        job = client.jobs().submit("late", CancelsItsJob())
        run(client, CancelsItsJob, Leaf)
        assert "late" not in LOG
        assert client.jobs().find(job).state is JobState.CANCELED


class TestJobStates:
    def test_running_then_started_then_completed(self, client: Client) -> None:
        client.clusters().create("other")
        seen: list[JobState] = []

        class Observe(Task):
            def execute(self, context: ExecutionContext) -> None:
                seen.append(client.jobs().find(context.current_task.job.id).state)
                context.submit_subtask(Leaf("elsewhere"), cluster="other")

        job = client.jobs().submit("states", Observe())
        assert job.state is JobState.SUBMITTED
        run(client, Observe)
        assert seen == [JobState.RUNNING]
        assert client.jobs().find(job).state is JobState.STARTED
        run(client, Leaf, cluster="other")
        assert client.jobs().find(job).state is JobState.COMPLETED

    def test_two_clusters_run_only_their_own_tasks(self, client: Client) -> None:
        client.clusters().create("GPU Machines")
        job = client.jobs().submit(
            "two", [Leaf("cpu"), Leaf("gpu")], cluster=["default", "gpu-machines"]
        )
        run(client, Leaf)
        assert LOG == ["cpu"]
        run(client, Leaf, cluster="gpu-machines")
        assert LOG == ["cpu", "gpu"]
        assert client.jobs().find(job).state is JobState.COMPLETED

    def test_version_skew(self, client: Client) -> None:
        def versioned(version: str) -> type[Task]:
            def execute(self: Task, context: ExecutionContext) -> None:
                LOG.append(version)

            return type(
                "Versioned",
                (Task,),
                {"identifier": staticmethod(lambda: ("Versioned", version)), "execute": execute},
            )

        v1_1, v1_2, v1_3 = versioned("v1.1"), versioned("v1.2"), versioned("v1.3")
        job = client.jobs().submit("skew", v1_2())
        run(client, v1_1)
        assert LOG == []
        run(client, v1_3)
        assert LOG == ["v1.3"] and client.jobs().find(job).state is JobState.COMPLETED


class TestShutdown:
    def test_stop_lets_the_running_task_finish_within_the_grace_period(
        self, client: Client
    ) -> None:
        started = threading.Event()

        class Slow(Task):
            def execute(self, context: ExecutionContext) -> None:
                started.set()
                time.sleep(0.3)
                LOG.append("slow")

        job = client.jobs().submit("graceful", Slow())
        runner = client.runner(tasks=[Slow], grace_period=5)
        thread = threading.Thread(target=runner.run_forever)
        thread.start()
        assert started.wait(5)
        runner.stop()
        thread.join(10)
        assert not thread.is_alive() and LOG == ["slow"]
        assert client.jobs().find(job).state is JobState.COMPLETED

    def test_a_task_that_outlives_the_grace_period_is_handed_back(self, client: Client) -> None:
        started = threading.Event()

        class Stuck(Task):
            def execute(self, context: ExecutionContext) -> None:
                FLAKY["stuck"] += 1
                if FLAKY["stuck"] == 1:
                    started.set()
                    time.sleep(2)

        job = client.jobs().submit("handback", Stuck())
        runner = client.runner(tasks=[Stuck], grace_period=0.2)
        thread = threading.Thread(target=runner.run_forever)
        thread.start()
        assert started.wait(5)
        runner.stop()
        thread.join(5)
        assert not thread.is_alive()
        (task,) = client.jobs().tasks(job)
        assert task.state is TaskState.QUEUED and task.retry_count == 0
        run(client, Stuck)
        (task,) = client.jobs().tasks(job)
        assert task.state is TaskState.COMPUTED and task.retry_count == 0


class TestClientApi:
    def test_submit_validations(self, client: Client) -> None:
        with pytest.raises(ValueError, match="At least one task"):
            client.jobs().submit("empty", [])
        with pytest.raises(ValueError, match="job name is required"):
            client.jobs().submit("", Leaf("x"))
        with pytest.raises(ValueError, match="2 clusters for 1 tasks"):
            client.jobs().submit("x", [Leaf("x")], cluster=["default", "default"])
        with pytest.raises(ClusterNotFoundError, match="Unknown cluster 'nope'"):
            client.jobs().submit("x", Leaf("x"), cluster="nope")
        with pytest.raises(ValueError, match="over the 1,048,576-byte limit"):
            client.jobs().submit("big", Leaf("x" * (1024 * 1024 + 1)))
        with pytest.raises(TypeError, match="Expected a Task instance"):
            client.jobs().submit("x", ["not a task"])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="Not a job id"):
            client.jobs().find("nope")
        assert list(client.jobs().query()) == []

    def test_runner_validations(self, client: Client) -> None:
        with pytest.raises(ClusterNotFoundError):
            client.runner("nope", tasks=[Leaf])
        with pytest.raises(ValueError, match="at least one task"):
            client.runner(tasks=[])

    def test_idempotency_key_returns_the_first_job(self, client: Client) -> None:
        first = client.jobs().submit("nightly", Leaf("a"), idempotency_key="2026-11-28")
        again = client.jobs().submit("nightly", Leaf("a"), idempotency_key="2026-11-28")
        assert first.id == again.id and len(list(client.jobs().tasks(first))) == 1

    def test_clusters(self, client: Client) -> None:
        gpu = client.clusters().create("GPU Machines")
        assert gpu.slug == "gpu-machines" and gpu.display_name == "GPU Machines"
        assert client.clusters().create("cpu", slug="cpu-eu").slug == "cpu-eu"
        assert [c.slug for c in client.clusters().all()] == ["cpu-eu", "default", "gpu-machines"]
        client.clusters().delete(gpu)
        with pytest.raises(ClusterNotFoundError):
            client.clusters().find("gpu-machines")
        with pytest.raises(ValueError, match="cannot be deleted"):
            client.clusters().delete("default")
        with pytest.raises(ValueError, match="already exists"):
            client.clusters().create("cpu", slug="cpu-eu")

    def test_query_wait_and_delete(self, client: Client) -> None:
        a = client.jobs().submit("nightly-a", Leaf("a"))
        b = client.jobs().submit("adhoc-b", Fails("b"))
        with pytest.raises(TimeoutError):
            client.jobs().wait(a, timeout=0.05, poll=0.01)
        run(client, Leaf, Fails)
        assert client.jobs().wait(a, timeout=1).state is JobState.COMPLETED
        assert [j.id for j in client.jobs().query()] == [b.id, a.id]
        assert [j.id for j in client.jobs().query(JobState.FAILED)] == [b.id]
        assert [j.id for j in client.jobs().query(name="NIGHTLY")] == [a.id]
        stats = client.jobs().find(a).execution_stats
        assert stats.total_tasks == 1 and stats.first_task_started_at is not None
        assert client.jobs().delete(a) is True
        assert [j.id for j in client.jobs().query()] == [b.id]


def test_naming_a_dependency_twice_counts_it_once(client: Client) -> None:
    class Twice(Task):
        def execute(self, context: ExecutionContext) -> None:
            first = context.submit_subtask(Mark("first"))
            context.submit_subtask(Mark("second"), depends_on=[first, first])

    job = client.jobs().submit("twice", Twice())
    run(client, Twice, Mark)
    assert LOG == ["first", "second"]
    assert client.jobs().find(job).state is JobState.COMPLETED
