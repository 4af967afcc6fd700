"""Task classes of the web UI tests: a report that fans out, a step that fails until a flag
file exists (so a job fails, then completes after a retry), and a final publish."""

from __future__ import annotations

import time
from pathlib import Path

from conveyor import ExecutionContext, Task


class Report(Task):
    """Fans out ``chunks`` Chunk tasks and a Summarize step that depends on all of them."""

    flag: str
    chunks: int = 20
    sleep: float = 0.0

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Report", "v1.2"

    def execute(self, context: ExecutionContext) -> None:
        context.progress("chunks").add(self.chunks)
        parts = context.submit_subtasks(
            [Chunk(i, self.sleep) for i in range(self.chunks)], max_retries=1
        )
        context.submit_subtask(Summarize(self.flag), depends_on=parts)


class Chunk(Task):
    index: int
    sleep: float = 0.0

    def execute(self, context: ExecutionContext) -> None:
        if self.sleep:
            time.sleep(self.sleep)
        context.current_task.display = f"Chunk {self.index}"
        context.progress("chunks").done(1)


class Summarize(Task):
    """Fails with a ValueError until the flag file exists."""

    flag: str

    def execute(self, context: ExecutionContext) -> None:
        if not Path(self.flag).exists():
            raise ValueError(f"the summary input {self.flag} is missing")
        context.submit_subtask(Publish())


class Publish(Task):
    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = "Publish report"


class Album(Task):
    """A fan-out of ``count`` thumbnails, then a publish step that waits for all of them."""

    name: str
    count: int = 100
    sleep: float = 0.0

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Album", "v2.1"

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"Album {self.name}"
        context.progress("thumbnails").add(self.count)
        thumbs = context.submit_subtasks(
            [Thumbnail(f"{self.name}/{i:05d}.jpg", self.sleep) for i in range(self.count)],
            max_retries=2,
        )
        context.submit_subtask(Publish(), depends_on=thumbs)


class Thumbnail(Task):
    path: str
    sleep: float = 0.0

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "Thumbnail", "v1.4"

    def execute(self, context: ExecutionContext) -> None:
        if self.sleep:
            time.sleep(self.sleep)
        context.current_task.display = f"Thumbnail {self.path}"
        context.progress("thumbnails").done(1)


class Train(Task):
    """A task for a GPU cluster."""

    model: str
    epochs: int = 10

    def execute(self, context: ExecutionContext) -> None:
        context.progress("epochs").add(self.epochs)


TASKS = [Report, Chunk, Summarize, Publish, Album, Thumbnail]
