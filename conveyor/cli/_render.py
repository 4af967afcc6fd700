"""How the CLI shows jobs, tasks and runners: colours, durations, tables and trees."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from conveyor.client import Client
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import (
    DONE_STATES,
    INACTIVE_JOB_STATES,
    Job,
    JobRecord,
    JobState,
    ProgressIndicator,
    RunnerInfo,
    TaskRecord,
    TaskState,
)

STATE_STYLE: dict[str, str] = {
    "QUEUED": "bright_black",
    "RUNNING": "cyan",
    "COMPUTED": "green",
    "FAILED": "bold red",
    "SKIPPED": "yellow",
    "FAILED_OPTIONAL": "magenta",
    "SUBMITTED": "bright_black",
    "STARTED": "blue",
    "COMPLETED": "bold green",
    "CANCELED": "yellow",
    "online": "green",
    "stopped": "bright_black",
    "gone": "red",
}

#: Siblings of one identifier shown individually before the rest is summarised.
MAX_SIBLINGS_SHOWN = 8


def state_text(state: str) -> Text:
    return Text(str(state), style=STATE_STYLE.get(str(state), ""))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def ago(when: dt.datetime | None, now: dt.datetime | None = None) -> str:
    if when is None:
        return "-"
    now = now or dt.datetime.now(dt.UTC)
    return f"{duration((now - when).total_seconds())} ago"


def bar(done: int, total: int, width: int = 20) -> str:
    if total <= 0:
        return "─" * width
    filled = min(width, round(width * done / total))
    return "━" * filled + "╌" * (width - filled)


def jobs_table(jobs: list[tuple[JobRecord, dict[TaskState, int]]]) -> Table:
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("NAME")
    table.add_column("STATE")
    table.add_column("TASKS", justify="right")
    table.add_column("CLUSTER")
    table.add_column("SUBMITTED", justify="right")
    now = dt.datetime.now(dt.UTC)
    for job, counts in jobs:
        total = sum(counts.values())
        done = sum(
            counts.get(s, 0)
            for s in (TaskState.COMPUTED, TaskState.SKIPPED, TaskState.FAILED_OPTIONAL)
        )
        table.add_row(
            str(job.id),
            escape(job.name),
            state_text(job.state),
            f"{done}/{total}",
            job.cluster,
            ago(job.submitted_at, now),
        )
    return table


def job_header(job: Job) -> Table:
    stats = job.execution_stats
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Job", f"{escape(job.name)}  [dim]{job.id}[/]")
    grid.add_row("State", state_text(job.state))
    grid.add_row("Cluster", job.cluster)
    grid.add_row("Submitted", f"{job.submitted_at:%Y-%m-%d %H:%M:%S} UTC ({ago(job.submitted_at)})")
    counts = ", ".join(
        f"[{STATE_STYLE.get(s.value, '')}]{n} {s.value.lower()}[/]"
        for s, n in sorted(stats.tasks_by_state.items())
    )
    grid.add_row("Tasks", f"{stats.total_tasks} ({counts})" if counts else "0")
    grid.add_row(
        "Time",
        f"elapsed {duration(stats.elapsed_time.total_seconds())}, compute "
        f"{duration(stats.compute_time.total_seconds())}, parallelism {stats.parallelism:.1f}",
    )
    for indicator in job.progress:
        grid.add_row(f"  {escape(indicator.label or 'progress')}", progress_line(indicator))
    return grid


def progress_line(indicator: ProgressIndicator) -> str:
    pct = 100 * indicator.done / indicator.total if indicator.total else 0.0
    return f"{bar(indicator.done, indicator.total)} {indicator.done}/{indicator.total} ({pct:.0f}%)"


def _task_label(task: TaskRecord) -> Text:
    label = Text()
    label.append(task.display.split("\n", 1)[0], style="bold")
    label.append(f"  {task.identifier.version}  ", style="dim")
    label.append_text(state_text(task.state))
    if task.state is TaskState.QUEUED:
        label.append(" (ready)" if task.deps_open == 0 else " (waiting)", style="dim")
    extras = []
    if task.started_at and task.stopped_at and task.state is not TaskState.QUEUED:
        extras.append(duration((task.stopped_at - task.started_at).total_seconds()))
    if task.retry_count:
        extras.append(f"retries {task.retry_count}")
    if task.crash_count:
        extras.append(f"crashes {task.crash_count}")
    if task.state is TaskState.COMPUTED and not task.complete:
        extras.append("subtasks running")
    if extras:
        label.append("  " + ", ".join(extras), style="dim")
    if task.error and task.state in (TaskState.FAILED, TaskState.FAILED_OPTIONAL):
        label.append(f"\n{task.error.type}: {task.error.message}"[:300], style="red")
    return label


def task_tree(job: Job, tasks: list[TaskRecord], truncated: bool) -> Tree:
    """The job as a tree; large fan-outs are summarised per identifier."""
    children: dict[TaskId | None, list[TaskRecord]] = defaultdict(list)
    for task in tasks:
        children[task.parent_id].append(task)
    tree = Tree(Text.assemble((job.name, "bold"), "  ", state_text(job.state)))

    def add(node: Tree, parent: TaskId | None) -> None:
        groups: dict[str, list[TaskRecord]] = defaultdict(list)
        for task in children.get(parent, []):
            groups[task.identifier.name].append(task)
        for group in groups.values():
            for task in group[:MAX_SIBLINGS_SHOWN]:
                add(node.add(_task_label(task)), task.id)
            rest = group[MAX_SIBLINGS_SHOWN:]
            if rest:
                counts = Counter(t.state.value for t in rest)
                summary = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
                node.add(
                    Text(f"… {len(rest)} more {group[0].identifier.name} ({summary})", style="dim")
                )

    add(tree, None)
    if truncated:
        tree.add(Text("… more tasks not shown (use --limit)", style="dim"))
    return tree


def runners_table(runners: list[RunnerInfo]) -> Table:
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("RUNNER", no_wrap=True)
    table.add_column("CLUSTER")
    table.add_column("STATE")
    table.add_column("SEEN", justify="right")
    table.add_column("RUNNING")
    table.add_column("DONE", justify="right")
    table.add_column("FAILED", justify="right")
    table.add_column("TASKS", justify="right")
    now = dt.datetime.now(dt.UTC)
    for r in runners:
        table.add_row(
            r.id,
            r.cluster,
            state_text(r.state),
            ago(r.last_seen, now),
            str(r.current_task)[:8] + "…" if r.current_task else "-",
            str(r.tasks_computed),
            str(r.tasks_failed),
            str(len(r.identifiers)),
            style="" if r.state == "online" else "dim",
        )
    return table


def job_json(job: Job) -> dict[str, Any]:
    stats = job.execution_stats
    return {
        "id": str(job.id),
        "name": job.name,
        "state": job.state.value,
        "cluster": job.cluster,
        "submitted_at": job.submitted_at.isoformat(),
        "progress": [{"label": p.label, "total": p.total, "done": p.done} for p in job.progress],
        "execution_stats": {
            "first_task_started_at": stats.first_task_started_at,
            "last_task_stopped_at": stats.last_task_stopped_at,
            "compute_time_seconds": stats.compute_time.total_seconds(),
            "elapsed_time_seconds": stats.elapsed_time.total_seconds(),
            "parallelism": stats.parallelism,
            "total_tasks": stats.total_tasks,
            "tasks_by_state": {s.value: n for s, n in stats.tasks_by_state.items()},
        },
    }


def task_json(task: TaskRecord) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "job": str(task.job_id),
        "parent_id": str(task.parent_id) if task.parent_id else None,
        "identifier": {"name": task.identifier.name, "version": task.identifier.version},
        "state": task.state.value,
        "ready": task.ready,
        "display": task.display,
        "cluster": task.cluster,
        "depends_on": [str(d) for d in task.depends_on],
        "retry_count": task.retry_count,
        "crash_count": task.crash_count,
        "attempt": task.attempt,
        "runner": task.runner_id,
        "started_at": task.started_at,
        "stopped_at": task.stopped_at,
        "error": None
        if task.error is None
        else {
            "type": task.error.type,
            "message": task.error.message,
            "traceback": task.error.traceback,
        },
        "input": task.input.decode("utf-8", "replace"),
    }


def is_terminal(state: JobState) -> bool:
    return state in INACTIVE_JOB_STATES


def mermaid(job: Job, tasks: list[TaskRecord]) -> str:
    """The task DAG as a mermaid flowchart: parent→child edges solid, dependencies dashed."""
    lines = ["flowchart TD"]
    ids = {t.id: f"t{i}" for i, t in enumerate(tasks)}
    for task in tasks:
        label = task.display.split("\n", 1)[0].replace('"', "'")
        lines.append(f'    {ids[task.id]}["{label}<br/>{task.state.value}"]:::{task.state.value}')
    for task in tasks:
        if task.parent_id in ids:
            lines.append(f"    {ids[task.parent_id]} --> {ids[task.id]}")
        for dep in task.depends_on:
            if dep in ids:
                lines.append(f"    {ids[dep]} -.->|then| {ids[task.id]}")
    colours = {
        "QUEUED": "#e5e7eb",
        "RUNNING": "#a5f3fc",
        "COMPUTED": "#bbf7d0",
        "FAILED": "#fecaca",
        "SKIPPED": "#fef08a",
        "FAILED_OPTIONAL": "#f5d0fe",
    }
    lines += [f"    classDef {s} fill:{c}" for s, c in colours.items()]
    return "\n".join(lines)


def follow_job(console: Console, client: Client, job_id: JobId, poll: float = 0.25) -> Job:
    """Live progress bars (tasks done/total and the tasks' own labels) until the job ends."""
    with Progress(
        TextColumn("[bold]{task.description:>12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bars:
        overall = bars.add_task("tasks", total=None)
        labels: dict[str | None, TaskID] = {}
        while True:
            job = client.jobs().find(job_id)
            counts = job.execution_stats.tasks_by_state
            done = sum(n for s, n in counts.items() if s in DONE_STATES)
            bars.update(overall, total=job.execution_stats.total_tasks, completed=done)
            for indicator in job.progress:
                if indicator.label not in labels:
                    labels[indicator.label] = bars.add_task(indicator.label or "progress")
                bars.update(
                    labels[indicator.label], total=indicator.total, completed=indicator.done
                )
            if is_terminal(job.state):
                return job
            time.sleep(poll)
