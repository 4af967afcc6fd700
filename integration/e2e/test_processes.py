"""End to end with real processes: fan-out, kill -9 chaos, SIGTERM, SIGSTOP zombies, version
skew and clusters, on RabbitMQ + PostgreSQL and on the embedded default."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest

from conveyor import JobState, TaskState
from integration.e2e.conftest import Stack, wait_until
from integration.e2e.flows import FanOut, Sleep, SleepMany, ToOtherCluster, Versioned_v1_2

FLOWS = "integration.e2e.flows"


def job_state(stack: Stack, job: object) -> JobState:
    return stack.client.jobs().find(job).state  # type: ignore[arg-type]


def test_a_1000_fan_out_runs_every_leaf_once_and_the_dependent_last(stack: Stack) -> None:
    for i in range(3):
        stack.worker(f"{FLOWS}:TASKS", log=f"worker-{i}")
    job = stack.client.jobs().submit("fan-out", FanOut(1000))
    wait_until(lambda: job_state(stack, job) is JobState.COMPLETED, 240, "the fan-out", stack)
    leaves = Counter(key for key, _ in stack.markers_of("leaf"))
    assert len(leaves) == 1000 and set(leaves.values()) == {1}, "every leaf exactly once"
    (after,) = stack.markers_of("after")
    assert after[1]["leaves_seen"] == "1000", "the dependent ran after all 1,000 leaves"
    runners = {f["runner"] for _, f in stack.markers_of("leaf")}
    assert len(runners) >= 2, f"the work was shared: {runners}"


def _chaos(stack: Stack, tasks: int, kills: int, workers: int = 3) -> None:
    procs = [stack.worker(f"{FLOWS}:TASKS", lease=2, log=f"worker-{i}") for i in range(workers)]
    stack.monitor()
    job = stack.client.jobs().submit("chaos", SleepMany(tasks))
    rng = random.Random(7)
    done_kills = 0
    deadline = time.monotonic() + 60 + tasks * 2
    while job_state(stack, job) is not JobState.COMPLETED and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.5, 1.5))
        if done_kills < kills:
            slot = rng.randrange(workers)
            procs[slot].send_signal(signal.SIGKILL)
            procs[slot].wait()
            procs[slot] = stack.worker(f"{FLOWS}:TASKS", lease=2, log=f"worker-{slot}")
            done_kills += 1
    assert job_state(stack, job) is JobState.COMPLETED, stack.logs()
    assert done_kills >= kills
    tasks_seen = list(stack.client.jobs().tasks(job))
    assert len(tasks_seen) == tasks + 1
    assert all(t.state is TaskState.COMPUTED for t in tasks_seen)
    for task in tasks_seen:
        assert task.crash_count <= 10
        outcomes = [a.outcome for a in stack.client.reads.task_attempts(task.id)]
        assert outcomes.count("computed") == 1, (task.display, outcomes)
        assert "running" not in outcomes
    done = {key for key, _ in stack.markers_of("done")}
    assert len(done) == tasks, "every task finished at least one execution"


def test_chaos_kill_9_short(stack: Stack) -> None:
    _chaos(stack, tasks=40, kills=6)


@pytest.mark.slow
def test_chaos_kill_9_soak(stack: Stack) -> None:
    _chaos(stack, tasks=200, kills=25)


def test_sigterm_hands_the_task_back_without_counting_a_retry(stack: Stack) -> None:
    first = stack.worker(f"{FLOWS}:TASKS", grace=1, log="first")
    job = stack.client.jobs().submit("sigterm", Sleep("long", 8))
    wait_until(lambda: bool(stack.markers_of("start")), 60, "the task to start", stack)
    first.send_signal(signal.SIGTERM)
    first.wait(30)
    # it left after its 1 s grace period, without waiting for the 8 s task to end
    assert not stack.markers_of("done"), "the runner waited for the task instead of handing it back"
    (task,) = [t for t in stack.client.jobs().tasks(job)]
    assert task.state is TaskState.QUEUED and task.retry_count == 0
    stack.worker(f"{FLOWS}:TASKS", log="second")
    wait_until(lambda: job_state(stack, job) is JobState.COMPLETED, 30, "the takeover", stack)
    (task,) = [t for t in stack.client.jobs().tasks(job)]
    assert task.retry_count == 0 and task.crash_count == 0
    outcomes = [a.outcome for a in stack.client.reads.task_attempts(task.id)]
    assert outcomes == ["given_back", "computed"]


def test_a_zombies_late_result_is_discarded(stack: Stack) -> None:
    zombie = stack.worker(f"{FLOWS}:TASKS", lease=2, log="zombie", runner="zombie")
    job = stack.client.jobs().submit("zombie", Sleep("z", 4))
    wait_until(lambda: bool(stack.markers_of("start")), 60, "the task to start", stack)
    zombie.send_signal(signal.SIGSTOP)
    stack.worker(f"{FLOWS}:TASKS", lease=2, log="rescuer", runner="rescuer")
    wait_until(lambda: job_state(stack, job) is JobState.COMPLETED, 60, "the rescue", stack)
    zombie.send_signal(signal.SIGCONT)
    wait_until(
        lambda: any(f["runner"] == "zombie" for _, f in stack.markers_of("done")),
        30,
        "the zombie to finish its sleep",
        stack,
    )
    time.sleep(1.5)  # give it time to try to record
    (task,) = list(stack.client.jobs().tasks(job))
    attempts = stack.client.reads.task_attempts(task.id)
    assert [a.outcome for a in attempts] == ["expired", "computed"]
    assert task.attempt == 2 and task.state is TaskState.COMPUTED
    assert "zombie" not in (attempts[1].runner_id or "")
    assert "result of task" in (stack.tmp / "zombie.log").read_text() or zombie.poll() is None


def test_version_skew_runs_v1_2_only_on_the_v1_3_runner(stack: Stack) -> None:
    stack.worker(f"{FLOWS}:Versioned_v1_1", log="v1_1")
    stack.worker(f"{FLOWS}:Versioned_v1_3", log="v1_3")
    job = stack.client.jobs().submit("skew", [Versioned_v1_2() for _ in range(6)])
    wait_until(lambda: job_state(stack, job) is JobState.COMPLETED, 60, "the job", stack)
    assert Counter(key for key, _ in stack.markers_of("version")) == {"v1.3": 6}


def test_a_subtask_for_another_cluster_runs_only_there(stack: Stack) -> None:
    stack.client.clusters().create("other")
    stack.worker(f"{FLOWS}:ToOtherCluster", f"{FLOWS}:Leaf", log="default", runner="default")
    stack.worker(f"{FLOWS}:Leaf", cluster="other", log="other", runner="other")
    job = stack.client.jobs().submit("clusters", ToOtherCluster())
    wait_until(lambda: job_state(stack, job) is JobState.COMPLETED, 60, "the job", stack)
    assert [f["runner"] for _, f in stack.markers_of("leaf")] == ["other"]


def test_cli_submit_wait_and_jobs_show_as_processes(stack: Stack) -> None:
    stack.worker(f"{FLOWS}:TASKS", log="worker")
    result = stack.cli("submit", f"{FLOWS}:FanOut", "25", "--wait", "--name", "cli-fan-out")
    assert result.returncode == 0, result.stderr + stack.logs()
    assert "COMPLETED" in result.stderr
    listed = stack.cli("--json", "jobs", "list", "--name", "cli-fan-out")
    assert '"COMPLETED"' in listed.stdout
    runners = stack.cli("runners", "list")
    assert runners.returncode == 0 and "default" in runners.stdout
    doctor = stack.cli("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_worker_concurrency_supervises_and_restarts_children(stack: Stack) -> None:
    supervisor = stack.worker(f"{FLOWS}:TASKS", concurrency=2, log="supervisor")
    wait_until(lambda: len(stack.client.reads.list_runners()) == 2, 60, "two runners", stack)
    victim = stack.client.reads.list_runners()[0]
    os.kill(victim.pid, signal.SIGKILL)
    wait_until(
        lambda: (
            any(r.pid != victim.pid for r in stack.client.reads.list_runners())
            and len({r.pid for r in stack.client.reads.list_runners()} - {victim.pid}) >= 2
        ),
        60,
        "a restarted child",
        stack,
    )
    assert "restarting" in (stack.tmp / "supervisor.log").read_text()
    job = stack.client.jobs().submit("after-restart", FanOut(20))
    wait_until(lambda: job_state(stack, job) is JobState.COMPLETED, 60, "the job", stack)
    children = [r.pid for r in stack.client.reads.list_runners()]
    supervisor.send_signal(signal.SIGKILL)  # the children must not outlive their supervisor
    supervisor.wait()

    def children_gone() -> bool:
        alive = 0
        for pid in children:
            try:
                os.kill(pid, 0)
                alive += 1
            except ProcessLookupError:
                pass
        return alive == 0

    wait_until(children_gone, 30, "the children to exit with their supervisor", stack)


def test_conveyor_demo_on_the_embedded_default(tmp_path: object) -> None:
    import subprocess
    import sys

    from integration.e2e.conftest import REPO

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["CONVEYOR_HOME"] = str(tmp_path)
    demo = subprocess.run(
        [sys.executable, "-m", "conveyor", "demo", "--scenes", "8"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "COMPLETED" in demo.stdout and "conveyor jobs show" in demo.stdout
    listed = subprocess.run(
        [sys.executable, "-m", "conveyor", "--json", "jobs", "list"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"COMPLETED"' in listed.stdout and "demo-mosaic" in listed.stdout
