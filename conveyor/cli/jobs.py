"""Job commands: submit (with --wait), jobs list/show/watch/diagram, retry, cancel."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
import uuid

import click
from rich.console import Group
from rich.live import Live
from rich.panel import Panel

from conveyor.cli._app import App, pass_app
from conveyor.cli._imports import load_task
from conveyor.cli._render import (
    follow_job,
    is_terminal,
    job_header,
    job_json,
    jobs_table,
    mermaid,
    task_json,
    task_tree,
)
from conveyor.client import job_id_of
from conveyor.core.action_messages import cancel_message, retry_message
from conveyor.core.context import new_task_spec
from conveyor.core.errors import ClusterNotFoundError
from conveyor.core.identifiers import (
    JobId,
    TaskId,
    TaskIdentifier,
    validate_name,
    validate_slug,
)
from conveyor.core.ids import uuid7
from conveyor.core.model import Job, JobQuery, JobState, NewTask, TaskState
from conveyor.core.serialization import InputDecodeError, deserialize_task


class JobIdType(click.ParamType):  # type: ignore[type-arg]
    name = "JOB_ID"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> JobId:
        if isinstance(value, uuid.UUID):
            return JobId(value)
        try:
            return job_id_of(str(value))
        except ValueError:
            self.fail(
                f"{value!r} is not a job id (a UUID like 01a223f3-1c7a-713c-8f90-…)", param, ctx
            )


JOB_ID = JobIdType()


def _read_input(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw == "-":
        return sys.stdin.read()
    if raw.startswith("@"):
        try:
            with open(raw[1:], encoding="utf-8") as handle:
                return handle.read()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read input file {raw[1:]!r}: {exc.strerror}"
            ) from None
    return raw


@click.command()
@click.argument("task")
@click.argument("input_json", required=False, metavar="[INPUT]")
@click.option("--version", "version", help="Submit by identifier: the task's version, e.g. v1.2.")
@click.option("--name", "job_name", help="Job name (default: the task's name).")
@click.option("--cluster", default="default", show_default=True, help="Cluster slug to run on.")
@click.option(
    "--max-retries",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Retries of the root task after a failing execution.",
)
@click.option("--idempotency-key", help="Submitting again with the same key returns the first job.")
@click.option(
    "--wait",
    is_flag=True,
    help="Show live progress; exit 0 when the job completes, 1 when it fails or is canceled.",
)
@pass_app
def submit(
    app: App,
    task: str,
    input_json: str | None,
    version: str | None,
    job_name: str | None,
    cluster: str,
    max_retries: int,
    idempotency_key: str | None,
    wait: bool,
) -> None:
    """Submit a job with one root task.

    TASK is an import path (package.module:Class; INPUT is then checked against its fields) or,
    with --version, a task name submitted as is (no user code needed here). INPUT is JSON: the
    value itself for a task with one field, an object for several; '-' reads stdin, @file a file.

    \b
    Examples:
      conveyor submit myflows.tasks:Resize '{"path": "a.png", "width": 64}' --wait
      conveyor submit Resize --version v1.0 '{"path": "a.png", "width": 64}' --cluster gpu
      echo '"2026-11-28"' | conveyor submit myflows.daily:Ingest - --max-retries 3
    """
    # Every refusal of what was typed is a usage error (exit 2) naming the argument, on both
    # paths alike: scripts tell "fix the command" (2) from "the world failed" (1) by it.
    try:
        validate_slug(cluster)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cluster") from None
    if job_name is not None and not job_name.strip():
        raise click.BadParameter("a job name cannot be empty", param_hint="--name")
    text = _read_input(input_json)
    client = app.client
    if version is None and ":" in task:
        try:
            cls = load_task(task)
        except click.BadParameter as exc:
            exc.param_hint = "TASK"
            raise
        data = (text or "").strip().encode("utf-8")
        try:
            instance = deserialize_task(cls, data)
        except InputDecodeError as exc:
            raise click.BadParameter(str(exc), param_hint="INPUT") from None
        except TypeError as exc:  # missing required fields
            raise click.BadParameter(
                f"input does not fit {cls.__name__}'s fields: {exc}", param_hint="INPUT"
            ) from None
        except ValueError as exc:  # the task class refused the values
            raise click.BadParameter(
                f"{cls.__name__} refused the input: {exc}", param_hint="INPUT"
            ) from None
        try:
            spec = new_task_spec(
                instance,
                cluster=cluster,
                max_retries=max_retries,
                max_input_bytes=client.max_input_bytes,
            )
        except ValueError as exc:  # over the size limit, or not serialisable
            raise click.BadParameter(str(exc), param_hint="INPUT") from None
        name = job_name or cls.__name__
    else:
        try:
            validate_name(task)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="TASK") from None
        try:
            ident = TaskIdentifier(task, version or "v0.0")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--version") from None
        payload = b""
        if text is not None and text.strip():
            try:
                payload = json.dumps(
                    json.loads(text), separators=(",", ":"), ensure_ascii=False
                ).encode("utf-8")
            except json.JSONDecodeError as exc:
                raise click.BadParameter(f"not valid JSON: {exc}", param_hint="INPUT") from None
        if len(payload) > client.max_input_bytes:
            raise click.BadParameter(
                f"The input of {task} is {len(payload):,} bytes, over the "
                f"{client.max_input_bytes:,}-byte limit: pass large data through the job "
                "cache or object storage",
                param_hint="INPUT",
            )
        spec = NewTask(
            TaskId(uuid7()),
            cluster,
            ident,
            payload,
            task.rsplit(".", 1)[-1],
            max_retries=max_retries,
        )
        name = job_name or task
    try:
        record = client.service.submit_job(name, [spec], idempotency_key)
    except ClusterNotFoundError as exc:
        raise click.BadParameter(str(exc), param_hint="--cluster") from None
    job = client.jobs().find(record.id)
    if app.as_json and not wait:
        app.print_json(job_json(job))
        return
    if not app.as_json:
        app.err.print(f"Submitted job [bold]{job.name}[/] [dim]{job.id}[/]")
        if not wait:
            click.echo(str(job.id))
    if wait:
        final = _wait_with_progress(app, job)
        if app.as_json:
            app.print_json(job_json(final))
        sys.exit(0 if final.state is JobState.COMPLETED else 1)


def _wait_with_progress(app: App, job: Job, poll: float = 0.25) -> Job:
    job = follow_job(app.err, app.client, job.id, poll)
    colour = "green" if job.state is JobState.COMPLETED else "red"
    app.err.print(f"Job [bold]{job.name}[/] [{colour}]{job.state.value}[/]")
    if job.state is JobState.FAILED:
        app.err.print(f"  see the errors: conveyor jobs show {job.id}")
    return job


@click.command()
@click.argument("job_id", type=JOB_ID)
@pass_app
def retry(app: App, job_id: JobId) -> None:
    """Put a failed (or canceled) job's FAILED tasks back in the queue and resume it.

    \b
    Example:
      conveyor retry 01a223f3-1c7a-713c-8f90-f8be6015a190
    """
    before = app.client.jobs().find(job_id)
    count = app.client.jobs().retry(job_id)
    job = app.client.jobs().find(job_id)
    if app.as_json:
        app.print_json({"requeued": count, "job": job_json(job)})
    else:
        app.console.print(retry_message(before.state, count, job.state, job.name), markup=False)


@click.command()
@click.argument("job_id", type=JOB_ID)
@pass_app
def cancel(app: App, job_id: JobId) -> None:
    """Stop dispatching a job's queued tasks; running tasks finish. `retry` resumes it.

    \b
    Example:
      conveyor cancel 01a223f3-1c7a-713c-8f90-f8be6015a190
    """
    before = app.client.jobs().find(job_id)
    app.client.jobs().cancel(job_id)
    job = app.client.jobs().find(job_id)
    counts = job.execution_stats.tasks_by_state
    if app.as_json:
        app.print_json(job_json(job))
    else:
        queued, running = counts.get(TaskState.QUEUED, 0), counts.get(TaskState.RUNNING, 0)
        message = cancel_message(before.state, job.name, queued=queued, running=running)
        app.console.print(message, markup=False)


_SINCE = re.compile(r"^(\d+)\s*([smhdw])$")


def _parse_since(value: str) -> dt.datetime:
    match = _SINCE.match(value.strip().lower())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        seconds = amount * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use a duration like 30m, 2h, 7d or a date like 2026-11-28",
            param_hint="--since",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@click.group()
def jobs() -> None:
    """List, inspect, watch and draw jobs."""


@jobs.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in JobState], case_sensitive=False),
    help="Only jobs in this state (repeatable).",
)
@click.option("--name", help="Only jobs whose name contains this (case-insensitive).")
@click.option("--cluster", help="Only jobs submitted to this cluster.")
@click.option("--since", help="Only jobs submitted since: 30m, 2h, 7d or 2026-11-28.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--before", type=JOB_ID, help="Continue after this job id (the next page).")
@pass_app
def list_jobs(
    app: App,
    states: tuple[str, ...],
    name: str | None,
    cluster: str | None,
    since: str | None,
    limit: int,
    before: JobId | None,
) -> None:
    """Jobs, newest first.

    \b
    Examples:
      conveyor jobs list --state failed --since 1d
      conveyor jobs list --name nightly --json
    """
    service = app.client.service
    if cluster is not None:  # refused like `submit --cluster`, not answered "No jobs match."
        try:
            service.find_cluster(validate_slug(cluster))
        except (ValueError, ClusterNotFoundError) as exc:
            raise click.BadParameter(str(exc), param_hint="--cluster") from None
    query = JobQuery(
        states=tuple(JobState(s.upper()) for s in states),
        name=name,
        cluster=cluster,
        submitted_after=_parse_since(since) if since else None,
        before_id=before,
        limit=limit,
    )
    reads = app.client.reads
    records = reads.query_jobs(query)
    rows = [(r, reads.task_counts(r.id)) for r in records]
    if app.as_json:
        app.print_json(
            [
                {
                    "id": str(r.id),
                    "name": r.name,
                    "state": r.state.value,
                    "cluster": r.cluster,
                    "submitted_at": r.submitted_at.isoformat(),
                    "tasks_by_state": {s.value: n for s, n in counts.items()},
                }
                for r, counts in rows
            ]
        )
        return
    if not rows:
        app.console.print("No jobs match.")
        return
    app.console.print(jobs_table(rows))
    if len(rows) == limit:
        app.console.print(f"[dim]Next page: conveyor jobs list --before {rows[-1][0].id}[/]")


def _render_job(app: App, job_id: JobId, limit: int) -> Group:
    client = app.client
    job = client.jobs().find(job_id)
    tasks = []
    for task in client.jobs().tasks(job_id):
        tasks.append(task)
        if len(tasks) > limit:
            break
    truncated = len(tasks) > limit
    tasks = tasks[:limit]
    parts: list[object] = [job_header(job), "", task_tree(job, tasks, truncated)]
    for task in tasks:
        if task.error is not None and task.state in (TaskState.FAILED, TaskState.FAILED_OPTIONAL):
            body = task.error.traceback.strip() or f"{task.error.type}: {task.error.message}"
            parts.append(
                Panel(
                    body,
                    title=f"[red]{task.display.splitlines()[0]} {task.id}",
                    title_align="left",
                    border_style="red",
                    expand=False,
                )
            )
    return Group(*parts)  # type: ignore[arg-type]


@jobs.command("show")
@click.argument("job_id", type=JOB_ID)
@click.option(
    "--limit",
    default=500,
    show_default=True,
    type=click.IntRange(1),
    help="Most tasks to draw in the tree (fan-outs are summarised).",
)
@pass_app
def show(app: App, job_id: JobId, limit: int) -> None:
    """A job's state, progress, task tree and the errors of failed tasks.

    \b
    Example:
      conveyor jobs show 01a223f3-1c7a-713c-8f90-f8be6015a190
    """
    if app.as_json:
        job = app.client.jobs().find(job_id)
        tasks = [
            task_json(t)
            for _, t in zip(range(limit), app.client.jobs().tasks(job_id), strict=False)
        ]
        app.print_json({**job_json(job), "tasks": tasks})
        return
    app.console.print(_render_job(app, job_id, limit))


@jobs.command("watch")
@click.argument("job_id", type=JOB_ID)
@click.option("--interval", default=0.5, show_default=True, type=click.FloatRange(0.05))
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1))
@pass_app
def watch(app: App, job_id: JobId, interval: float, limit: int) -> None:
    """Like `show`, refreshed live until the job completes, fails or is canceled.

    Exits 0 when the job completes, 1 when it fails or is canceled.

    \b
    Example:
      conveyor jobs watch 01a223f3-1c7a-713c-8f90-f8be6015a190 --interval 1
    """
    app.client.jobs().find(job_id)
    with Live(_render_job(app, job_id, limit), console=app.console, refresh_per_second=4) as live:
        while True:
            job = app.client.jobs().find(job_id)
            live.update(_render_job(app, job_id, limit))
            if is_terminal(job.state):
                break
            time.sleep(interval)
    sys.exit(0 if job.state is JobState.COMPLETED else 1)


@jobs.command("diagram")
@click.argument("job_id", type=JOB_ID)
@click.option(
    "--limit", default=200, show_default=True, type=click.IntRange(1), help="Most tasks to draw."
)
@pass_app
def diagram(app: App, job_id: JobId, limit: int) -> None:
    """The task DAG as a mermaid flowchart (paste it into any mermaid viewer).

    \b
    Example:
      conveyor jobs diagram 01a223f3-… > job.mmd
    """
    job = app.client.jobs().find(job_id)
    tasks = [t for _, t in zip(range(limit), app.client.jobs().tasks(job_id), strict=False)]
    click.echo(mermaid(job, tasks))


@jobs.command("delete")
@click.argument("job_id", type=JOB_ID)
@click.confirmation_option(prompt="Delete this job and everything recorded about it?")
@pass_app
def delete(app: App, job_id: JobId) -> None:
    """Delete a job with its tasks, attempts and progress.

    \b
    Example:
      conveyor jobs delete 01a223f3-1c7a-713c-8f90-f8be6015a190 --yes
    """
    app.client.jobs().find(job_id)
    app.client.jobs().delete(job_id)
    app.console.print(f"Deleted job {job_id}")
