"""Row mapping: one function per record type, each way, used by every part of the SQL store.

Reading (``*_from``) takes any mapping of column name → value: a SQLAlchemy ``RowMapping`` or a
psycopg ``dict_row`` (the PostgreSQL fast path, whose timestamps come back in the session's time
zone: :func:`utc` makes them UTC). Writing (``*_row``, :func:`mutable_values`) validates against
:mod:`.limits` and returns the column values of one row.

A task row keeps ``depends_on`` and ``optional_path`` as comma-separated hex ids (see
:mod:`.schema`).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from conveyor.core.identifiers import TaskIdentifier, parse_version
from conveyor.core.model import (
    AttemptRecord,
    ClaimedTask,
    Cluster,
    DispatchMessage,
    JobFacts,
    JobRecord,
    JobState,
    RunnerInfo,
    TaskError,
    TaskRecord,
    TaskState,
)
from conveyor.core.views import TaskFailure
from conveyor.store_sql.limits import (
    MAX_DISPLAY,
    MAX_INPUT_BYTES,
    MAX_KEY,
    MAX_NAME,
    MAX_SHORT_TEXT,
    MAX_SLUG,
    MAX_STATE,
    MAX_VERSION,
    check_text,
    clean_text,
)

#: Rows per INSERT statement / ids per IN list in bulk operations (below every driver's limit on
#: bound parameters).
CHUNK = 2000


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def utc(value: Any) -> Any:
    """An aware datetime in UTC (naive ones are taken as UTC); anything else unchanged."""
    if value is None or not isinstance(value, dt.datetime) or value.tzinfo is dt.UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def ids_text(ids: Sequence[uuid.UUID]) -> str:
    return ",".join(i.hex for i in ids)


def ids_parse(value: str | None) -> tuple[Any, ...]:
    if not value:
        return ()
    return tuple(uuid.UUID(hex=part) for part in value.split(","))


def error_from(type_: str | None, message: str | None, traceback: str | None) -> TaskError | None:
    if type_ is None:
        return None
    return TaskError(type_, message or "", traceback or "")


def error_values(error: TaskError | None) -> tuple[str | None, str | None, str | None]:
    """The three error columns of a row, made storable."""
    if error is None:
        return None, None, None
    return clean_text(error.type), clean_text(error.message), clean_text(error.traceback)


# -- reading -----------------------------------------------------------------------------------
def task_from(m: Mapping[Any, Any]) -> TaskRecord:
    """A task row; a row read without its ``input`` column (monitoring pages) gets ``b""``."""
    raw = m.get("input")
    return TaskRecord(
        id=m["id"],
        job_id=m["job_id"],
        parent_id=m["parent_id"],
        cluster=m["cluster"],
        identifier=TaskIdentifier(m["name"], m["version"]),
        input=b"" if raw is None else bytes(raw),
        display=m["display"],
        state=TaskState(m["state"]),
        depends_on=ids_parse(m["depends_on"]),
        max_retries=m["max_retries"],
        optional=bool(m["optional"]),
        optional_path=ids_parse(m["optional_path"]),
        timeout=m["timeout"],
        retry_count=m["retry_count"],
        crash_count=m["crash_count"],
        system_requeues=m["system_requeues"],
        attempt=m["attempt"],
        deps_open=m["deps_open"],
        open_children=m["open_children"],
        complete=bool(m["complete"]),
        subtree_failed=bool(m["subtree_failed"]),
        runner_id=m["runner_id"],
        lease_expires=utc(m["lease_expires"]),
        not_before=utc(m["not_before"]),
        created_at=utc(m["created_at"]),
        started_at=utc(m["started_at"]),
        stopped_at=utc(m["stopped_at"]),
        error=error_from(m["error_type"], m["error_message"], m["error_traceback"]),
        publish_pending=bool(m["publish_pending"]),
        publish_after=utc(m["publish_after"]),
        published_at=utc(m["published_at"]),
    )


def claimed_from(m: Mapping[Any, Any]) -> ClaimedTask:
    """A claim's ``RETURNING`` row (the claimed task's columns plus ``job_name``)."""
    return ClaimedTask(
        id=m["id"],
        job_id=m["job_id"],
        job_name=m["job_name"],
        parent_id=m["parent_id"],
        cluster=m["cluster"],
        identifier=TaskIdentifier(m["name"], m["version"]),
        input=bytes(m["input"]),
        display=m["display"],
        attempt=m["attempt"],
        retry_count=m["retry_count"],
        max_retries=m["max_retries"],
        optional_path=ids_parse(m["optional_path"]),
        timeout=m["timeout"],
        lease_expires=utc(m["lease_expires"]),
        depends_on=ids_parse(m["depends_on"]),
    )


def job_from(m: Mapping[Any, Any]) -> JobRecord:
    return JobRecord(
        id=m["id"],
        name=m["name"],
        state=JobState(m["state"]),
        submitted_at=m["submitted_at"],
        cluster=m["cluster"],
        idempotency_key=m["idempotency_key"],
        root_count=m["root_count"],
        updated_at=m["updated_at"],
    )


def facts_from(m: Mapping[Any, Any], state: str = "state") -> JobFacts:
    """The job-facts probes of a row; ``state`` names the column holding the job's state."""
    return JobFacts(
        state=JobState(m[state]),
        any_running=bool(m["any_running"]),
        any_failed=bool(m["any_failed"]),
        any_work_done=bool(m["any_work_done"]),
        all_roots_complete=bool(m["all_roots_complete"]),
    )


def cluster_from(m: Mapping[Any, Any]) -> Cluster:
    return Cluster(m["slug"], m["display_name"], bool(m["deletable"]))


def runner_from(m: Mapping[Any, Any]) -> RunnerInfo:
    return RunnerInfo(
        id=m["id"],
        cluster=m["cluster"],
        host=m["host"],
        pid=m["pid"],
        identifiers=tuple(TaskIdentifier(n, v) for n, v in json.loads(m["identifiers"])),
        started_at=utc(m["started_at"]),
        last_seen=m["last_seen"],
        state=m["state"],
        current_task=m["current_task"],
        tasks_computed=m["tasks_computed"],
        tasks_failed=m["tasks_failed"],
    )


def attempt_from(m: Mapping[Any, Any]) -> AttemptRecord:
    return AttemptRecord(
        task_id=m["task_id"],
        attempt=m["attempt"],
        runner_id=m["runner_id"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        outcome=m["outcome"],
        error=error_from(m["error_type"], m["error_message"], m["error_traceback"]),
    )


def failure_from(m: Mapping[Any, Any]) -> TaskFailure:
    """A failed task's row joined to its job's name (``job_name``)."""
    return TaskFailure(
        task_id=m["id"],
        job_id=m["job_id"],
        job_name=m["job_name"],
        cluster=m["cluster"],
        identifier=TaskIdentifier(m["name"], m["version"]),
        state=TaskState(m["state"]),
        display=m["display"],
        runner_id=m["runner_id"],
        stopped_at=utc(m["stopped_at"]),
        error=error_from(m["error_type"], m["error_message"], m["error_traceback"]),
    )


def messages_from(rows: Iterable[Mapping[Any, Any]]) -> list[DispatchMessage]:
    """Dispatch messages of outbox rows (id, job_id, cluster, name, version), in task id order."""
    messages = [
        DispatchMessage(m["id"], m["job_id"], m["cluster"], TaskIdentifier(m["name"], m["version"]))
        for m in rows
    ]
    messages.sort(key=lambda message: message.task_id)
    return messages


# -- writing -----------------------------------------------------------------------------------
def mutable_values(task: TaskRecord) -> dict[str, Any]:
    """Every column ``save_task`` writes (:data:`.schema.MUTABLE_TASK_COLUMNS`, in that order),
    validated."""
    error_type, error_message, error_traceback = error_values(task.error)
    return {
        "state": task.state.value,
        "display": check_text(task.display, "The task display", MAX_DISPLAY),
        "max_retries": task.max_retries,
        "timeout": task.timeout,
        "retry_count": task.retry_count,
        "crash_count": task.crash_count,
        "system_requeues": task.system_requeues,
        "attempt": task.attempt,
        "deps_open": task.deps_open,
        "open_children": task.open_children,
        "complete": task.complete,
        "subtree_failed": task.subtree_failed,
        "runner_id": task.runner_id,
        "lease_expires": task.lease_expires,
        "not_before": task.not_before,
        "started_at": task.started_at,
        "stopped_at": task.stopped_at,
        "error_type": error_type,
        "error_message": error_message,
        "error_traceback": error_traceback,
        "publish_pending": task.publish_pending,
        "publish_after": task.publish_after,
        "published_at": task.published_at,
    }


def task_row(task: TaskRecord) -> dict[str, Any]:
    """A task as an INSERT row, validated."""
    ident = task.identifier
    check_text(ident.name, "The task name", MAX_NAME)
    check_text(task.cluster, "The cluster slug", MAX_SLUG)
    if len(ident.version) > MAX_VERSION:
        raise ValueError(f"The task version {ident.version!r} is too long")
    if not isinstance(task.input, bytes | bytearray | memoryview):
        raise ValueError(f"A task input must be bytes, got {type(task.input).__name__}")
    if len(task.input) > MAX_INPUT_BYTES:
        raise ValueError(
            f"The task input is {len(task.input):,} bytes, over the store's limit of "
            f"{MAX_INPUT_BYTES:,} bytes"
        )
    row = mutable_values(task)
    major, minor = parse_version(ident.version)
    row.update(
        id=task.id,
        job_id=task.job_id,
        parent_id=task.parent_id,
        cluster=task.cluster,
        name=ident.name,
        version=ident.version,
        major=major,
        minor=minor,
        input=bytes(task.input),
        depends_on=ids_text(task.depends_on),
        optional=task.optional,
        optional_path=ids_text(task.optional_path),
        created_at=task.created_at,
    )
    return row


def job_row(job: JobRecord) -> dict[str, Any]:
    """A job as an INSERT row, validated."""
    check_text(job.name, "The job name", MAX_SHORT_TEXT)
    check_text(job.cluster, "The cluster slug", MAX_SLUG)
    if job.idempotency_key is not None:
        check_text(job.idempotency_key, "The idempotency key", MAX_KEY)
    return {
        "id": job.id,
        "name": job.name,
        "state": job.state.value,
        "cluster": job.cluster,
        "idempotency_key": job.idempotency_key,
        "root_count": job.root_count,
        "submitted_at": job.submitted_at,
        "updated_at": job.updated_at,
    }


def cluster_row(cluster: Cluster) -> dict[str, Any]:
    """A cluster as an INSERT row, validated."""
    check_text(cluster.slug, "The cluster slug", MAX_SLUG)
    check_text(cluster.display_name, "The cluster name", MAX_SHORT_TEXT)
    return {
        "slug": cluster.slug,
        "display_name": cluster.display_name,
        "deletable": cluster.deletable,
    }


def runner_row(runner: RunnerInfo, last_seen: dt.datetime) -> dict[str, Any]:
    """A runner as an upsert row, seen at ``last_seen``, validated."""
    check_text(runner.id, "The runner id", MAX_SHORT_TEXT)
    check_text(runner.host, "The runner host", MAX_SHORT_TEXT)
    return {
        "id": runner.id,
        "cluster": check_text(runner.cluster, "The cluster slug", MAX_SLUG),
        "host": runner.host,
        "pid": runner.pid,
        "identifiers": json.dumps([[i.name, i.version] for i in runner.identifiers]),
        "started_at": runner.started_at,
        "last_seen": last_seen,
        "state": check_text(runner.state, "The runner state", MAX_STATE),
        "current_task": runner.current_task,
        "tasks_computed": runner.tasks_computed,
        "tasks_failed": runner.tasks_failed,
    }
