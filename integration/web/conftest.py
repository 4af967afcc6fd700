"""Browser-test fixtures: Debian's Chromium driven by Playwright, and `conveyor ui` as a real
server process on a free port.

Chromium is /usr/bin/chromium (``scripts/ensure-browser.sh`` installs it). When it is missing,
CI (``CI`` set) installs it through that script and fails if that does not work; elsewhere the
tests skip with the reason. Playwright never downloads a browser here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (run scripts/ensure-browser.sh)"
    if not os.environ.get("CI"):
        pytest.skip(reason)
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "ensure-browser.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(f"{reason}; installing it failed:\n{result.stdout}\n{result.stderr}")


@contextlib.contextmanager
def ui_server(
    database_url: str, *, token: str | None = None, args: Sequence[str] = ()
) -> Iterator[str]:
    """`conveyor ui` as a subprocess (``args`` added to its command); yields its base URL
    once it answers."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    if token:
        env["CONVEYOR_UI_TOKEN"] = token
    command = [sys.executable, "-m", "conveyor", "--database-url", database_url, "ui"]
    command += ["--port", str(port), *args]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise RuntimeError(f"conveyor ui exited with {proc.returncode}:\n{output}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("conveyor ui did not answer within 30 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """A headless Chromium (Playwright's Browser), shared by the session."""
    ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        context.close()
