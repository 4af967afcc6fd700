"""The JSON API's response models (they make the OpenAPI document) and their conversions."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from conveyor.core.model import (
    DONE_STATES,
    INACTIVE_JOB_STATES,
    RETRYABLE_JOB_STATES,
    AttemptRecord,
    Job,
    JobRecord,
    JobState,
    RunnerInfo,
    TaskError,
    TaskRecord,
    TaskState,
)
from conveyor.core.views import ChildGroup, TaskFailure

#: Inputs larger than this are sent as truncated text rather than parsed JSON.
MAX_INPUT_SHOWN = 256 * 1024
#: Dependency ids listed in a task's detail (a sink of a 10^5 fan-in names them all).
MAX_DEPENDENCIES_SHOWN = 100


class FieldError(BaseModel):
    """One invalid parameter."""

    location: str = Field(description="Where: e.g. 'query.state' or 'path.job_id'.")
    message: str


class Problem(BaseModel):
    """An error: ``detail`` says what is wrong and how to fix it."""

    detail: str
    errors: list[FieldError] | None = None


class Identifier(BaseModel):
    name: str
    version: str


class ErrorInfo(BaseModel):
    type: str
    message: str
    traceback: str | None = Field(
        default=None, description="Only in task details (never in lists)."
    )


class TaskCounts(BaseModel):
    total: int
    #: COMPUTED, SKIPPED and FAILED_OPTIONAL tasks.
    done: int
    by_state: dict[str, int]


class JobSummary(BaseModel):
    id: str
    name: str
    state: JobState
    cluster: str
    submitted_at: dt.datetime
    updated_at: dt.datetime | None
    tasks: TaskCounts


class JobPage(BaseModel):
    items: list[JobSummary]
    next_before: str | None = Field(
        description="Pass as ``before`` to get the next (older) page; null on the last page."
    )


class ProgressBar(BaseModel):
    label: str | None
    total: int
    done: int


class ExecutionStatsInfo(BaseModel):
    first_task_started_at: dt.datetime | None
    last_task_stopped_at: dt.datetime | None
    compute_seconds: float
    elapsed_seconds: float
    parallelism: float


class JobDetail(JobSummary):
    root_count: int
    progress: list[ProgressBar]
    stats: ExecutionStatsInfo
    can_retry: bool
    can_cancel: bool


class TaskSummary(BaseModel):
    id: str
    job_id: str
    parent_id: str | None
    identifier: Identifier
    state: TaskState
    ready: bool = Field(description="QUEUED with every dependency complete.")
    display: str
    cluster: str
    optional: bool
    depends_on_count: int
    retry_count: int
    max_retries: int
    crash_count: int
    attempt: int
    runner: str | None
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None
    error: ErrorInfo | None


class TaskPage(BaseModel):
    items: list[TaskSummary]
    next_after: str | None = Field(
        description="Pass as ``after`` to get the next page; null on the last page."
    )


class AttemptInfo(BaseModel):
    attempt: int
    runner: str
    started_at: dt.datetime
    ended_at: dt.datetime | None
    seconds: float | None
    outcome: str
    error: ErrorInfo | None


class ChildGroupInfo(BaseModel):
    identifier: Identifier
    state: TaskState
    count: int


class TaskDetail(TaskSummary):
    job_name: str
    timeout: float | None
    complete: bool
    input: Any = Field(default=None, description="The input as JSON (when it parses).")
    input_text: str | None = Field(
        default=None, description="The input as text when it is not JSON or too large."
    )
    input_bytes: int
    input_truncated: bool
    depends_on: list[str] = Field(description=f"At most {MAX_DEPENDENCIES_SHOWN} ids.")
    attempts: list[AttemptInfo]
    children: list[ChildGroupInfo]
    children_total: int


class GraphNode(BaseModel):
    key: str = Field(description="'t:<task id>' for a task, 'g:<name>@<version>' for a group.")
    kind: Literal["task", "group"]
    task: TaskSummary | None = None
    children: int = Field(default=0, description="Subtasks of a task node.")
    identifier: Identifier
    count: int = Field(description="1 for a task, the number of tasks for a group.")
    states: dict[str, int]


class GraphEdge(BaseModel):
    source: str
    target: str


class GraphLevel(BaseModel):
    """One level of a job's task tree: the roots, or the children of one task."""

    job_id: str
    parent_id: str | None
    total: int
    nodes: list[GraphNode]
    edges: list[GraphEdge]


class RunnerState(BaseModel):
    id: str
    cluster: str
    host: str
    pid: int
    state: str
    identifiers: list[Identifier]
    started_at: dt.datetime
    last_seen: dt.datetime
    seconds_since_seen: float
    current_task: str | None
    tasks_computed: int
    tasks_failed: int


class QueueInfo(BaseModel):
    cluster: str
    identifier: Identifier
    ready: int = Field(description="Dispatchable tasks (queue depth).")
    running: int
    consumers: int = Field(description="Online runners of the cluster that can run them.")


class ClusterInfo(BaseModel):
    slug: str
    name: str
    deletable: bool
    runners_online: int
    ready: int
    running: int
    queues: list[QueueInfo]
    identifiers: list[Identifier] = Field(
        description="Identifiers the cluster's online runners registered."
    )


class FailureInfo(BaseModel):
    task_id: str
    job_id: str
    job_name: str
    cluster: str
    identifier: Identifier
    state: TaskState
    display: str
    runner: str | None
    stopped_at: dt.datetime | None
    error: ErrorInfo | None


class ThroughputPoint(BaseModel):
    minute: dt.datetime
    computed: int
    failed: int = Field(description="Attempts that failed, timed out or expired.")
    other: int = Field(description="Attempts given back (shutdown, unknown identifier).")


class Throughput(BaseModel):
    points: list[ThroughputPoint]
    tasks_per_second: float = Field(description="Attempts ended per second, last ~60 s.")


class Dashboard(BaseModel):
    now: dt.datetime
    jobs_by_state: dict[str, int]
    jobs_total: int
    runners_online: int
    runners_by_cluster: dict[str, int]
    throughput: Throughput
    queues: list[QueueInfo]
    failures: list[FailureInfo]


class ActionResult(BaseModel):
    job_id: str
    state: JobState
    requeued: int | None = Field(default=None, description="Retry: FAILED tasks requeued.")
    message: str


class AuthInfo(BaseModel):
    token_required: bool = Field(description="Whether retry/cancel need a bearer token.")


class Enums(BaseModel):
    """The states the API uses, in display order: the UI reads them instead of copying them."""

    job_states: list[str] = Field(description="Every job state.")
    task_states: list[str] = Field(description="Every stored task state.")
    terminal_job_states: list[str] = Field(
        description="Job states in which no task is dispatched (the job is over)."
    )


def enums_info() -> Enums:
    return Enums(
        job_states=[s.value for s in JobState],
        task_states=[s.value for s in TaskState],
        terminal_job_states=[s.value for s in JobState if s in INACTIVE_JOB_STATES],
    )


# -- conversions --------------------------------------------------------------------------------
def counts_info(counts: dict[TaskState, int]) -> TaskCounts:
    return TaskCounts(
        total=sum(counts.values()),
        done=sum(n for s, n in counts.items() if s in DONE_STATES),
        by_state={s.value: n for s, n in sorted(counts.items())},
    )


def job_summary(job: JobRecord, counts: dict[TaskState, int]) -> JobSummary:
    return JobSummary(
        id=str(job.id),
        name=job.name,
        state=job.state,
        cluster=job.cluster,
        submitted_at=job.submitted_at,
        updated_at=job.updated_at,
        tasks=counts_info(counts),
    )


def job_detail(record: JobRecord, job: Job) -> JobDetail:
    stats = job.execution_stats
    return JobDetail(
        **job_summary(record, stats.tasks_by_state).model_dump(),
        root_count=record.root_count,
        progress=[ProgressBar(label=p.label, total=p.total, done=p.done) for p in job.progress],
        stats=ExecutionStatsInfo(
            first_task_started_at=stats.first_task_started_at,
            last_task_stopped_at=stats.last_task_stopped_at,
            compute_seconds=stats.compute_time.total_seconds(),
            elapsed_seconds=stats.elapsed_time.total_seconds(),
            parallelism=stats.parallelism,
        ),
        can_retry=job.state in RETRYABLE_JOB_STATES,
        can_cancel=job.state not in (JobState.COMPLETED, JobState.CANCELED),
    )


def error_info(error: TaskError | None, traceback: bool = False) -> ErrorInfo | None:
    if error is None:
        return None
    return ErrorInfo(
        type=error.type,
        message=error.message,
        traceback=error.traceback if traceback else None,
    )


def identifier(task: Any) -> Identifier:
    return Identifier(name=task.identifier.name, version=task.identifier.version)


def task_summary(task: TaskRecord) -> TaskSummary:
    return TaskSummary(
        id=str(task.id),
        job_id=str(task.job_id),
        parent_id=str(task.parent_id) if task.parent_id else None,
        identifier=identifier(task),
        state=task.state,
        ready=task.ready,
        display=task.display,
        cluster=task.cluster,
        optional=task.is_optional,
        depends_on_count=len(task.depends_on),
        retry_count=task.retry_count,
        max_retries=task.max_retries,
        crash_count=task.crash_count,
        attempt=task.attempt,
        runner=task.runner_id,
        started_at=task.started_at,
        stopped_at=task.stopped_at,
        error=error_info(task.error),
    )


def attempt_info(attempt: AttemptRecord) -> AttemptInfo:
    seconds = None
    if attempt.ended_at is not None:
        seconds = max((attempt.ended_at - attempt.started_at).total_seconds(), 0.0)
    return AttemptInfo(
        attempt=attempt.attempt,
        runner=attempt.runner_id,
        started_at=attempt.started_at,
        ended_at=attempt.ended_at,
        seconds=seconds,
        outcome=attempt.outcome,
        error=error_info(attempt.error, traceback=True),
    )


def decode_input(raw: bytes) -> tuple[Any, str | None, bool]:
    """(JSON value, text, truncated): JSON when it parses, else (a prefix of) the text."""
    if len(raw) <= MAX_INPUT_SHOWN:
        text = raw.decode("utf-8", "replace")
        try:
            return json.loads(text), None, False
        except ValueError:
            return None, text, False
    return None, raw[:MAX_INPUT_SHOWN].decode("utf-8", "replace"), True


def task_detail(
    task: TaskRecord,
    job_name: str,
    attempts: list[AttemptRecord],
    children: list[ChildGroup],
) -> TaskDetail:
    value, text, truncated = decode_input(task.input)
    summary = task_summary(task).model_dump()
    summary["error"] = error_info(task.error, traceback=True)
    return TaskDetail(
        **summary,
        job_name=job_name,
        timeout=task.timeout,
        complete=task.complete,
        input=value,
        input_text=text,
        input_bytes=len(task.input),
        input_truncated=truncated,
        depends_on=[str(d) for d in task.depends_on[:MAX_DEPENDENCIES_SHOWN]],
        attempts=[attempt_info(a) for a in attempts],
        children=[
            ChildGroupInfo(
                identifier=Identifier(name=g.identifier.name, version=g.identifier.version),
                state=g.state,
                count=g.count,
            )
            for g in children
        ],
        children_total=sum(g.count for g in children),
    )


def runner_state(runner: RunnerInfo, now: dt.datetime) -> RunnerState:
    return RunnerState(
        id=runner.id,
        cluster=runner.cluster,
        host=runner.host,
        pid=runner.pid,
        state=runner.state,
        identifiers=[Identifier(name=i.name, version=i.version) for i in runner.identifiers],
        started_at=runner.started_at,
        last_seen=runner.last_seen,
        seconds_since_seen=max((now - runner.last_seen).total_seconds(), 0.0),
        current_task=str(runner.current_task) if runner.current_task else None,
        tasks_computed=runner.tasks_computed,
        tasks_failed=runner.tasks_failed,
    )


def failure_info(failure: TaskFailure) -> FailureInfo:
    return FailureInfo(
        task_id=str(failure.task_id),
        job_id=str(failure.job_id),
        job_name=failure.job_name,
        cluster=failure.cluster,
        identifier=identifier(failure),
        state=failure.state,
        display=failure.display,
        runner=failure.runner_id,
        stopped_at=failure.stopped_at,
        error=error_info(failure.error),
    )
