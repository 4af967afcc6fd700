"""The JSON API under ``/api``: every page of the UI reads its data here.

Reads are open (the UI binds to localhost by default); the two actions, retry and cancel, are
POSTs that need ``Authorization: Bearer <token>`` when the UI was started with a token, and are
refused when they come from another site (``Origin`` / ``Sec-Fetch-Site``) or an opaque origin
(``Origin: null``), so a web page cannot drive them through the user's browser. Requests with
a foreign ``Host`` (DNS rebinding) never reach these routes (:mod:`conveyor.web.hosts`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator

from conveyor.core.action_messages import cancel_message, retry_message
from conveyor.core.errors import JobNotFoundError, TaskNotFoundError
from conveyor.core.identifiers import SLUG_PATTERN, JobId, TaskId, TaskIdentifier
from conveyor.core.model import JobQuery, JobRecord, JobState, TaskState
from conveyor.core.reads import ReadService
from conveyor.core.service import Orchestrator
from conveyor.core.views import TaskQuery
from conveyor.web.graph import build_level
from conveyor.web.metrics import ThroughputTracker, consumers_of
from conveyor.web.models import (
    ActionResult,
    AuthInfo,
    ClusterInfo,
    Dashboard,
    Enums,
    FailureInfo,
    GraphLevel,
    Identifier,
    JobDetail,
    JobPage,
    Problem,
    QueueInfo,
    RunnerState,
    TaskDetail,
    TaskPage,
    Throughput,
    ThroughputPoint,
    enums_info,
    failure_info,
    job_detail,
    job_summary,
    runner_state,
    task_detail,
    task_summary,
)

#: No NUL characters (a database cannot store or compare them).
TEXT = r"^[^\x00]*$"
VERSION = r"^v\d+\.\d+$"
BAD_REQUEST: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Contradictory or unusable parameters"},
    422: {"model": Problem, "description": "Invalid parameters"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **BAD_REQUEST,
    404: {"model": Problem, "description": "No such job, task or cluster"},
}
ACTION: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    401: {"model": Problem, "description": "A token is required (Authorization: Bearer …)"},
    403: {"model": Problem, "description": "Wrong token, or a request from another site"},
}


def _iso_only(value: Any) -> Any:
    """Reject what is not an ISO 8601 date-time (pydantic would take '0.5' as a timestamp)."""
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("expected an ISO 8601 date-time such as 2026-11-28T09:00:00Z")
    return value


IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_only)]

bearer = HTTPBearer(
    auto_error=False,
    description="The token given to `conveyor ui --token` (only actions need it).",
)


def service_of(request: Request) -> Orchestrator:
    service: Orchestrator = request.app.state.service
    return service


def reads_of(request: Request) -> ReadService:
    reads: ReadService = request.app.state.reads
    return reads


Reads = Annotated[ReadService, Depends(reads_of)]


Service = Annotated[Orchestrator, Depends(service_of)]


def require_action_allowed(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Same-origin requests only; with a configured token, the right bearer token.

    ``Origin: null`` is refused: browsers send it from sandboxed frames, ``file:`` pages and
    after cross-site redirects, i.e. exactly when they will not say where a request comes
    from (older browsers send no ``Sec-Fetch-Site`` either). The ``Host`` itself was checked
    against the allow-list before any route ran (:mod:`conveyor.web.hosts`).
    """
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise HTTPException(403, "Actions are refused from other sites")
    origin = request.headers.get("origin")
    if origin is not None and origin.strip().lower() == "null":
        raise HTTPException(
            403,
            "Actions are refused from an opaque origin (Origin: null, sent by sandboxed "
            "frames, file: pages and cross-site redirects): open the UI itself",
        )
    if origin:
        host = origin.split("://", 1)[-1]
        if host != request.headers.get("host"):
            raise HTTPException(403, f"Actions are refused from another origin ({origin})")
    token: str | None = request.app.state.token
    if token is None:
        return
    if credentials is None:
        raise HTTPException(
            401,
            "This action needs the UI's token: send 'Authorization: Bearer <token>' "
            "(the token given to `conveyor ui --token` or CONVEYOR_UI_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
        raise HTTPException(403, "Wrong token")


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _job(reads: ReadService, job_id: uuid.UUID) -> JobRecord:
    try:
        return reads.job_record(JobId(job_id))
    except JobNotFoundError:
        raise HTTPException(404, f"No job with id {job_id}") from None


def _throughput(reads: ReadService, tracker: ThroughputTracker, minutes: int) -> Throughput:
    now = reads.store_now()
    points, rate = tracker.points(reads, now, minutes)
    return Throughput(
        points=[ThroughputPoint(minute=m, computed=c, failed=f, other=o) for m, c, f, o in points],
        tasks_per_second=round(rate, 3),
    )


def _queues(reads: ReadService) -> list[QueueInfo]:
    runners = reads.list_runners()
    return [
        QueueInfo(
            cluster=q.cluster,
            identifier=Identifier(name=q.identifier.name, version=q.identifier.version),
            ready=q.ready,
            running=q.running,
            consumers=consumers_of(q, runners),
        )
        for q in reads.queue_stats()
    ]


router = APIRouter(prefix="/api")


@router.get("/auth", response_model=AuthInfo, tags=["ui"])
def auth(request: Request) -> AuthInfo:
    """Whether actions need a token."""
    return AuthInfo(token_required=request.app.state.token is not None)


@router.get("/enums", response_model=Enums, tags=["ui"])
def enums() -> Enums:
    """Job and task states, so the UI never copies them."""
    return enums_info()


@router.get("/dashboard", response_model=Dashboard, tags=["overview"])
def dashboard(request: Request, reads: Reads) -> Dashboard:
    """Everything the dashboard shows, in one call."""
    now = reads.store_now()
    jobs = reads.count_jobs_by_state()
    runners = reads.list_runners()
    by_cluster: dict[str, int] = {}
    for r in runners:
        by_cluster[r.cluster] = by_cluster.get(r.cluster, 0) + 1
    return Dashboard(
        now=now,
        jobs_by_state={s.value: jobs.get(s, 0) for s in JobState},
        jobs_total=sum(jobs.values()),
        runners_online=len(runners),
        runners_by_cluster=by_cluster,
        throughput=_throughput(reads, request.app.state.throughput, 30),
        queues=_queues(reads),
        failures=[failure_info(f) for f in reads.recent_failures(8)],
    )


@router.get("/throughput", response_model=Throughput, responses=BAD_REQUEST, tags=["overview"])
def throughput(
    request: Request,
    reads: Reads,
    minutes: Annotated[int, Query(ge=1, le=60, description="Minutes to cover.")] = 30,
) -> Throughput:
    """Task attempts ended per minute (computed / failed / other), oldest first."""
    return _throughput(reads, request.app.state.throughput, minutes)


@router.get("/queues", response_model=list[QueueInfo], tags=["overview"])
def queues(reads: Reads) -> list[QueueInfo]:
    """Dispatchable (queue depth) and running tasks per cluster, name and version."""
    return _queues(reads)


@router.get("/failures", response_model=list[FailureInfo], responses=BAD_REQUEST, tags=["overview"])
def failures(
    reads: Reads,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[FailureInfo]:
    """Tasks that failed for good, most recent first."""
    return [failure_info(f) for f in reads.recent_failures(limit)]


@router.get("/jobs", response_model=JobPage, responses=NOT_FOUND, tags=["jobs"])
def list_jobs(
    reads: Reads,
    state: Annotated[
        list[JobState] | None, Query(description="Repeat to match any of several states.")
    ] = None,
    name: Annotated[
        str | None,
        Query(max_length=1024, pattern=TEXT, description="Case-insensitive substring."),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=1024,
            pattern=TEXT,
            description="Search: a job id, a task id (finds its job) or a name substring.",
        ),
    ] = None,
    cluster: Annotated[str | None, Query(max_length=63, pattern=SLUG_PATTERN.pattern)] = None,
    since: Annotated[IsoDateTime | None, Query(description="Submitted at or after.")] = None,
    until: Annotated[IsoDateTime | None, Query(description="Submitted before.")] = None,
    before: Annotated[
        uuid.UUID | None, Query(description="Continue after this job id (keyset pagination).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobPage:
    """Jobs newest first, filtered; pages continue with ``before=next_before``."""
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise HTTPException(400, "'since' must be earlier than 'until'")
    if cluster is not None and cluster not in {c.slug for c in reads.all_clusters()}:
        raise HTTPException(404, f"No cluster {cluster!r}")
    search = (q or "").strip()
    if search:
        try:
            wanted: uuid.UUID | None = uuid.UUID(search)
        except ValueError:
            wanted = None
        if wanted is not None:
            task = reads.get_task(TaskId(wanted))
            try:
                record = reads.job_record(task.job_id if task else JobId(wanted))
            except JobNotFoundError:
                return JobPage(items=[], next_before=None)
            counts = reads.task_counts_by_job([record.id])
            return JobPage(items=[job_summary(record, counts[record.id])], next_before=None)
        name = search
    records = reads.query_jobs(
        JobQuery(
            states=tuple(state or ()),
            name=name or None,
            cluster=cluster,
            submitted_after=since,
            submitted_before=until,
            before_id=JobId(before) if before else None,
            limit=limit,
        )
    )
    counts = reads.task_counts_by_job([r.id for r in records])
    return JobPage(
        items=[job_summary(r, counts[r.id]) for r in records],
        next_before=str(records[-1].id) if len(records) == limit else None,
    )


@router.get("/jobs/{job_id}", response_model=JobDetail, responses=NOT_FOUND, tags=["jobs"])
def get_job(job_id: uuid.UUID, reads: Reads) -> JobDetail:
    """A job: state, task counts, progress bars and execution statistics."""
    record = _job(reads, job_id)
    return job_detail(record, reads.find_job(record.id))


@router.get("/jobs/{job_id}/graph", response_model=GraphLevel, responses=NOT_FOUND, tags=["jobs"])
def job_graph(
    job_id: uuid.UUID,
    reads: Reads,
    parent: Annotated[
        uuid.UUID | None, Query(description="A task of the job; default: the job's roots.")
    ] = None,
) -> GraphLevel:
    """One level of the task tree as a graph: tasks, groups of many tasks of one identifier
    (with counts per state) and dependency edges."""
    record = _job(reads, job_id)
    parent_id = TaskId(parent) if parent else None
    if parent_id is not None:
        task = reads.get_task(parent_id)
        if task is None or task.job_id != record.id:
            raise HTTPException(404, f"No task {parent} in job {job_id}")
    return build_level(reads, record.id, parent_id)


@router.get("/jobs/{job_id}/tasks", response_model=TaskPage, responses=NOT_FOUND, tags=["jobs"])
def job_tasks(
    job_id: uuid.UUID,
    reads: Reads,
    parent: Annotated[uuid.UUID | None, Query(description="Children of this task.")] = None,
    roots: Annotated[bool, Query(description="Only the job's root tasks.")] = False,
    state: Annotated[list[TaskState] | None, Query()] = None,
    name: Annotated[str | None, Query(min_length=1, max_length=256, pattern=TEXT)] = None,
    version: Annotated[str | None, Query(max_length=32, pattern=VERSION)] = None,
    after: Annotated[uuid.UUID | None, Query(description="Continue after this task id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TaskPage:
    """A page of the job's tasks in creation order, filtered; continue with ``after``."""
    record = _job(reads, job_id)
    if (name is None) != (version is None):
        raise HTTPException(400, "Filter by identifier with both 'name' and 'version'")
    if roots and parent is not None:
        raise HTTPException(400, "Pass either 'roots' or 'parent', not both")
    query = TaskQuery(
        record.id,
        parent_id=TaskId(parent) if parent else None,
        roots=roots,
        states=tuple(state or ()),
        identifier=TaskIdentifier(name, version) if name and version else None,
        after=TaskId(after) if after else None,
        limit=limit,
        include_input=False,
    )
    found = reads.query_tasks(query)
    return TaskPage(
        items=[task_summary(t) for t in found],
        next_after=str(found[-1].id) if len(found) == limit else None,
    )


@router.get("/tasks/{task_id}", response_model=TaskDetail, responses=NOT_FOUND, tags=["jobs"])
def get_task(task_id: uuid.UUID, reads: Reads) -> TaskDetail:
    """A task with its input, error and traceback, attempt history and subtask counts."""
    task = reads.get_task(TaskId(task_id))
    if task is None:
        raise HTTPException(404, f"No task with id {task_id}")
    try:
        job = reads.job_record(task.job_id)
    except JobNotFoundError:
        raise TaskNotFoundError(f"No task with id {task_id}") from None
    return task_detail(
        task,
        job.name,
        reads.task_attempts(task.id),
        reads.children_summary(task.job_id, task.id),
    )


@router.post(
    "/jobs/{job_id}/retry",
    response_model=ActionResult,
    responses=ACTION,
    dependencies=[Depends(require_action_allowed)],
    tags=["actions"],
)
def retry_job(job_id: uuid.UUID, service: Service, reads: Reads) -> ActionResult:
    """Requeue the FAILED tasks of a FAILED or CANCELED job and resume it."""
    record = _job(reads, job_id)
    requeued = service.retry_job(record.id)
    state = reads.job_record(record.id).state
    message = retry_message(record.state, requeued, state)
    return ActionResult(job_id=str(record.id), state=state, requeued=requeued, message=message)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=ActionResult,
    responses=ACTION,
    dependencies=[Depends(require_action_allowed)],
    tags=["actions"],
)
def cancel_job(job_id: uuid.UUID, service: Service, reads: Reads) -> ActionResult:
    """Stop dispatching the job's queued tasks (running ones finish). No-op when COMPLETED."""
    record = _job(reads, job_id)
    state = service.cancel_job(record.id)
    return ActionResult(job_id=str(record.id), state=state, message=cancel_message(record.state))


@router.get("/runners", response_model=list[RunnerState], responses=BAD_REQUEST, tags=["runners"])
def list_runners(
    reads: Reads,
    all: Annotated[bool, Query(description="Include stopped and gone runners.")] = False,
) -> list[RunnerState]:
    """Runners, most recently seen first."""
    now = reads.store_now()
    return [runner_state(r, now) for r in reads.list_runners(include_gone=all)]


@router.get("/clusters", response_model=list[ClusterInfo], tags=["runners"])
def list_clusters(reads: Reads) -> list[ClusterInfo]:
    """Every cluster with its queues (ready/running per identifier and version), runners
    online and the identifiers they registered."""
    runners = reads.list_runners()
    queues = _queues(reads)
    found = []
    for cluster in reads.all_clusters():
        mine = [q for q in queues if q.cluster == cluster.slug]
        online = [r for r in runners if r.cluster == cluster.slug]
        idents = sorted({i for r in online for i in r.identifiers})
        found.append(
            ClusterInfo(
                slug=cluster.slug,
                name=cluster.display_name,
                deletable=cluster.deletable,
                runners_online=len(online),
                ready=sum(q.ready for q in mine),
                running=sum(q.running for q in mine),
                queues=mine,
                identifiers=[Identifier(name=i.name, version=i.version) for i in idents],
            )
        )
    return found
