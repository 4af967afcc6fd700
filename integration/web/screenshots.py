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

from conveyor import Client
from conveyor.config import Settings
from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import RunnerInfo
from conveyor.core.runner import RunnerSettings, TaskRunner
from integration.web.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, ui_server
from tests.web.flows import TASKS, Album, Report, Train


@contextmanager
def runner_threads(client: Client, count: int) -> Iterator[list[TaskRunner]]:
    runners = [
        client.runner(
            tasks=TASKS,
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
        album = client.jobs().submit("thumbnails album-42", Album("album-42", 4000, 0.03))
        with runner_threads(client, 3), ui_server(url) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            time.sleep(8)  # some thumbnails done, some running: a live picture

            def snap(path: str, name: str, wait_for: str, full: bool = False) -> None:
                page.goto(f"{base}{path}")
                page.wait_for_selector(wait_for)
                page.wait_for_timeout(1200)
                page.screenshot(path=str(out / f"{name}.png"), full_page=full)
                print(f"saved {out / name}.png")

            snap("/", "dashboard", "#dash-stats .stat")
            snap("/jobs", "jobs", "#jobs-body tr.link")
            snap(f"/jobs/{album.id}", "job-running", "#graph svg")
            snap(f"/jobs/{failed.id}?task={summarize.id}", "job-failed", "#traceback", True)
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
