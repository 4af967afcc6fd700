"""Task classes the CLI tests import by path (tests.cli.flows:…)."""

from __future__ import annotations

import time

from conveyor import ExecutionContext, Task


class Greet(Task):
    name: str
    times: int = 1

    def execute(self, context: ExecutionContext) -> None:
        context.progress("greetings").add(self.times)
        context.submit_subtasks([Say(f"hello {self.name} #{i}") for i in range(self.times)])


class Say(Task):
    text: str

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = self.text
        time.sleep(0.01)
        context.progress("greetings").done(1)


class Explode(Task):
    reason: str

    def execute(self, context: ExecutionContext) -> None:
        raise RuntimeError(self.reason)


NOT_A_TASK = 42
TASKS = [Greet, Say, Explode]
