"""Task classes the end-to-end tests run in real `conveyor worker` processes.

Every execution leaves marker files in ``$E2E_MARKERS`` (written by the tasks themselves), so
the tests count executions independently of conveyor's own bookkeeping.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from conveyor import ExecutionContext, Task


def markers() -> Path:
    return Path(os.environ["E2E_MARKERS"])


def mark(kind: str, key: str, **extra: object) -> None:
    """One file per event: ``{kind}--{key}--{unique}`` holding pid, time and extras."""
    body = f"pid={os.getpid()} t={time.time():.6f} runner={os.environ.get('E2E_RUNNER', '')}"
    body += "".join(f" {k}={v}" for k, v in extra.items())
    # Written aside, then renamed: a reader globbing for markers never sees a half-written one.
    unique = uuid.uuid4().hex
    partial = markers() / f".partial-{unique}"
    partial.write_text(body)
    os.replace(partial, markers() / f"{kind}--{key}--{unique}")


def count(kind: str, key: str = "") -> int:
    return sum(1 for p in markers().glob(f"{kind}--{key}*"))


class FanOut(Task):
    """Submits ``count`` leaves and an ``After`` that depends on all of them."""

    count: int

    def execute(self, context: ExecutionContext) -> None:
        leaves = context.submit_subtasks([Leaf(i) for i in range(self.count)])
        context.submit_subtask(After(self.count), depends_on=leaves)


class Leaf(Task):
    index: int

    def execute(self, context: ExecutionContext) -> None:
        mark("leaf", f"{self.index:06d}")


class After(Task):
    """Records how many leaves had finished when it started (all of them, or a bug)."""

    expected: int

    def execute(self, context: ExecutionContext) -> None:
        mark("after", "x", leaves_seen=count("leaf"))


class Sleep(Task):
    key: str
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        mark("start", self.key, attempt=context.current_task.attempt)
        time.sleep(self.seconds)
        mark("done", self.key, attempt=context.current_task.attempt)


class SleepMany(Task):
    """Root of the chaos job: ``count`` sleeps of 0.2-2 s."""

    count: int

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks(
            [Sleep(f"{i:04d}", 0.2 + (i * 7919 % 1800) / 1000) for i in range(self.count)]
        )


class ToOtherCluster(Task):
    """Sends one leaf to the ``other`` cluster."""

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtask(Leaf(1), cluster="other")


def _versioned(version: str) -> type[Task]:
    def execute(self: Task, context: ExecutionContext) -> None:
        mark("version", version)

    return type(
        f"Versioned_{version.replace('.', '_')}",
        (Task,),
        {
            "identifier": staticmethod(lambda: ("e2e.Versioned", version)),
            "execute": execute,
            "__module__": __name__,
        },
    )


Versioned_v1_1 = _versioned("v1.1")
Versioned_v1_2 = _versioned("v1.2")
Versioned_v1_3 = _versioned("v1.3")


class QuickSleeps(Task):
    """Root of the service-restart jobs: ``count`` sleeps of 0.1-0.4 s."""

    count: int

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks(
            [Sleep(f"{i:04d}", 0.1 + (i * 7919 % 300) / 1000) for i in range(self.count)]
        )


TASKS = [FanOut, Leaf, After, Sleep, SleepMany, QuickSleeps, ToOtherCluster]
