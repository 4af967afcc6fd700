"""The sample workflow behind ``conveyor demo``: a small satellite-imagery pipeline.

It shows the features a new user wants to see in a minute: a fan-out, subtasks with their own
subtasks, a step that depends on a whole subtree, a flaky step that succeeds on retry, progress
bars and parallel runners. Every task sleeps a little so the bars visibly move.
"""

from __future__ import annotations

import random
import time

from conveyor.caches import InMemoryCache
from conveyor.client import Client
from conveyor.core.context import ExecutionContext
from conveyor.core.model import Job
from conveyor.core.runner import TaskRunner
from conveyor.core.task import Task


class IngestCatalog(Task):
    """Root: finds the scenes of a day and fans out one task per scene."""

    day: str
    scenes: int

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"IngestCatalog({self.day})"
        context.progress("scenes").add(self.scenes)
        processed = context.submit_subtasks(
            [ProcessScene(self.day, i) for i in range(self.scenes)], max_retries=2
        )
        mosaic = context.submit_subtask(BuildMosaic(self.day), depends_on=processed)
        context.submit_subtask(PublishReport(self.day), depends_on=[mosaic])


class ProcessScene(Task):
    """One scene: calibrates it and splits it into tiles (subtasks of its own)."""

    day: str
    index: int

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"ProcessScene({self.index})"
        time.sleep(random.uniform(0.02, 0.08))
        if self.index % 7 == 3 and context.current_task.retry_count == 0:
            raise ConnectionError(f"archive timed out fetching scene {self.index}")
        context.progress("tiles").add(2)
        context.submit_subtasks([RenderTile(self.index, t) for t in range(2)])
        context.progress("scenes").done(1)


class RenderTile(Task):
    """A leaf: renders one tile of a scene."""

    scene: int
    tile: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(random.uniform(0.01, 0.04))
        context.job_cache[f"tile-{self.scene}-{self.tile}"] = b"png"
        context.progress("tiles").done(1)


class BuildMosaic(Task):
    """Runs only once every scene *and all its tiles* are complete."""

    day: str

    def execute(self, context: ExecutionContext) -> None:
        tiles = sum(1 for _ in context.job_cache)
        context.current_task.display = f"BuildMosaic({tiles} tiles)"
        time.sleep(0.1)


class PublishReport(Task):
    """The last step."""

    day: str

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"PublishReport({self.day})"


TASKS: list[type[Task]] = [IngestCatalog, ProcessScene, RenderTile, BuildMosaic, PublishReport]


def submit(client: Client, scenes: int = 24, day: str = "2026-11-28") -> Job:
    """Submit the demo job."""
    return client.jobs().submit(f"demo-mosaic-{day}", IngestCatalog(day, scenes))


def runners(client: Client, count: int) -> list[TaskRunner]:
    """``count`` runners sharing one cache, as separate processes would share a NAS."""
    cache = InMemoryCache()
    return [client.runner(tasks=TASKS, cache=cache) for _ in range(count)]
