"""The ``conveyor`` command line (click). Logs are quiet by default; ``-v`` shows more."""

from __future__ import annotations

import logging
import sys
import threading
import time

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor import __version__
from conveyor.core.model import JobState, TaskState

console = Console()
err_console = Console(stderr=True)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="conveyor")
@click.option("-v", "--verbose", count=True, help="Show more logs (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """conveyor: workflows of Python tasks, run by any number of task runners.

    \b
    Try it with nothing installed:
      conveyor demo
    """
    _configure_logging(verbose)


@cli.command()
@click.option("--scenes", default=24, show_default=True, help="Scenes to fan out to.")
@click.option("--runners", "runner_count", default=3, show_default=True,
              help="Task runners working in parallel (threads in this process).")
def demo(scenes: int, runner_count: int) -> None:
    """Run a sample workflow end to end and print what happened.

    A catalog task fans out one task per scene; each scene renders tiles as its own subtasks;
    a mosaic step waits for every scene and all of their tiles; one in seven scenes fails once
    and succeeds on retry. Runs in memory: no database or broker needed.

    \b
    Example:
      conveyor demo --scenes 40 --runners 4
    """
    from conveyor.client import Client
    from conveyor.demo import runners, submit

    if scenes < 1 or runner_count < 1:
        raise click.BadParameter("--scenes and --runners must be at least 1")
    client = Client("memory://", "memory://")
    job = submit(client, scenes)
    console.print(f"Submitted job [bold]{job.name}[/] ({job.id}) with {runner_count} runners")
    workers = runners(client, runner_count)
    threads = [threading.Thread(target=w.run_forever, daemon=True) for w in workers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    with Progress(
        TextColumn("[bold]{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:
        handles: dict[str | None, int] = {}
        while True:
            current = client.jobs().find(job)
            for indicator in current.progress:
                if indicator.label not in handles:
                    handles[indicator.label] = bars.add_task(indicator.label or "progress")
                bars.update(
                    handles[indicator.label], total=indicator.total, completed=indicator.done
                )
            if current.state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED):
                break
            time.sleep(0.05)
    for worker in workers:
        worker.stop()
    for thread in threads:
        thread.join(5)
    elapsed = time.monotonic() - started
    _print_summary(client, current.id, elapsed)
    client.close()
    sys.exit(0 if current.state is JobState.COMPLETED else 1)


def _print_summary(client: object, job_id: object, elapsed: float) -> None:
    from conveyor.client import Client

    assert isinstance(client, Client)
    job = client.jobs().find(job_id)  # type: ignore[arg-type]
    tasks = list(client.jobs().tasks(job))
    stats = job.execution_stats
    colour = "green" if job.state is JobState.COMPLETED else "red"
    console.print(f"\nJob [bold]{job.name}[/]: [{colour} bold]{job.state}[/] in {elapsed:.2f}s")
    table = Table(title="Tasks", show_edge=False, header_style="bold")
    for column in ("task", "count", "retries", "state"):
        table.add_column(column, justify="right" if column in ("count", "retries") else "left")
    by_name: dict[str, list[object]] = {}
    for task in tasks:
        by_name.setdefault(task.identifier.name, []).append(task)
    for name, group in by_name.items():
        states = sorted({t.state for t in group})  # type: ignore[attr-defined]
        retries = sum(t.retry_count for t in group)  # type: ignore[attr-defined]
        table.add_row(name, str(len(group)), str(retries), ", ".join(s.value for s in states))
    console.print(table)
    retried = [t for t in tasks if t.retry_count]
    for task in retried:
        console.print(f"  [yellow]retried[/] {task.display}: succeeded on attempt {task.attempt}")
    console.print(
        f"\n{stats.total_tasks} tasks, compute {stats.compute_time.total_seconds():.2f}s, "
        f"parallelism {stats.parallelism:.1f}, "
        f"{sum(1 for t in tasks if t.state is TaskState.COMPUTED)} computed"
    )


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
