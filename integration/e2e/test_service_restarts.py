"""PostgreSQL and RabbitMQ restarted in the middle of a job: runners and the monitor recover,
the job completes, nothing is lost or recorded twice."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conveyor import JobState, TaskState
from integration.e2e.conftest import Stack, wait_until
from integration.e2e.flows import QuickSleeps

FLOWS = "integration.e2e.flows"
TASKS = 60


def _run_through(stack: Stack, outage: callable) -> None:  # type: ignore[valid-type]
    for i in range(2):
        stack.worker(f"{FLOWS}:TASKS", lease=3, log=f"worker-{i}")
    stack.monitor()
    job = stack.client.jobs().submit("restart", QuickSleeps(TASKS))
    wait_until(lambda: len(stack.markers_of("done")) >= TASKS // 4, 120, "a quarter done", stack)
    outage()

    def completed() -> bool:
        try:
            return stack.client.jobs().find(job).state is JobState.COMPLETED
        except Exception:  # the test's own client may see the outage too
            return False

    wait_until(completed, 180, "the job to complete after the outage", stack)
    tasks = list(stack.client.jobs().tasks(job))
    assert len(tasks) == TASKS + 1 and all(t.state is TaskState.COMPUTED for t in tasks)
    for task in tasks:
        outcomes = [a.outcome for a in stack.client.reads.task_attempts(task.id)]
        assert outcomes.count("computed") == 1, (task.display, outcomes)
    done = Counter(key for key, _ in stack.markers_of("done"))
    assert len(done) == TASKS, "no task lost"
    doubled = {k: n for k, n in done.items() if n > 1}
    assert len(doubled) <= 2, f"executions repeated beyond an in-flight one: {doubled}"


def _pg_restart() -> None:
    versions = sorted(p.name for p in Path("/etc/postgresql").iterdir())
    for version in versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            timeout=120,
        )


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="needs pg_ctlcluster (root)")
def test_postgres_restart_mid_job(pg_stack: Stack) -> None:
    _run_through(pg_stack, _pg_restart)


def test_rabbitmq_restart_mid_job(pg_stack: Stack, rabbitmqctl: object) -> None:
    def restart() -> None:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, timeout=120, capture_output=True)
        time.sleep(2)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, timeout=120, capture_output=True)
        subprocess.run(
            ["rabbitmqctl", "await_startup"], check=True, timeout=120, capture_output=True
        )

    _run_through(pg_stack, restart)
