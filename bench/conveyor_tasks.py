"""The benchmark's conveyor tasks (``conveyor worker conveyor_tasks`` with bench/ on the path)."""

from __future__ import annotations

import time

from marks import mark

from conveyor import ExecutionContext, Task


class Noop(Task):
    """Records its start and returns."""

    seq: int

    def execute(self, context: ExecutionContext) -> None:
        mark(self.seq)


class Probe(Task):
    """Latency probe: records its start next to the submit time it carries."""

    seq: int
    sent: float

    def execute(self, context: ExecutionContext) -> None:
        mark(f"{self.seq} {self.sent:.6f}")


class Fanout(Task):
    """Submits ``n`` no-op subtasks (created and published when this task is recorded)."""

    n: int

    def execute(self, context: ExecutionContext) -> None:
        mark("fanout-start")
        context.submit_subtasks([Noop(i) for i in range(self.n)])
        mark("fanout-end")


class Sleep(Task):
    """Records its start, then sleeps (the recovery benchmark kills its runner meanwhile)."""

    seq: int
    seconds: float

    def execute(self, context: ExecutionContext) -> None:
        mark(self.seq)
        time.sleep(self.seconds)


TASKS = [Noop, Probe, Fanout, Sleep]
