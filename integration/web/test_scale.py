"""The UI's API stays fast on a job of 10^5 tasks (PostgreSQL and SQLite).

One job: a root whose execution fanned out 100,000 subtasks (most computed, some running,
one failed, the rest queued) and a sink depending on all of them. Every read the pages make
(job header, graph levels, pages of a group, the dashboard, the job list, /metrics) answers
within a bound far below what reading the whole job would take, because each is an aggregate
or a keyset page served by an index.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Client
from conveyor.config import Settings
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import JobRecord, JobState, TaskError, TaskRecord, TaskState
from conveyor.web import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

FAN_OUT = 100_000
#: Seconds one API call may take here (a full read of the job takes several times more).
BOUND = 1.5

LEAF = TaskIdentifier("Thumbnail", "v1.4")


@pytest.fixture(params=["postgresql", "sqlite"])
def big_job(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Client, JobId]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    else:
        url = str(request.getfixturevalue("postgres_empty_database"))
    client = Client(database_url=url, settings=Settings(home=tmp_path / "home"))
    service = client.service
    now = service.store_now()
    job_id = JobId(uuid7())
    root_id = TaskId(uuid7())

    def task(identifier: TaskIdentifier, parent: TaskId | None, **kw: Any) -> TaskRecord:
        return TaskRecord(
            id=kw.pop("id", None) or TaskId(uuid7()),
            job_id=job_id,
            parent_id=parent,
            cluster="default",
            identifier=identifier,
            input=b'{"path":"album/00001.jpg"}',
            display=identifier.name,
            created_at=now,
            **kw,
        )

    root = task(
        TaskIdentifier("Album", "v2.1"),
        None,
        id=root_id,
        state=TaskState.COMPUTED,
        attempt=1,
        open_children=FAN_OUT + 1,
        started_at=now,
        stopped_at=now,
    )
    children = []
    for i in range(FAN_OUT):
        if i < 60_000:
            state, extra = TaskState.COMPUTED, {"complete": True, "attempt": 1}
        elif i < 60_100:
            state, extra = TaskState.RUNNING, {"attempt": 1, "runner_id": "r1"}
        elif i == 60_100:
            state = TaskState.FAILED
            extra = {"attempt": 1, "error": TaskError("ValueError", "bad pixel", "Traceback…")}
        else:
            state, extra = TaskState.QUEUED, {}
        stamps = {"started_at": now, "stopped_at": now} if state is not TaskState.QUEUED else {}
        children.append(task(LEAF, root_id, state=state, **extra, **stamps))
    sink = task(
        TaskIdentifier("Publish", "v0.0"),
        root_id,
        depends_on=tuple(c.id for c in children),
        deps_open=FAN_OUT - 60_000,
    )
    record = JobRecord(job_id, "big album", JobState.RUNNING, now, root_count=1)

    def write(tx: Any) -> None:
        tx.insert_job(record)
        tx.insert_tasks([root, *children, sink])

    service.store.run(write)
    try:
        yield client, job_id
    finally:
        client.close()


def timed(http: TestClient, path: str, **params: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    response = http.get(path, params=params)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, response.text
    return elapsed, response.json() if "json" in response.headers["content-type"] else None


def test_every_read_of_the_pages_is_fast_on_a_job_of_100k_tasks(
    big_job: tuple[Client, JobId],
) -> None:
    client, job_id = big_job
    timings: dict[str, float] = {}
    with TestClient(create_app(client.service), base_url="http://127.0.0.1:5555") as http:
        timed(http, "/api/dashboard")  # warm up connections and caches
        timings["job"], job = timed(http, f"/api/jobs/{job_id}")
        assert job["tasks"]["total"] == FAN_OUT + 2
        timings["roots"], roots = timed(http, f"/api/jobs/{job_id}/graph")
        [root] = roots["nodes"]
        assert root["children"] == FAN_OUT + 1
        parent = root["task"]["id"]
        timings["fan-out level"], level = timed(http, f"/api/jobs/{job_id}/graph", parent=parent)
        assert level["total"] == FAN_OUT + 1 and len(level["nodes"]) == 2
        group = next(n for n in level["nodes"] if n["kind"] == "group")
        assert group["count"] == FAN_OUT and group["states"]["FAILED"] == 1
        assert level["edges"] == [
            {"source": "g:Thumbnail@v1.4", "target": level["nodes"][1]["key"]}
        ]
        page: dict[str, Any] = {"parent": parent, "name": "Thumbnail", "version": "v1.4"}
        timings["group page 1"], first = timed(http, f"/api/jobs/{job_id}/tasks", **page, limit=100)
        timings["group page deep"], deep = timed(
            http, f"/api/jobs/{job_id}/tasks", **page, limit=100, after=first["next_after"]
        )
        assert len(deep["items"]) == 100
        timings["failed tasks"], failed = timed(http, f"/api/jobs/{job_id}/tasks", state="FAILED")
        assert len(failed["items"]) == 1
        timings["sink detail"], sink = timed(http, f"/api/tasks/{level['nodes'][1]['task']['id']}")
        assert sink["depends_on_count"] == FAN_OUT and len(sink["depends_on"]) == 100
        timings["dashboard"], dashboard = timed(http, "/api/dashboard")
        [queue] = dashboard["queues"]
        assert (queue["ready"], queue["running"]) == (FAN_OUT - 60_101, 100)
        timings["jobs list"], _ = timed(http, "/api/jobs")
        timings["metrics"], _ = timed(http, "/metrics")
    slow = {name: round(t, 3) for name, t in timings.items() if t > BOUND}
    print({name: round(t, 3) for name, t in timings.items()})
    assert slow == {}, f"slower than {BOUND} s: {slow}"
