"""The web UI in a real headless Chromium against `conveyor ui` running as a server process.

A job fails (its Summarize step raises); a person opens the dashboard, finds the job, reads
the traceback, presses Retry and confirms, and watches the task run again (a runner thread in
this process, on the same database) and the job complete. With a token, actions without it
are refused and work once it is given.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conveyor import Client, Job, JobState
from conveyor.config import Settings
from conveyor.core.runner import RunnerSettings
from integration.web.conftest import ui_server
from tests.web.flows import TASKS, Report


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conveyor.db'}"
    return str(request.getfixturevalue("postgres_empty_database"))


def failed_job(url: str, folder: Path) -> tuple[Client, Job, Path]:
    client = Client(database_url=url, settings=Settings(home=folder / "home"))
    flag = folder / "summary-input"
    job = client.jobs().submit("nightly report", Report(str(flag), chunks=30))
    client.runner(tasks=TASKS).run_all()
    assert client.jobs().find(job).state is JobState.FAILED
    return client, job, flag


@contextmanager
def runner_thread(client: Client) -> Iterator[None]:
    runner = client.runner(
        tasks=TASKS, settings=RunnerSettings(sweep_interval=0.5, heartbeat_interval=0.5)
    )
    thread = threading.Thread(target=runner.run_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        runner.stop()
        thread.join(timeout=30)


def test_a_failed_job_is_found_read_and_retried_until_it_completes(
    page: Any, database_url: str, tmp_path: Path
) -> None:
    client, job, flag = failed_job(database_url, tmp_path)
    with ui_server(database_url) as base:
        page.goto(base + "/")
        expect(page.locator("#dash-stats")).to_contain_text("Failed jobs")
        expect(page.locator("#dash-failures")).to_contain_text("Summarize")
        expect(page.locator("#dash-failures")).to_contain_text("ValueError")

        page.click("a[data-nav=jobs]")
        row = page.locator(f"tr[data-href='/jobs/{job.id}']")
        expect(row).to_contain_text("nightly report")
        expect(row).to_contain_text("31 / 32")
        row.click()

        head = page.locator("#job-head")
        expect(head.locator(".pill")).to_have_text("FAILED")
        expect(page.locator("#graph svg")).to_be_visible()
        chunks = page.locator("#graph [data-group='g:Chunk@v0.0']")
        expect(chunks).to_contain_text("30 \u00d7 Chunk")
        page.locator("#job-failures li").first.click()
        traceback = page.locator("#traceback")
        expect(traceback).to_contain_text("Traceback (most recent call last)")
        expect(traceback).to_contain_text("ValueError: the summary input")

        flag.touch()  # the next attempt finds its input
        with runner_thread(client):
            page.click("#retry-button")
            expect(page.locator("#confirm-dialog")).to_be_visible()
            expect(page.locator("#confirm-text")).to_contain_text("1 failed task")
            page.click("#confirm-yes")
            expect(head.locator(".pill")).to_have_text("COMPLETED", timeout=30_000)
        expect(page.locator("#job-failures")).to_be_hidden()
        attempts = page.locator("#panel table.attempts")
        expect(attempts).to_contain_text("computed")
        expect(attempts).to_contain_text("failed")
        assert client.jobs().find(job).state is JobState.COMPLETED
    client.close()


def test_actions_need_the_token_when_the_ui_has_one(page: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    client, job, _ = failed_job(url, tmp_path)
    with ui_server(url, token="s3cret") as base:
        cancel = f"{base}/api/jobs/{job.id}/cancel"
        assert httpx.post(cancel).status_code == 401
        assert httpx.post(cancel, headers={"Authorization": "Bearer nope"}).status_code == 403
        assert httpx.get(f"{base}/api/jobs/{job.id}").json()["state"] == "FAILED"

        page.goto(f"{base}/jobs/{job.id}")
        expect(page.locator("#token-button")).to_be_visible()
        page.click("#cancel-button")
        page.click("#confirm-yes")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        page.fill("#token-input", "wrong")
        page.click("#token-save")
        expect(page.locator("#toast")).to_contain_text("Wrong token")
        expect(dialog).to_be_visible()  # asked again
        page.fill("#token-input", "s3cret")
        page.click("#token-save")
        expect(page.locator("#job-head .pill")).to_have_text("CANCELED")
        assert client.jobs().find(job).state is JobState.CANCELED
        # The token is kept for the tab: the next action does not ask again. Retry resumes
        # the canceled job with its failed task queued again (no runner here: STARTED).
        page.click("#retry-button")
        page.click("#confirm-yes")
        expect(page.locator("#job-head .pill")).to_have_text("STARTED")
        expect(dialog).to_be_hidden()
    client.close()


def test_pages_render_without_errors(page: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    client, job, _ = failed_job(url, tmp_path)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    with ui_server(url) as base, runner_thread(client):
        for path, selector, text in (
            ("/", "#dash-jobs", "failed"),
            ("/jobs?state=FAILED", "#jobs-body", "nightly report"),
            (f"/jobs/{job.id}", "#graph", "Report"),
            ("/runners", "#runners-body", "online"),
            ("/clusters", "#clusters-body", "Default"),
        ):
            page.goto(base + path)
            expect(page.locator(selector)).to_contain_text(text)
        # A group of many tasks opens as a paginated list; a task in it opens its details.
        page.goto(f"{base}/jobs/{job.id}")
        page.locator("#graph [data-group='g:Chunk@v0.0']").click()
        panel = page.locator("#panel")
        expect(panel).to_contain_text("30 \u00d7 Chunk")
        panel.locator("tr.link").first.click()
        expect(panel).to_contain_text("Attempt history")
        # A task id in the search box finds its job.
        task = next(t for t in client.jobs().tasks(job) if t.parent_id is not None)
        page.goto(f"{base}/jobs")
        page.fill("#jobs-q", str(task.id))
        expect(page.locator("#jobs-body tr.link")).to_have_count(1)
    assert errors == []
    client.close()
