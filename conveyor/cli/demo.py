"""`conveyor demo`: the sample workflow, end to end, with live progress and a summary."""

from __future__ import annotations

import sys
import threading
import time

import click
from rich.table import Table

from conveyor.cli._app import App, pass_app
from conveyor.cli._render import follow_job
from conveyor.client import Client
from conveyor.core.identifiers import JobId
from conveyor.core.model import JobState, TaskRecord, TaskState


@click.command()
@click.option(
    "--scenes",
    default=24,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Scenes to fan out to.",
)
@click.option(
    "--runners",
    "runner_count",
    default=3,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Task runners working in parallel.",
)
@click.option("--memory", is_flag=True, help="Keep everything in memory (nothing written).")
@pass_app
def demo(app: App, scenes: int, runner_count: int, memory: bool) -> None:
    """Run a sample workflow end to end and show what happened.

    A catalog task fans out one task per scene; each scene renders tiles as its own subtasks;
    a mosaic step waits for every scene and all of their tiles; one scene in seven fails once
    and succeeds on retry. The runners are threads of this process, claiming work from the
    configured store (by default the embedded SQLite file: `conveyor jobs show` works after).

    \b
    Examples:
      conveyor demo
      conveyor demo --scenes 200 --runners 4 --memory
    """
    from conveyor.demo import runners, submit

    client = Client("memory://") if memory else app.client
    if memory:
        app.err.print("State: in memory (nothing written)")
    else:
        app.err.print(f"State: {_where(app)}")
    job = submit(client, scenes)
    app.console.print(
        f"Submitted job [bold]{job.name}[/] [dim]{job.id}[/] to {runner_count} runners"
    )
    workers = runners(client, runner_count)
    threads = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        final = follow_job(app.console, client, job.id, poll=0.1)
    finally:
        for w in workers:
            w.stop()
        for thread in threads:
            thread.join(10)
    _summary(app, client, final.id, time.monotonic() - started)
    if not memory:
        app.console.print(f"\nInspect it again: [bold]conveyor jobs show {final.id}[/]")
    sys.exit(0 if final.state is JobState.COMPLETED else 1)


def _where(app: App) -> str:
    from conveyor.bootstrap import mask_url

    if app.settings.embedded:
        return f"embedded, {app.settings.embedded_database_path}"
    return mask_url(app.settings.resolved_database_url())


def _summary(app: App, client: Client, job_id: JobId, elapsed: float) -> None:
    job = client.jobs().find(job_id)
    tasks = list(client.jobs().tasks(job_id))
    stats = job.execution_stats
    colour = "green" if job.state is JobState.COMPLETED else "red"
    app.console.print(
        f"\nJob [bold]{job.name}[/]: [{colour} bold]{job.state.value}[/] in {elapsed:.2f}s"
    )
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column, justify in (
        ("TASK", "left"),
        ("COUNT", "right"),
        ("RETRIES", "right"),
        ("STATE", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    groups: dict[str, list[TaskRecord]] = {}
    for task in tasks:
        groups.setdefault(task.identifier.name, []).append(task)
    for name, group in groups.items():
        states = sorted({t.state.value for t in group})
        table.add_row(
            name, str(len(group)), str(sum(t.retry_count for t in group)), ", ".join(states)
        )
    app.console.print(table)
    for task in tasks:
        if task.retry_count and task.state is TaskState.COMPUTED:
            app.console.print(
                f"  [yellow]retried[/] {task.display}: succeeded on attempt {task.attempt}"
            )
    app.console.print(
        f"\n{stats.total_tasks} tasks · compute {stats.compute_time.total_seconds():.2f}s · "
        f"parallelism {stats.parallelism:.1f}"
    )
