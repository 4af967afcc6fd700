"""DNS rebinding against the real `conveyor ui` server: Chromium told that foreign names
resolve to 127.0.0.1 (``--host-resolver-rules``, what a rebinding DNS server achieves) gets
nothing under a foreign name, and works under a name allowed with ``--allowed-host`` (the
reverse-proxy case), actions included; raw requests with a foreign Host and Origin change
nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from conveyor import JobState
from conveyor.core.model import TaskState
from integration.web.conftest import CHROMIUM, CHROMIUM_ARGS, ui_server
from integration.web.test_browser import failed_job

NAMES = ("evil.example", "conveyor.example.com")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'conveyor.db'}"
    return str(request.getfixturevalue("postgres_empty_database"))


@pytest.fixture
def rebound_page(chromium: Any) -> Iterator[Any]:
    """A page of a second Chromium (through the session's Playwright: host resolver rules
    are launch flags) for which every name of ``NAMES`` resolves to 127.0.0.1."""
    rules = ", ".join(f"MAP {name} 127.0.0.1" for name in NAMES)
    browser = chromium.browser_type.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules={rules}"],
    )
    try:
        page = browser.new_page()
        page.set_default_timeout(15_000)
        yield page
    finally:
        browser.close()


def test_a_foreign_host_and_origin_change_nothing(database_url: str, tmp_path: Path) -> None:
    client, job, flag = failed_job(database_url, tmp_path)
    flag.touch()
    with ui_server(database_url) as base:
        port = base.rsplit(":", 1)[1]
        evil = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
        for action in ("retry", "cancel"):
            response = httpx.post(f"{base}/api/jobs/{job.id}/{action}", headers=evil)
            assert response.status_code == 400, response.text
            assert "'evil.example' is not allowed" in response.json()["detail"]
        read = httpx.get(f"{base}/api/jobs/{job.id}", headers=evil)
        assert read.status_code == 400 and "nightly report" not in read.text
        null = httpx.post(f"{base}/api/jobs/{job.id}/cancel", headers={"Origin": "null"})
        assert null.status_code == 403 and "Origin: null" in null.json()["detail"]
        assert httpx.get(f"{base}/api/jobs/{job.id}").json()["state"] == "FAILED"
    record = client.jobs().find(job)
    assert record.state is JobState.FAILED
    assert record.execution_stats.tasks_by_state.get(TaskState.FAILED) == 1  # not requeued
    client.close()


def test_the_browser_gets_nothing_under_a_foreign_name_and_works_under_an_allowed_one(
    rebound_page: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    client, job, _ = failed_job(url, tmp_path)
    page = rebound_page
    with ui_server(url, args=["--allowed-host", "conveyor.example.com"]) as base:
        port = base.rsplit(":", 1)[1]
        refused = page.goto(f"http://evil.example:{port}/jobs/{job.id}")
        assert refused is not None and refused.status == 400
        assert "'evil.example' is not allowed" in page.content()
        assert "nightly report" not in page.content()

        page.goto(f"http://conveyor.example.com:{port}/jobs/{job.id}")
        head = page.locator("#job-head")
        expect(head.locator(".pill")).to_have_text("FAILED")
        page.click("#cancel-button")
        page.click("#confirm-yes")
        expect(head.locator(".pill")).to_have_text("CANCELED")
        assert client.jobs().find(job).state is JobState.CANCELED

        page.goto(f"http://localhost:{port}/")  # loopback names work by default
        expect(page.locator("#dash-stats")).to_contain_text("Failed jobs")
    client.close()
