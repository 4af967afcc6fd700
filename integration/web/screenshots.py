"""Regenerate the README's screenshots of the web UI (docs/screenshots/*.png).

    .venv/bin/python -m integration.web.screenshots [--out docs/screenshots]

Builds a realistic embedded database (a completed and a failed report, a large thumbnail
fan-out still running on two runner threads, a job waiting for a GPU runner, a gone runner),
starts `conveyor ui` on it and photographs each page in headless Chromium.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor import Client, ExecutionContext, Task
from conveyor.config import Settings
from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import RunnerInfo
from conveyor.core.runner import RunnerSettings, TaskRunner
from integration.web.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, ui_server
from tests.web.flows import TASKS, Album, Report, Train


class Pipeline(Task):
    """A nightly tile pipeline: downloads, a resize fan-out and an index, then a publish."""

    day: str

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"Tiles {self.day}"
        regions = ("eu-west", "us-east", "ap-south")
        downloads = context.submit_subtasks([Download(r) for r in regions])
        context.progress("tiles").add(240)
        resized = context.submit_subtasks(
            [Resize(i) for i in range(240)], depends_on=downloads, max_retries=2
        )
        index = context.submit_subtask(BuildIndex(), depends_on=downloads)
        context.submit_subtask(PublishTiles(), depends_on=[*resized, index])


class Download(Task):
    region: str

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"Download {self.region}"
        if self.region == "eu-west":
            context.submit_subtasks([Verify(f"part-{i}") for i in range(3)])
        time.sleep(0.3)


class Verify(Task):
    part: str

    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = f"Verify {self.part}"


class Resize(Task):
    tile: int

    def execute(self, context: ExecutionContext) -> None:
        time.sleep(0.25)
        context.progress("tiles").done(1)


class BuildIndex(Task):
    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = "Build index"
        time.sleep(0.5)


class PublishTiles(Task):
    def execute(self, context: ExecutionContext) -> None:
        context.current_task.display = "Publish tiles"


PIPELINE = [Pipeline, Download, Verify, Resize, BuildIndex, PublishTiles]


@contextmanager
def runner_threads(client: Client, count: int, cluster: str) -> Iterator[list[TaskRunner]]:
    runners = [
        client.runner(
            cluster,
            tasks=[*TASKS, *PIPELINE],
            settings=RunnerSettings(sweep_interval=0.5, heartbeat_interval=0.5),
        )
        for _ in range(count)
    ]
    threads = [threading.Thread(target=r.run_forever, daemon=True) for r in runners]
    for t in threads:
        t.start()
    try:
        yield runners
    finally:
        for r in runners:
            r.stop()
        for t in threads:
            t.join(timeout=30)


def build(folder: Path) -> tuple[str, Client]:
    """The database of the screenshots; returns its URL and a client on it."""
    url = f"sqlite:///{folder / 'conveyor.db'}"
    client = Client(database_url=url, settings=Settings(home=folder / "home"))
    client.clusters().create("GPU machines", slug="gpu")
    client.clusters().create("Media", slug="media")
    flag = folder / "summary-input"
    done = folder / "done"
    done.touch()
    for day in (24, 25, 26, 27):
        client.jobs().submit(f"nightly-report 2026-11-{day}", Report(str(done), chunks=24))
    client.jobs().submit("nightly-report 2026-11-28", Report(str(flag), chunks=48))
    client.runner(tasks=TASKS).run_all()
    client.jobs().submit("train resnet-50", Train("resnet-50", 40), cluster="gpu")
    now = dt.datetime.now(dt.UTC)
    for runner_id, state, ago in (("gpu-worker-7f3a", "gone", 900), ("etl-3c1e", "stopped", 4000)):
        client.service.register_runner(
            RunnerInfo(
                id=runner_id,
                cluster="gpu" if runner_id.startswith("gpu") else "default",
                host="node-12" if runner_id.startswith("gpu") else "etl-host",
                pid=31337,
                identifiers=(TaskIdentifier("Train", "v0.0"),)
                if runner_id.startswith("gpu")
                else (TaskIdentifier("Report", "v1.2"), TaskIdentifier("Chunk", "v0.0")),
                started_at=now - dt.timedelta(seconds=ago + 7200),
                last_seen=now - dt.timedelta(seconds=ago),
                state=state,
                tasks_computed=1834 if state == "gone" else 96,
                tasks_failed=3 if state == "gone" else 0,
            )
        )
    return url, client


def shoot(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url, client = build(folder)
        failed = client.jobs().query(name="2026-11-28")[0]
        summarize = next(t for t in client.jobs().tasks(failed) if t.identifier.name == "Summarize")
        tiles = client.jobs().submit("tiles 2026-11-28", Pipeline("2026-11-28"))
        album = client.jobs().submit(
            "thumbnails album-42", Album("album-42", 4000, 0.03), cluster="media"
        )
        with (
            runner_threads(client, 3, "default"),
            runner_threads(client, 2, "media"),
            ui_server(url) as base,
            sync_playwright() as pw,
        ):
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            time.sleep(9)  # both under way, some tasks running: a live picture

            def snap(path: str, name: str, wait_for: str, height: int = 900) -> None:
                page.set_viewport_size({"width": 1440, "height": height})
                page.goto(f"{base}{path}")
                page.wait_for_selector(wait_for)
                page.wait_for_timeout(1200)
                page.screenshot(path=str(out / f"{name}.png"))
                print(f"saved {out / name}.png")

            snap("/", "dashboard", "#dash-stats .stat")
            snap("/jobs", "jobs", "#jobs-body tr.link")
            snap(f"/jobs/{tiles.id}", "job-running", "#graph svg", 1180)
            snap(f"/jobs/{album.id}", "job-fan-out", "#graph svg")
            snap(f"/jobs/{failed.id}?task={summarize.id}", "job-failed", "#traceback", 1340)
            snap("/runners?all=true", "runners", "#runners-body table")
            snap("/clusters", "clusters", ".cluster-card")
            browser.close()
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    shoot(parser.parse_args().out)


if __name__ == "__main__":
    main()
