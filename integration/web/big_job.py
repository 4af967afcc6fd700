"""A job of 10^5 tasks and the reads the UI's pages make of it.

Shared by integration/web/test_scale.py (which checks what makes each read cheap, from the
database's own plans) and bench/ui_reads.py (which times the same reads). One job: a root
whose execution fanned out ``fan_out`` subtasks (60 % computed, 100 running, one failed, the
rest queued) and a sink depending on all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor import Client
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import JobRecord, JobState, TaskError, TaskRecord, TaskState

FAN_OUT = 100_000
LEAF = TaskIdentifier("Thumbnail", "v1.4")
#: ``get(label, path, params)``: one read of the UI's API, its JSON body (None for text).
Get = Callable[[str, str, dict[str, Any]], Any]


def build_big_job(client: Client, fan_out: int = FAN_OUT) -> JobId:
    """Write the job straight into the store (one transaction); its id."""
    now = client.reads.store_now()
    job_id = JobId(uuid7())
    root_id = TaskId(uuid7())
    computed, running = int(fan_out * 0.6), 100

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
        open_children=fan_out + 1,
        started_at=now,
        stopped_at=now,
    )
    children = []
    for i in range(fan_out):
        extra: dict[str, Any]
        if i < computed:
            state, extra = TaskState.COMPUTED, {"complete": True, "attempt": 1}
        elif i < computed + running:
            state, extra = TaskState.RUNNING, {"attempt": 1, "runner_id": "r1"}
        elif i == computed + running:
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
        deps_open=fan_out - computed,
    )
    record = JobRecord(job_id, "big album", JobState.RUNNING, now, root_count=1)

    def write(tx: Any) -> None:
        tx.jobs.insert_job(record)
        tx.tasks.insert_tasks([root, *children, sink])

    client.service.store.run(write)
    return job_id


def read_the_pages(get: Get, job_id: JobId, fan_out: int = FAN_OUT) -> None:
    """Every read the pages make of the job, named, with checks that each answered the job
    (so a test or a benchmark never measures an empty answer)."""
    computed = int(fan_out * 0.6)
    job = get("job", f"/api/jobs/{job_id}", {})
    assert job["tasks"]["total"] == fan_out + 2
    roots = get("roots", f"/api/jobs/{job_id}/graph", {})
    [root] = roots["nodes"]
    assert root["children"] == fan_out + 1
    parent = root["task"]["id"]
    level = get("fan-out level", f"/api/jobs/{job_id}/graph", {"parent": parent})
    assert level["total"] == fan_out + 1 and len(level["nodes"]) == 2
    group = next(n for n in level["nodes"] if n["kind"] == "group")
    assert group["count"] == fan_out and group["states"]["FAILED"] == 1
    assert level["edges"] == [{"source": "g:Thumbnail@v1.4", "target": level["nodes"][1]["key"]}]
    page: dict[str, Any] = {"parent": parent, "name": "Thumbnail", "version": "v1.4"}
    first = get("group page 1", f"/api/jobs/{job_id}/tasks", {**page, "limit": 100})
    after = {**page, "limit": 100, "after": first["next_after"]}
    deep = get("group page deep", f"/api/jobs/{job_id}/tasks", after)
    assert len(deep["items"]) == 100
    failed = get("failed tasks", f"/api/jobs/{job_id}/tasks", {"state": "FAILED"})
    assert len(failed["items"]) == 1
    sink = get("sink detail", f"/api/tasks/{level['nodes'][1]['task']['id']}", {})
    assert sink["depends_on_count"] == fan_out and len(sink["depends_on"]) == 100
    dashboard = get("dashboard", "/api/dashboard", {})
    [queue] = dashboard["queues"]
    assert (queue["ready"], queue["running"]) == (fan_out - computed - 101, 100)
    get("jobs list", "/api/jobs", {})
    get("metrics", "/metrics", {})
