"""Execution: user code on the runner's worker thread, its timeout and the shutdown grace.

The task runs on a daemon worker thread while the runner's own thread keeps the lease (the
lease keeper), enforces the timeout and watches for shutdown: user code that blocks never
stops the heartbeats (a blocked I/O thread would get the broker connection dropped and the
task run twice). Threads cannot be killed: a timed-out or abandoned execution is left to finish
on its own thread and its result is discarded.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading
import time
import traceback
from typing import Any

from conveyor.core.context import ExecutionContext
from conveyor.core.model import ClaimedTask, TaskError
from conveyor.core.service import Orchestrator
from conveyor.core.task import Task

from .housekeeping import RunnerStats
from .lease import LeaseKeeper, log_context
from .settings import RunnerSettings

log = logging.getLogger("conveyor.core.runner")


def error_of(exc: BaseException, tb: str = "") -> TaskError:
    """How a user exception is recorded."""
    return TaskError(type(exc).__name__, str(exc), tb)


class Execution:
    """One execution of user code; ``done`` is set when it returned or raised."""

    def __init__(self, task: Task, context: ExecutionContext) -> None:
        self.task = task
        self.context = context
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.traceback = ""

    def run(self) -> None:
        try:
            execute: Any = self.task.execute
            result = execute(self.context)
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
        except BaseException as exc:  # user code: anything it raises fails the attempt
            self.error = exc
            self.traceback = traceback.format_exc()
        finally:
            self.done.set()


async def _await(awaitable: Any) -> Any:
    return await awaitable


class Worker:
    """A daemon thread that runs executions one after the other (a thread per task cost more
    than a no-op task). An execution that is abandoned (timeout, hand-back) keeps its thread:
    the runner then starts a new worker, and the old one exits once that execution returns."""

    def __init__(self, runner_id: str) -> None:
        self._queue: queue.SimpleQueue[Execution | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._loop, name=f"conveyor-worker-{runner_id}", daemon=True
        )
        self.thread.start()

    def run(self, execution: Execution) -> None:
        self._queue.put(execution)

    def retire(self) -> None:
        """Exit after the current execution (if any) returns."""
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            execution = self._queue.get()
            if execution is None:
                return
            execution.run()


class Executor:
    """Runs executions on a worker thread and waits for each under its timeout and the
    shutdown grace. Stop: retire the worker (it exits once nothing of ours runs on it)."""

    def __init__(
        self,
        service: Orchestrator,
        settings: RunnerSettings,
        stats: RunnerStats,
        runner_id: str,
        stopping: threading.Event,
    ) -> None:
        self._service = service
        self._settings = settings
        self._stats = stats
        self._runner_id = runner_id
        self._stopping = stopping
        self._worker: Worker | None = None

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.retire()
            self._worker = None

    def run(self, claimed: ClaimedTask, execution: Execution, keeper: LeaseKeeper) -> bool:
        """Run ``execution`` and wait for it; False if its result must not be recorded by the
        caller (timed out, handed back or the lease was lost: each recorded or logged here)."""
        if self._worker is None:
            self._worker = Worker(self._runner_id)
        self._worker.run(execution)
        if self._wait(claimed, execution, keeper):
            return True
        if not execution.done.is_set():  # user code still runs: leave it its thread
            self._worker.retire()
            self._worker = None
        return False

    def _wait(self, claimed: ClaimedTask, execution: Execution, keeper: LeaseKeeper) -> bool:
        settings = self._settings
        timeout = claimed.timeout if claimed.timeout is not None else settings.default_timeout
        started = time.monotonic()
        shutdown_deadline: float | None = None
        while True:
            now = time.monotonic()
            waits = [keeper.due - now, 1.0]
            if timeout is not None:
                waits.append(started + timeout - now)
            if shutdown_deadline is not None:
                waits.append(shutdown_deadline - now)
            if execution.done.wait(max(min(waits), 0.0)):
                return True
            now = time.monotonic()
            if timeout is not None and now - started >= timeout:
                self._timed_out(claimed, execution, timeout)
                return False
            if self._stopping.is_set():
                if shutdown_deadline is None:
                    shutdown_deadline = now + settings.grace_period
                    log.info(
                        "waiting up to %.0fs for task %s to finish",
                        settings.grace_period,
                        claimed.id,
                        extra=log_context(claimed, self._runner_id),
                    )
                elif now >= shutdown_deadline:
                    self._stats.abandoned += 1
                    log.warning(
                        "task %s did not finish within the grace period: handing it back",
                        claimed.id,
                        extra=log_context(claimed, self._runner_id),
                    )
                    self._service.give_back(claimed, "runner shut down before the task finished")
                    return False
            if not keeper.tick(now):
                return False

    def _timed_out(self, claimed: ClaimedTask, execution: Execution, timeout: float) -> None:
        self._stats.failed += 1
        self._stats.abandoned += 1
        log.warning(
            "task %s timed out after %.1fs; abandoning its thread",
            claimed.id,
            timeout,
            extra=log_context(claimed, self._runner_id),
        )
        context = execution.context
        self._service.fail(
            claimed,
            TaskError("TaskTimeout", f"execution exceeded its {timeout:g}s timeout"),
            outcome="timeout",
            display=context.current_task.display,
            progress=context.progress_snapshot(),
        )
