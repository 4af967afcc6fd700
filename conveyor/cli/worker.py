"""`conveyor worker` (task runners, optionally several supervised processes) and `monitor`."""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

import click

from conveyor.bootstrap import build_runner_settings, check_broker
from conveyor.caches import LocalFileSystemCache
from conveyor.cli._app import App, pass_app
from conveyor.cli._imports import load_tasks
from conveyor.core.monitor import Monitor, MonitorSettings
from conveyor.process import STOP_SIGNALS, monitor_signals
from conveyor.urls import mask_url

log = logging.getLogger("conveyor.worker")

#: Seconds a child must live to count as started (a faster crash is backed off).
MIN_HEALTHY_SECONDS = 5.0


@click.command()
@click.argument("tasks", nargs=-1, required=True, metavar="TASK...")
@click.option("--cluster", default="default", show_default=True, help="Cluster to join.")
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Runner processes to supervise (1: run in this process).",
)
@click.option(
    "--lease",
    type=click.FloatRange(1),
    help="Task lease in seconds [default: CONVEYOR_LEASE or 30].",
)
@click.option(
    "--grace-period",
    type=click.FloatRange(0),
    help="Seconds a running task may finish after SIGTERM before it is handed back [default: 20].",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.001),
    help="Default task timeout in seconds for tasks that set none.",
)
@click.option(
    "--retry-backoff",
    type=click.FloatRange(0),
    help="Seconds before the first retry of a failed task, doubling per retry "
    "[default: CONVEYOR_RETRY_BACKOFF or 0: at once].",
)
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False),
    help="Folder for the job cache (LocalFileSystemCache); share it between machines "
    "with a network filesystem.",
)
@pass_app
def worker(
    app: App,
    tasks: tuple[str, ...],
    cluster: str,
    concurrency: int,
    lease: float | None,
    grace_period: float | None,
    timeout: float | None,
    retry_backoff: float | None,
    cache_dir: str | None,
) -> None:
    """Start task runners that join CLUSTER and run the given task classes.

    TASK is an import path: package.module:Class, package.module:LIST (a list of classes) or
    package.module (its TASKS list, else every task class it defines). The current directory is
    importable. SIGTERM/SIGINT stop taking tasks and let the running one finish within the
    grace period; a second signal exits at once.

    \b
    Examples:
      conveyor worker myflows.tasks:Resize myflows.tasks:Publish
      conveyor worker --cluster gpu --concurrency 4 --cache /mnt/shared/cache myflows.tasks
    """
    classes = load_tasks(tasks)
    flags = {"lease": lease, "grace_period": grace_period, "retry_backoff": retry_backoff}
    overrides: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    if overrides:  # flags are settings given on the command line (before the client is built)
        app.settings = dataclasses.replace(app.settings, **overrides)
    settings = app.settings
    if concurrency > 1:
        sys.exit(_supervise(app, concurrency))  # the children get the same flags
    client = app.client
    runner = client.runner(
        cluster,
        tasks=classes,
        cache=LocalFileSystemCache(cache_dir) if cache_dir else None,
        settings=build_runner_settings(
            settings, default_timeout=timeout, max_input_bytes=client.max_input_bytes
        ),
    )
    _die_with_parent()
    broker = check_broker(settings.resolved_broker_url(), settings.startup_timeout)
    app.err.print(
        f"[bold]conveyor worker[/] {runner.id} on cluster [bold]{cluster}[/]\n"
        f"  tasks:    {', '.join(str(i) for i in runner.registry.task_identifiers)}\n"
        f"  database: {mask_url(settings.resolved_database_url())}\n"
        f"  broker:   {broker}"
    )
    runner.run_forever()
    app.err.print(f"worker {runner.id} stopped: {runner.computed} computed, {runner.failed} failed")


def _die_with_parent() -> None:
    """A supervised child gets SIGTERM when its supervisor dies, even by SIGKILL (Linux)."""
    if os.environ.get("CONVEYOR_SUPERVISED") != "1" or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


def _child_command() -> list[str]:
    """This very command line, with --concurrency 1."""
    args = sys.argv[1:]
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "--concurrency":
            skip = True
            continue
        if arg.startswith("--concurrency="):
            continue
        out.append(arg)
    worker_at = out.index("worker")
    return [
        sys.executable,
        "-m",
        "conveyor",
        *out[: worker_at + 1],
        "--concurrency",
        "1",
        *out[worker_at + 1 :],
    ]


def _supervise(app: App, count: int) -> int:
    """Run ``count`` runner processes; restart any that crash; stop them all on a signal.

    Returns 0 once every child exited after a signal. A crashed child is restarted at once if it
    lived ``MIN_HEALTHY_SECONDS``, else after a back-off that doubles up to 30 s. The back-off is
    a deadline in the loop, not a sleep: other children are still watched meanwhile, and a
    signal cancels every restart still due (a child started after the signal would never get
    it, and the supervisor would wait for it until a second signal). A signal that arrives while
    a child is being started reaches it too: the child is registered with signals blocked, and
    signalled there if the handler ran meanwhile; it is not started with signals blocked, as it
    would inherit the mask. (The handler sets a plain counter: a ``threading.Event`` set from a
    signal handler can deadlock against the main thread holding its lock.)
    """
    command = _child_command()
    env = {**os.environ, "CONVEYOR_SUPERVISED": "1"}
    children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    restarts: dict[int, float] = {}  # slot -> monotonic time its restart is due
    backoff: dict[int, float] = {}
    stopping = {"signals": 0}

    def start(slot: int) -> None:
        if stopping["signals"]:
            return
        # Not started with signals blocked: a child inherits the mask, and would never see
        # the SIGTERM of its supervisor or of PR_SET_PDEATHSIG.
        proc = subprocess.Popen(command, env=env)
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            children[slot] = (proc, time.monotonic())
            if stopping["signals"]:  # it came during Popen: the handler missed this child
                again = stopping["signals"] > 1
                proc.send_signal(signal.SIGKILL if again else signal.SIGTERM)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        log.info("started runner process %d (pid %d)", slot, proc.pid)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping["signals"] += 1
        again = stopping["signals"] > 1
        restarts.clear()
        log.info(
            "signal %d: stopping %d runner processes%s",
            signum,
            len(children),
            " now (SIGKILL)" if again else "",
        )
        for proc, _ in children.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL if again else signal.SIGTERM)

    for signum in STOP_SIGNALS:
        signal.signal(signum, on_signal)
    app.err.print(f"[bold]conveyor worker[/] supervising {count} runner processes")
    for slot in range(count):
        start(slot)
    while children or restarts:
        now = time.monotonic()
        due_first = min(restarts.values(), default=now + 0.2)  # C-level: no handler runs inside
        time.sleep(min(max(due_first - now, 0.0), 0.2))
        for slot, (proc, started) in list(children.items()):
            code = proc.poll()
            if code is None:
                continue
            del children[slot]
            if stopping["signals"]:
                continue
            lived = time.monotonic() - started
            delay = 0.0 if lived >= MIN_HEALTHY_SECONDS else min(2 * backoff.get(slot, 0.5), 30)
            backoff[slot] = delay
            app.err.print(
                f"[yellow]runner process {slot} (pid {proc.pid}) exited with code "
                f"{code} after {lived:.1f}s; restarting"
                + (f" in {delay:.1f}s" if delay else "")
                + "[/]"
            )
            restarts[slot] = time.monotonic() + delay
        for slot, due in list(restarts.items()):
            if stopping["signals"]:
                restarts.clear()  # one scheduled before the handler ran: never started
                break
            if time.monotonic() >= due:
                restarts.pop(slot, None)  # the handler may have cleared it meanwhile
                start(slot)
    return 0


@click.command()
@click.option(
    "--interval",
    default=MonitorSettings().interval,
    show_default=True,
    type=click.FloatRange(0.1),
    help="Seconds between sweeps.",
)
@click.option(
    "--runner-silence",
    default=MonitorSettings().runner_silence,
    show_default=True,
    type=click.FloatRange(1),
    help="Seconds without heartbeat after which a runner counts as gone.",
)
@pass_app
def monitor(app: App, interval: float, runner_silence: float) -> None:
    """Run the safety net: requeue tasks whose lease expired, publish what the outbox still
    holds, mark silent runners gone. Several monitors may run at once.

    \b
    Example:
      conveyor monitor --interval 2
    """
    client = app.client
    app.err.print(
        f"[bold]conveyor monitor[/] every {interval:g}s on "
        f"{mask_url(app.settings.resolved_database_url())}"
    )
    sweeper = Monitor(client.service, MonitorSettings(interval, runner_silence))
    with monitor_signals(sweeper):
        sweeper.run_forever()
