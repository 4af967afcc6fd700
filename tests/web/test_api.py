"""Every endpoint of the web UI's JSON API on a real SQLite store with real runners: happy
paths, and bad ids / bad filters answered with a 4xx and a message that says what is wrong."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

import pytest

from conveyor import JobState
from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import RunnerInfo
from conveyor.web import graph
from tests.web.conftest import World, run_all

UNKNOWN = "01a2241b-0000-7000-8000-000000000000"


def ok(world: World, path: str, **params: Any) -> Any:
    response = world.http.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def problem(world: World, path: str, status: int, method: str = "GET", **kw: Any) -> str:
    response = world.http.request(method, path, **kw)
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


def root_of(world: World, job_id: str) -> dict[str, Any]:
    page = ok(world, f"/api/jobs/{job_id}/tasks", roots="true")
    assert len(page["items"]) == 1
    item: dict[str, Any] = page["items"][0]
    return item


# -- overview ------------------------------------------------------------------------------------
def test_dashboard_counts_jobs_failures_and_throughput(world: World) -> None:
    d = ok(world, "/api/dashboard")
    assert d["jobs_by_state"]["FAILED"] == 1 and d["jobs_by_state"]["COMPLETED"] == 1
    assert d["jobs_total"] == 2 and d["runners_online"] == 0
    assert set(d["jobs_by_state"]) == {s.value for s in JobState}
    [failure] = d["failures"]
    assert failure["job_name"] == "nightly report" and failure["state"] == "FAILED"
    assert failure["error"]["type"] == "ValueError" and "missing" in failure["error"]["message"]
    assert failure["error"]["traceback"] is None  # tracebacks only in task details
    points = d["throughput"]["points"]
    assert len(points) == 30 and points == sorted(points, key=lambda p: p["minute"])
    assert sum(p["computed"] for p in points) == 6 + 21  # both jobs' computed attempts
    assert sum(p["failed"] for p in points) == 1
    assert d["throughput"]["tasks_per_second"] > 0
    assert d["queues"] == []


def test_throughput_window_and_bad_windows(world: World) -> None:
    assert len(ok(world, "/api/throughput", minutes=5)["points"]) == 5
    assert "minutes" in problem(world, "/api/throughput?minutes=0", 422)
    assert "less than or equal to 60" in problem(world, "/api/throughput?minutes=61", 422)


def test_failures_list_and_limit(world: World) -> None:
    [failure] = ok(world, "/api/failures")
    assert failure["identifier"] == {"name": "Summarize", "version": "v0.0"}
    assert failure["job_id"] == str(world.failed.id)
    assert "limit" in problem(world, "/api/failures?limit=0", 422)
    assert "integer" in problem(world, "/api/failures?limit=many", 422)


def test_auth_says_whether_a_token_is_needed(world: World, guarded: World) -> None:
    assert ok(world, "/api/auth") == {"token_required": False}
    assert ok(guarded, "/api/auth") == {"token_required": True}


# -- jobs ----------------------------------------------------------------------------------------
def test_jobs_newest_first_with_task_counts(world: World) -> None:
    page = ok(world, "/api/jobs")
    assert [j["name"] for j in page["items"]] == ["nightly report", "weekly report"]
    failed = page["items"][0]
    assert failed["state"] == "FAILED" and failed["cluster"] == "default"
    assert failed["tasks"] == {
        "total": 22,
        "done": 21,
        "by_state": {"COMPUTED": 21, "FAILED": 1},
    }
    assert page["next_before"] is None


def test_jobs_filters_and_keyset_pages(world: World) -> None:
    assert [j["name"] for j in ok(world, "/api/jobs", state="FAILED")["items"]] == [
        "nightly report"
    ]
    both = ok(world, "/api/jobs", params=None, state=["FAILED", "COMPLETED"])
    assert len(both["items"]) == 2
    assert [j["name"] for j in ok(world, "/api/jobs", name="WEEK")["items"]] == ["weekly report"]
    assert ok(world, "/api/jobs", cluster="default")["items"]
    first = ok(world, "/api/jobs", limit=1)
    assert first["next_before"] == first["items"][0]["id"]
    second = ok(world, "/api/jobs", limit=1, before=first["next_before"])
    assert [j["name"] for j in second["items"]] == ["weekly report"]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert ok(world, "/api/jobs", since=later)["items"] == []
    assert len(ok(world, "/api/jobs", until=later)["items"]) == 2


def test_jobs_search_by_job_id_task_id_or_name(world: World) -> None:
    by_job = ok(world, "/api/jobs", q=str(world.completed.id))["items"]
    assert [j["id"] for j in by_job] == [str(world.completed.id)]
    root = root_of(world, str(world.failed.id))
    by_task = ok(world, "/api/jobs", q=root["id"])["items"]
    assert [j["id"] for j in by_task] == [str(world.failed.id)]
    assert ok(world, "/api/jobs", q=UNKNOWN)["items"] == []
    assert [j["name"] for j in ok(world, "/api/jobs", q="nightly")["items"]] == ["nightly report"]


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("state=DONE", 422, "query.state"),
        ("before=not-a-uuid", 422, "query.before"),
        ("limit=0", 422, "query.limit"),
        ("limit=501", 422, "query.limit"),
        ("since=yesterday", 422, "query.since"),
        ("cluster=Not%20A%20Slug", 422, "query.cluster"),
        ("cluster=gpu", 404, "No cluster 'gpu'"),
        ("since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", 400, "'since' must be earlier"),
        ("name=a%00b", 422, "query.name"),
    ],
)
def test_bad_job_filters_are_refused_with_a_message(
    world: World, query: str, status: int, words: str
) -> None:
    assert words in problem(world, f"/api/jobs?{query}", status)


def test_job_detail_with_progress_and_stats(world: World) -> None:
    job = ok(world, f"/api/jobs/{world.failed.id}")
    assert job["name"] == "nightly report" and job["state"] == "FAILED"
    assert job["root_count"] == 1
    assert job["progress"] == [{"label": "chunks", "total": 20, "done": 20}]
    assert job["stats"]["compute_seconds"] > 0 and job["stats"]["first_task_started_at"]
    assert job["can_retry"] is True and job["can_cancel"] is True
    done = ok(world, f"/api/jobs/{world.completed.id}")
    assert done["state"] == "COMPLETED" and not done["can_retry"] and not done["can_cancel"]


def test_bad_and_unknown_job_ids(world: World) -> None:
    assert "valid UUID" in problem(world, "/api/jobs/123", 422)
    assert f"No job with id {UNKNOWN}" == problem(world, f"/api/jobs/{UNKNOWN}", 404)
    assert "No job" in problem(world, f"/api/jobs/{UNKNOWN}/graph", 404)
    assert "No job" in problem(world, f"/api/jobs/{UNKNOWN}/tasks", 404)


# -- the task graph and task pages ------------------------------------------------------------
def test_graph_levels_group_large_fan_outs_and_draw_dependencies(world: World) -> None:
    roots = ok(world, f"/api/jobs/{world.failed.id}/graph")
    [root] = roots["nodes"]
    assert roots["total"] == 1 and roots["parent_id"] is None and roots["edges"] == []
    assert root["kind"] == "task" and root["task"]["identifier"]["name"] == "Report"
    assert root["children"] == 21
    level = ok(world, f"/api/jobs/{world.failed.id}/graph", parent=root["task"]["id"])
    assert level["total"] == 21
    kinds = {n["key"]: n for n in level["nodes"]}
    chunks = kinds["g:Chunk@v0.0"]
    assert chunks["kind"] == "group" and chunks["count"] == 20
    assert chunks["states"] == {"COMPUTED": 20}
    [summarize] = [n for n in level["nodes"] if n["kind"] == "task"]
    assert summarize["task"]["state"] == "FAILED" and summarize["task"]["error"]["type"]
    assert level["edges"] == [{"source": "g:Chunk@v0.0", "target": summarize["key"]}]


def test_a_level_larger_than_the_limit_is_built_from_samples(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph, "LEVEL_LIMIT", 5)
    root = root_of(world, str(world.failed.id))
    level = ok(world, f"/api/jobs/{world.failed.id}/graph", parent=root["id"])
    assert level["total"] == 21
    assert {n["key"] for n in level["nodes"] if n["kind"] == "group"} == {"g:Chunk@v0.0"}
    assert [n["task"]["identifier"]["name"] for n in level["nodes"] if n["kind"] == "task"] == [
        "Summarize"
    ]
    assert len(level["edges"]) == 1 and level["edges"][0]["source"] == "g:Chunk@v0.0"


def test_graph_of_an_unknown_or_foreign_parent(world: World) -> None:
    other_root = root_of(world, str(world.completed.id))
    detail = problem(world, f"/api/jobs/{world.failed.id}/graph?parent={other_root['id']}", 404)
    assert "No task" in detail
    assert "query.parent" in problem(world, f"/api/jobs/{world.failed.id}/graph?parent=x", 422)


def test_task_pages_filter_and_continue(world: World) -> None:
    job = world.failed.id
    root = root_of(world, str(job))
    assert root["identifier"] == {"name": "Report", "version": "v1.2"}
    kids = ok(world, f"/api/jobs/{job}/tasks", parent=root["id"], limit=500)["items"]
    assert len(kids) == 21
    first = ok(
        world, f"/api/jobs/{job}/tasks", parent=root["id"], name="Chunk", version="v0.0", limit=8
    )
    assert len(first["items"]) == 8 and first["next_after"] == first["items"][-1]["id"]
    rest = ok(
        world,
        f"/api/jobs/{job}/tasks",
        parent=root["id"],
        name="Chunk",
        version="v0.0",
        limit=50,
        after=first["next_after"],
    )
    assert len(rest["items"]) == 12 and rest["next_after"] is None
    ids = [t["id"] for t in first["items"] + rest["items"]]
    assert ids == sorted(ids, key=uuid.UUID)
    failed = ok(world, f"/api/jobs/{job}/tasks", state="FAILED")["items"]
    assert [t["identifier"]["name"] for t in failed] == ["Summarize"]
    assert failed[0]["error"]["message"].startswith("the summary input")


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("name=Chunk", 400, "both 'name' and 'version'"),
        ("roots=true&parent=" + UNKNOWN, 400, "either 'roots' or 'parent'"),
        ("name=Chunk&version=1.0", 422, "query.version"),
        ("state=DONE", 422, "query.state"),
        ("after=nope", 422, "query.after"),
        ("limit=0", 422, "query.limit"),
    ],
)
def test_bad_task_filters(world: World, query: str, status: int, words: str) -> None:
    assert words in problem(world, f"/api/jobs/{world.failed.id}/tasks?{query}", status)


def test_task_detail_has_the_traceback_input_and_attempts(world: World) -> None:
    [failed] = ok(world, f"/api/jobs/{world.failed.id}/tasks", state="FAILED")["items"]
    task = ok(world, f"/api/tasks/{failed['id']}")
    assert task["job_name"] == "nightly report" and task["state"] == "FAILED"
    assert task["input"] == str(world.flag)  # a single-field task's input is the value
    assert task["input_truncated"] is False and task["input_bytes"] > 0
    assert task["error"]["type"] == "ValueError"
    assert "Traceback" in task["error"]["traceback"] and "flows.py" in task["error"]["traceback"]
    [attempt] = task["attempts"]
    assert attempt["outcome"] == "failed" and attempt["seconds"] >= 0
    assert attempt["error"]["traceback"]
    assert task["depends_on_count"] == 20 and len(task["depends_on"]) == 20
    root = root_of(world, str(world.failed.id))
    parent = ok(world, f"/api/tasks/{root['id']}")
    assert parent["input"] == {"flag": str(world.flag), "chunks": 20, "sleep": 0.0}
    assert parent["children_total"] == 21
    assert {(c["identifier"]["name"], c["state"], c["count"]) for c in parent["children"]} == {
        ("Chunk", "COMPUTED", 20),
        ("Summarize", "FAILED", 1),
    }


def test_bad_and_unknown_task_ids(world: World) -> None:
    assert "path.task_id" in problem(world, "/api/tasks/xyz", 422)
    assert problem(world, f"/api/tasks/{UNKNOWN}", 404) == f"No task with id {UNKNOWN}"


# -- actions -------------------------------------------------------------------------------------
def test_retry_requeues_the_failed_task_and_the_job_completes(fresh: World) -> None:
    job = fresh.failed.id
    fresh.flag.touch()
    response = fresh.http.post(f"/api/jobs/{job}/retry")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["requeued"] == 1 and "Requeued 1 failed task" in body["message"]
    assert body["state"] in ("STARTED", "SUBMITTED", "RUNNING")
    run_all(fresh.client)
    assert ok(fresh, f"/api/jobs/{job}")["state"] == "COMPLETED"
    again = fresh.http.post(f"/api/jobs/{job}/retry").json()
    assert again["requeued"] == 0 and "Nothing to retry" in again["message"]
    summarize = ok(fresh, f"/api/jobs/{job}/tasks", name="Summarize", version="v0.0")["items"]
    detail = ok(fresh, f"/api/tasks/{summarize[0]['id']}")
    assert [a["outcome"] for a in detail["attempts"]] == ["failed", "computed"]


def test_cancel_stops_a_job_and_retry_resumes_it(fresh: World) -> None:
    client = fresh.client
    from tests.web.flows import Report

    job = client.jobs().submit("to cancel", Report(str(fresh.flag), chunks=2))
    response = fresh.http.post(f"/api/jobs/{job.id}/cancel")
    assert response.status_code == 200 and response.json()["state"] == "CANCELED"
    assert ok(fresh, f"/api/jobs/{job.id}")["can_cancel"] is False
    done = fresh.http.post(f"/api/jobs/{fresh.completed.id}/cancel").json()
    assert done["state"] == "COMPLETED" and "Nothing to cancel" in done["message"]
    resumed = fresh.http.post(f"/api/jobs/{job.id}/retry").json()
    assert resumed["requeued"] == 0 and resumed["state"] == "SUBMITTED"


def test_actions_on_bad_or_unknown_jobs_and_no_state_changing_get(world: World) -> None:
    assert "No job" in problem(world, f"/api/jobs/{UNKNOWN}/retry", 404, "POST")
    assert "No job" in problem(world, f"/api/jobs/{UNKNOWN}/cancel", 404, "POST")
    assert "path.job_id" in problem(world, "/api/jobs/nope/cancel", 422, "POST")
    assert world.http.get(f"/api/jobs/{world.failed.id}/retry").status_code == 405
    assert world.http.get(f"/api/jobs/{world.failed.id}/cancel").status_code == 405
    assert ok(world, f"/api/jobs/{world.failed.id}")["state"] == "FAILED"


def test_actions_need_the_token_when_one_is_set(guarded: World) -> None:
    url = f"/api/jobs/{guarded.failed.id}/cancel"
    assert "needs the UI's token" in problem(guarded, url, 401, "POST")
    response = guarded.http.post(url)
    assert response.headers["www-authenticate"] == "Bearer"
    wrong = {"Authorization": "Bearer nope"}
    assert problem(guarded, url, 403, "POST", headers=wrong) == "Wrong token"
    basic = {"Authorization": "Basic czNjcmV0"}
    assert "token" in problem(guarded, url, 401, "POST", headers=basic)
    assert ok(guarded, f"/api/jobs/{guarded.failed.id}")["state"] == "FAILED"
    right = {"Authorization": "Bearer s3cret"}
    response = guarded.http.post(url, headers=right)
    assert response.status_code == 200 and response.json()["state"] == "CANCELED"
    assert guarded.http.get("/api/jobs").status_code == 200  # reads stay open


def test_actions_from_another_site_are_refused(world: World) -> None:
    url = f"/api/jobs/{world.failed.id}/cancel"
    evil = {"Origin": "http://evil.example", "Host": "127.0.0.1:5555"}
    assert "another origin" in problem(world, url, 403, "POST", headers=evil)
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert "other sites" in problem(world, url, 403, "POST", headers=cross)
    assert ok(world, f"/api/jobs/{world.failed.id}")["state"] == "FAILED"


# -- runners and clusters --------------------------------------------------------------------------
def register(world: World, runner_id: str, state: str, cluster: str = "default") -> None:
    now = dt.datetime.now(dt.UTC)
    world.client.service.register_runner(
        RunnerInfo(
            id=runner_id,
            cluster=cluster,
            host="web-test",
            pid=4242,
            identifiers=(TaskIdentifier("Chunk", "v0.3"), TaskIdentifier("Report", "v1.2")),
            started_at=now,
            last_seen=now,
            state=state,
        )
    )


def test_runners_live_and_gone(fresh: World) -> None:
    register(fresh, "runner-a", "online")
    register(fresh, "runner-b", "gone")
    [online] = ok(fresh, "/api/runners")
    assert online["id"] == "runner-a" and online["cluster"] == "default"
    assert online["identifiers"] == [
        {"name": "Chunk", "version": "v0.3"},
        {"name": "Report", "version": "v1.2"},
    ]
    assert online["seconds_since_seen"] >= 0 and online["current_task"] is None
    everyone = ok(fresh, "/api/runners", all="true")
    assert {r["id"]: r["state"] for r in everyone} == {"runner-a": "online", "runner-b": "gone"}
    assert "query.all" in problem(fresh, "/api/runners?all=maybe", 422)


def test_clusters_show_queue_depth_and_consumers(fresh: World) -> None:
    from tests.web.flows import Report

    fresh.client.clusters().create("gpu")
    fresh.client.jobs().submit("queued", Report(str(fresh.flag), chunks=1))
    fresh.client.jobs().submit("on gpu", Report(str(fresh.flag)), cluster="gpu")
    register(fresh, "runner-a", "online")
    clusters = {c["slug"]: c for c in ok(fresh, "/api/clusters")}
    assert set(clusters) == {"default", "gpu"}
    default = clusters["default"]
    assert default["runners_online"] == 1 and default["ready"] == 1 and default["running"] == 0
    assert default["queues"] == [
        {
            "cluster": "default",
            "identifier": {"name": "Report", "version": "v1.2"},
            "ready": 1,
            "running": 0,
            "consumers": 1,
        }
    ]
    assert {i["name"] for i in default["identifiers"]} == {"Chunk", "Report"}
    gpu = clusters["gpu"]
    assert gpu["ready"] == 1 and gpu["queues"][0]["consumers"] == 0 and gpu["name"] == "gpu"
    assert len(ok(fresh, "/api/queues")) == 2
    dashboard = ok(fresh, "/api/dashboard")
    assert dashboard["runners_online"] == 1 and dashboard["runners_by_cluster"] == {"default": 1}


# -- pages ----------------------------------------------------------------------------------
def test_pages_and_assets_are_served_by_the_app(world: World) -> None:
    for path in ("/", "/jobs", f"/jobs/{world.failed.id}", "/runners", "/clusters"):
        response = world.http.get(path)
        assert response.status_code == 200 and '<main id="main">' in response.text
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert world.http.get(asset).status_code == 200
    html = world.http.get("/").text
    assert "http://" not in html and "https://" not in html  # no CDN
    assert world.http.get("/api/openapi.json").json()["info"]["title"] == "conveyor"
    assert world.http.get("/nowhere").status_code == 404


def test_the_api_serves_concurrent_readers(world: World) -> None:
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(5):
                ok(world, "/api/dashboard")
                ok(world, f"/api/jobs/{world.failed.id}/graph")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
