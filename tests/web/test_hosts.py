"""DNS rebinding: the UI answers only requests that name an allowed host, and its actions
refuse opaque origins (``Origin: null``).

A rebinding page is same-origin with the UI in the browser's eyes, so it sends a foreign
``Host`` *and* a matching foreign ``Origin``: only the Host allow-list stops it, for reads as
well as actions.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.web import create_app
from conveyor.web.hosts import (
    LOOPBACK_HOSTS,
    allowed_host_pattern,
    default_allowed_hosts,
    host_allowed,
    host_name,
)
from tests.web.conftest import World, make_world

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

REBINDING = {"Host": "evil.example:5555", "Origin": "http://evil.example:5555"}


def state_of(world: World, job_id: object) -> str:
    response = world.http.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["state"])


def failed_tasks(world: World) -> int:
    page = world.http.get(f"/api/jobs/{world.failed.id}/tasks", params={"state": "FAILED"})
    assert page.status_code == 200, page.text
    return len(page.json()["items"])


def test_a_rebinding_page_cannot_retry_or_cancel(fresh: World) -> None:
    job = fresh.failed.id
    fresh.flag.touch()  # a retry would succeed: only the refusal keeps the job FAILED
    for action in ("retry", "cancel"):
        response = fresh.http.post(f"/api/jobs/{job}/{action}", headers=REBINDING)
        assert response.status_code == 400, response.text
        detail = response.json()["detail"]
        assert "Host 'evil.example' is not allowed" in detail
        assert "--allowed-host evil.example" in detail and "CONVEYOR_UI_ALLOWED_HOSTS" in detail
    assert state_of(fresh, job) == "FAILED"
    assert failed_tasks(fresh) == 1  # nothing was requeued
    assert fresh.client.jobs().find(job).state.value == "FAILED"


def test_a_rebinding_page_cannot_read_the_api_pages_or_metrics(world: World) -> None:
    for path in ("/api/jobs", f"/api/tasks/{world.failed.id}", "/", "/metrics", "/api/docs"):
        response = world.http.get(path, headers=REBINDING)
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"] == "application/json"
        assert "evil.example" in response.json()["detail"]
        assert "nightly report" not in response.text


@pytest.mark.parametrize("host", ["", "a:b:c", "[::1", "evil.example:port"])
def test_a_malformed_host_header_is_refused(world: World, host: str) -> None:
    response = world.http.get("/api/jobs", headers={"Host": host})
    assert response.status_code == 400, response.text
    assert "Invalid or missing Host header" in response.json()["detail"]


def test_origin_null_cannot_act_without_sec_fetch_site(world: World) -> None:
    url = f"/api/jobs/{world.failed.id}/cancel"
    for origin in ("null", "NULL"):
        response = world.http.post(url, headers={"Origin": origin})
        assert response.status_code == 403, response.text
        assert "opaque origin (Origin: null" in response.json()["detail"]
    assert state_of(world, world.failed.id) == "FAILED"


@pytest.mark.parametrize(
    "host", ["127.0.0.1:5555", "localhost:5555", "LOCALHOST", "localhost.:80", "[::1]:5555"]
)
def test_loopback_names_are_allowed_by_default(world: World, host: str) -> None:
    response = world.http.get("/api/jobs", headers={"Host": host})
    assert response.status_code == 200, response.text


def test_ip_addresses_are_allowed_because_rebinding_needs_a_name(world: World) -> None:
    for host in ("10.1.2.3:5555", "[fd00::7]:5555", "192.168.0.9"):
        assert world.http.get("/healthz", headers={"Host": host}).status_code == 200


def test_same_origin_actions_on_loopback_names_work(fresh: World) -> None:
    job = fresh.failed.id
    headers = {"Host": "localhost:5555", "Origin": "http://localhost:5555"}
    response = fresh.http.post(f"/api/jobs/{job}/cancel", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "CANCELED"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[World, TestClient]]:
    """A world and a second client on a UI that also answers to the proxy's names."""
    for world in make_world(tmp_path):
        hosts = (*LOOPBACK_HOSTS, "conveyor.example.com", "*.ops.example.org")
        app = create_app(world.client.service, allowed_hosts=hosts)
        with TestClient(app, base_url="https://conveyor.example.com") as http:
            yield world, http


def test_an_extra_allowed_host_is_accepted_for_reads_and_actions(
    proxied: tuple[World, TestClient],
) -> None:
    world, http = proxied
    assert http.get("/api/jobs").status_code == 200
    origin = {"Origin": "https://conveyor.example.com"}
    response = http.post(f"/api/jobs/{world.failed.id}/cancel", headers=origin)
    assert response.status_code == 200, response.text
    assert state_of(world, world.failed.id) == "CANCELED"
    assert http.get("/api/jobs", headers={"Host": "ui.ops.example.org"}).status_code == 200
    assert http.get("/api/jobs", headers={"Host": "ops.example.org"}).status_code == 400
    assert http.get("/api/jobs", headers={"Host": "evil.example"}).status_code == 400


def test_host_parsing_and_matching() -> None:
    assert host_name("Example.COM:8080") == "example.com"
    assert host_name("[::1]:5555") == "::1" and host_name("[::1]") == "::1"
    assert host_name(None) is None and host_name("::1") is None
    assert host_allowed("a.b.example", ["*.example"]) and not host_allowed("example", ["*.x"])
    assert host_allowed("anything", ["*"]) and not host_allowed("localhost.evil", ["localhost"])


def test_allow_list_entries_are_checked_and_normalised() -> None:
    assert allowed_host_pattern(" Conveyor.Example.COM. ") == "conveyor.example.com"
    assert allowed_host_pattern("[::1]") == "::1" and allowed_host_pattern("*") == "*"
    with pytest.raises(ValueError, match="is a URL"):
        allowed_host_pattern("https://conveyor.example.com")
    with pytest.raises(ValueError, match="has a port"):
        allowed_host_pattern("conveyor.example.com:443")
    with pytest.raises(ValueError, match="not a host name"):
        allowed_host_pattern("a*.example.com")
    assert default_allowed_hosts("0.0.0.0") == ("localhost", "127.0.0.1", "::1")
    assert default_allowed_hosts("ui.lan", ["x.example", "ui.lan"]) == (
        *LOOPBACK_HOSTS,
        "ui.lan",
        "x.example",
    )
