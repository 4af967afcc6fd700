"""The task runner loop, written against the ports only.

One runner executes one task at a time. The task runs on a daemon worker thread while the
runner's own thread keeps the lease extended, flushes live progress, enforces the timeout and
watches for shutdown: user code that blocks never stops the heartbeats (a blocked I/O thread
would get the broker connection dropped and the task run twice).

Shutdown (SIGTERM/SIGINT, installed by ``run_forever``): stop taking tasks; let the running task
finish within the grace period; otherwise hand it back (QUEUED, no retry counted) so another
runner takes it at once. A second signal exits immediately and the lease covers the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import inspect
import logging
import os
import queue
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from conveyor.core.context import DEFAULT_MAX_INPUT_BYTES, ExecutionContext
from conveyor.core.errors import InfrastructureError
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask, RunnerInfo, TaskError
from conveyor.core.ports import Consumer, Delivery, JobCache
from conveyor.core.registry import Runner
from conveyor.core.serialization import InputDecodeError, deserialize_task
from conveyor.core.service import Orchestrator
from conveyor.core.task import Task
from conveyor.core.usecases import may_claim_after

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Tunables of one task runner."""

    #: Seconds a claim stays valid without extension; extended every third of it.
    lease: float = 30.0
    #: Seconds a running task may still finish after SIGTERM before it is handed back.
    grace_period: float = 20.0
    #: Timeout for tasks that set none themselves (None: no timeout).
    default_timeout: float | None = None
    #: Seconds between lease-expiry and outbox sweeps (every runner runs them).
    sweep_interval: float = 5.0
    #: Seconds between runner heartbeats in the registry.
    heartbeat_interval: float = 5.0
    #: Seconds between live progress/display writes of a running task.
    progress_interval: float = 1.0
    #: Longest wait for a delivery before housekeeping runs.
    receive_timeout: float = 1.0
    #: Cap on a subtask's serialised input.
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES


class _Execution:
    """One execution of user code on the runner's worker thread (threads cannot be killed: a
    timed-out or abandoned execution is left to finish on its own and its result is discarded)."""

    def __init__(self, task: Task, context: ExecutionContext) -> None:
        self.task = task
        self.context = context
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.traceback = ""

    def _run(self) -> None:
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


class _Worker:
    """A daemon thread that runs executions one after the other (a thread per task cost more
    than a no-op task). An execution that is abandoned (timeout, hand-back) keeps its thread:
    the runner then starts a new worker, and the old one exits once that execution returns."""

    def __init__(self, runner_id: str) -> None:
        self._queue: queue.SimpleQueue[_Execution | None] = queue.SimpleQueue()
        self.thread = threading.Thread(
            target=self._loop, name=f"conveyor-worker-{runner_id}", daemon=True
        )
        self.thread.start()

    def run(self, execution: _Execution) -> None:
        self._queue.put(execution)

    def retire(self) -> None:
        """Exit after the current execution (if any) returns."""
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            execution = self._queue.get()
            if execution is None:
                return
            execution._run()


def _context(claimed: ClaimedTask, runner_id: str) -> dict[str, str]:
    """``extra=`` of a log line about one task: its ids become fields of JSON logs."""
    return {"task_id": str(claimed.id), "job_id": str(claimed.job_id), "runner_id": runner_id}


def error_of(exc: BaseException, tb: str = "") -> TaskError:
    """How a user exception is recorded."""
    return TaskError(type(exc).__name__, str(exc), tb)


class TaskRunner:
    """Runs the tasks of one cluster that its registry can execute; see the module docstring."""

    def __init__(
        self,
        service: Orchestrator,
        cluster: str,
        registry: Runner,
        cache: JobCache,
        settings: RunnerSettings | None = None,
        runner_id: str | None = None,
    ) -> None:
        self.service = service
        self.cluster = cluster
        self.registry = registry
        self.cache = cache
        self.settings = settings or RunnerSettings()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = runner_id or f"{self.host}-{self.pid}-{uuid7().hex[-8:]}"
        self.computed = 0
        self.failed = 0
        self.abandoned = 0
        #: Completions that claimed the runner's next task in their own transaction.
        self.fused = 0
        self._identifiers = registry.registered()
        self._stop = threading.Event()
        self._signals = 0
        self._current: TaskId | None = None
        self._next_sweep = 0.0
        self._next_heartbeat = 0.0
        self._next_safety_poll = 0.0
        self._registered = False
        self._worker: _Worker | None = None
        self._consumer: Consumer | None = None
        #: A delivery received while a result was being recorded, not handled yet.
        self._pending: Delivery | None = None
        #: The pending delivery's task, once offered to a completion's transaction.
        self._offered: TaskId | None = None

    # -- public API ----------------------------------------------------------------------------
    def run_all(self) -> None:
        """Run tasks until the store holds no dispatchable task this runner could run.

        Decided from the store, not from an empty queue. Returns with its consumer cancelled,
        any held delivery given back and nothing of its own running.
        """
        self._stop.clear()
        self._loop(until_idle=True)

    def run_forever(self) -> None:
        """Run tasks until stopped (``stop()``, SIGTERM or SIGINT; see the module docstring)."""
        self._stop.clear()
        previous = self._install_signal_handlers()
        try:
            self._register()
            self._loop(until_idle=False)
        finally:
            self._restore_signal_handlers(previous)
            self._unregister()

    def stop(self) -> None:
        """Ask the runner to stop: no new task is taken; the running one gets its grace period."""
        self._stop.set()

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- loop ----------------------------------------------------------------------------------
    def _loop(self, *, until_idle: bool) -> None:
        consumer = self.service.broker.consumer(self.cluster, self._identifiers)
        self._consumer = consumer
        receive_timeout = 0.05 if until_idle else self.settings.receive_timeout
        try:
            while not self._stop.is_set():
                try:
                    self._housekeeping(force_sweep=False)
                    delivery, self._pending = self._pending, None
                    if delivery is None:
                        delivery = consumer.receive(receive_timeout)
                    if delivery is not None:
                        self._handle(delivery)
                    elif until_idle:
                        self._housekeeping(force_sweep=True)
                        if not self._claim_from_store() and not self.service.has_dispatchable(
                            self.cluster, self._identifiers
                        ):
                            return
                    elif time.monotonic() >= self._next_safety_poll:
                        self._next_safety_poll = time.monotonic() + self.settings.sweep_interval
                        self._claim_from_store()
                except InfrastructureError as exc:
                    if until_idle:
                        raise
                    log.warning("runner %s: %s; retrying in 1s", self.id, exc)
                    # After a store outage the sweeps give live holders back the time it
                    # took from them (Orchestrator.expire_leases): no pause needed here.
                    self._stop.wait(1.0)
                except Exception:
                    if until_idle:
                        raise
                    # A bug must not silently kill a long-running runner: the task's lease
                    # expires and it runs elsewhere; this runner goes on.
                    log.exception("runner %s: unexpected error; continuing", self.id)
                    self._stop.wait(1.0)
        finally:
            pending, self._pending, self._consumer = self._pending, None, None
            if pending is not None:
                pending.requeue()
            consumer.close()
            if self._worker is not None:
                self._worker.retire()
                self._worker = None

    def _claim_from_store(self) -> bool:
        """The safety net behind the broker: an idle runner whose queues are quiet claims a
        dispatchable task straight from the store (SQL is the truth; a lost or not yet
        republished message never strands work). A message for it that turns up later is
        dropped by the claim rule."""
        claimed = self.service.claim_next(
            self.cluster, self._identifiers, self.id, self.settings.lease
        )
        if claimed is None:
            return False
        if self._consumer is not None:
            self._consumer.pause()  # busy now: a message that arrives is for an idle runner
        self._run_chain(claimed, None)
        return True

    def _handle(self, delivery: Delivery) -> None:
        if delivery.task_id is None:  # serverless dispatch: claim the next task from the store
            claimed = self.service.claim_next(
                self.cluster, self._identifiers, self.id, self.settings.lease
            )
            if claimed is None:
                delivery.requeue()
                return
            delivery.ack()
            self._run_chain(claimed, None)
            return
        if delivery.identifier is not None and self.registry.resolve(delivery.identifier) is None:
            log.warning(
                "dropping a message for task %s: its identifier %s is not registered on runner "
                "%s (mismatched routing or header)",
                delivery.task_id,
                delivery.identifier,
                self.id,
            )
            delivery.ack()
            return
        try:
            won = self.service.claim(delivery.task_id, self.cluster, self.id, self.settings.lease)
        except BaseException:
            delivery.requeue()
            raise
        if not isinstance(won, ClaimedTask):  # a ClaimRefusal: drop the message, saying why
            log.log(
                logging.WARNING if won.suspicious else logging.INFO,
                "runner %s drops the message of task %s: %s",
                self.id,
                won.task_id,
                won,
                extra={"task_id": str(won.task_id), "runner_id": self.id},
            )
            delivery.ack()
            return
        self._run_chain(won, delivery)

    def _housekeeping(self, *, force_sweep: bool) -> None:
        now = time.monotonic()
        if self._registered and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.settings.heartbeat_interval
            self.service.runner_heartbeat(self.id, self._current, self.computed, self.failed)
        interval = 0.2 if force_sweep else self.settings.sweep_interval
        if now >= self._next_sweep:
            self._next_sweep = now + interval
            self.service.expire_leases()
            self.service.publish_outbox()

    # -- one task ------------------------------------------------------------------------------
    def _run_chain(self, claimed: ClaimedTask, delivery: Delivery | None) -> None:
        """Run ``claimed``, then each task that its completion's transaction claimed."""
        current: tuple[ClaimedTask, Delivery | None] | None = (claimed, delivery)
        while current is not None:
            claimed, delivery = current
            try:
                current = self._run_claimed(claimed, delivery)
            finally:
                if delivery is not None:
                    delivery.ack()  # a no-op if acked already; the lease covers a crash before
            if current is not None:
                # A backlog can chain for minutes: heartbeats and sweeps still run between
                # tasks, as they do between deliveries in the loop.
                try:
                    self._housekeeping(force_sweep=False)
                except InfrastructureError as exc:
                    log.warning("runner %s: housekeeping failed: %s", self.id, exc)

    def _run_claimed(
        self, claimed: ClaimedTask, delivery: Delivery | None
    ) -> tuple[ClaimedTask, Delivery] | None:
        self._current = claimed.id
        try:
            return self._execute(claimed, delivery)
        finally:
            self._current = None

    def _execute(
        self, claimed: ClaimedTask, delivery: Delivery | None
    ) -> tuple[ClaimedTask, Delivery] | None:
        """Run one claimed task and record its outcome; the next task and its delivery if the
        completion claimed one (see ``_complete_and_claim_next``)."""
        cls = self.registry.resolve(claimed.identifier)
        if cls is None:
            log.warning(
                "runner %s cannot run %s: handing task %s back",
                self.id,
                claimed.identifier,
                claimed.id,
                extra=_context(claimed, self.id),
            )
            self.service.give_back(
                claimed, f"runner {self.id} has no task class for {claimed.identifier}"
            )
            return None
        try:
            task = deserialize_task(cls, claimed.input)
        except InputDecodeError as exc:
            self.failed += 1
            self.service.fail(claimed, TaskError("InputDecodeError", str(exc)), user_error=True)
            return None
        context = ExecutionContext(
            claimed,
            cache=self.cache.group(str(claimed.job_id)),
            fallback_cluster=self.cluster,
            max_input_bytes=self.settings.max_input_bytes,
        )
        execution = _Execution(task, context)
        log.debug(
            "runner %s starts %s (task %s, attempt %d)",
            self.id,
            claimed.identifier,
            claimed.id,
            claimed.attempt,
            extra=_context(claimed, self.id),
        )
        if self._worker is None:
            self._worker = _Worker(self.id)
        self._worker.run(execution)
        if not self._supervise(claimed, execution):
            if not execution.done.is_set():  # user code still runs: leave it its thread
                self._worker.retire()
                self._worker = None
            return None
        display = context.current_task.display
        progress = context._progress_snapshot()
        if execution.error is not None:
            self.failed += 1
            log.info(
                "task %s (%s) failed: %r",
                claimed.id,
                claimed.identifier,
                execution.error,
                extra=_context(claimed, self.id),
            )
            recorded = self.service.fail(
                claimed,
                error_of(execution.error, execution.traceback),
                display=display,
                progress=progress,
            )
        else:
            self.computed += 1
            subtasks = context._subtask_specs()
            if delivery is not None and delivery.task_id is not None:
                return self._complete_and_claim_next(claimed, delivery, subtasks, display, progress)
            recorded = self.service.complete(claimed, subtasks, display, progress)
        if not recorded:
            self._discarded(claimed)
        return None

    def _discarded(self, claimed: ClaimedTask) -> None:
        log.warning(
            "the result of task %s attempt %d was discarded: its lease passed to another "
            "runner meanwhile",
            claimed.id,
            claimed.attempt,
            extra=_context(claimed, self.id),
        )

    def _complete_and_claim_next(
        self,
        claimed: ClaimedTask,
        delivery: Delivery,
        subtasks: list[NewTask],
        display: str | None,
        progress: dict[str | None, tuple[int, int]],
    ) -> tuple[ClaimedTask, Delivery] | None:
        """Record a success and, in the same transaction, claim the next delivered task.

        The message is acked before the result commits: the claim is durable and its lease
        covers a crash from here on, so nothing is lost; and acking now lets the broker send the
        next message (prefetch 1) during the result's round trips, in time for the transaction
        to claim it too: one commit per task instead of two in a backlog.
        """
        delivery.ack()
        self._offered = None
        recorded, following = self.service.complete_and_claim(
            claimed,
            subtasks,
            display,
            progress,
            lambda: self._following(claimed.job_id),
            self.cluster,
            self.id,
            self.settings.lease,
        )
        if not recorded:
            self._discarded(claimed)
        offered, self._offered = self._offered, None
        if offered is None:
            return None  # nothing in hand, or not claimable here: the loop handles it
        pending, self._pending = self._pending, None
        assert pending is not None and pending.task_id == offered
        if not isinstance(following, ClaimedTask):  # refused: drop it, saying why
            if following is not None:  # always, once a task was offered
                log.log(
                    logging.WARNING if following.suspicious else logging.INFO,
                    "runner %s drops the message of task %s: %s",
                    self.id,
                    offered,
                    following,
                    extra={"task_id": str(offered), "runner_id": self.id},
                )
            pending.ack()
            return None
        self.fused += 1
        return following, pending

    def _following(self, finished_job: JobId) -> TaskId | None:
        """The task of the next delivery, for the completion's transaction to claim; None if
        there is none yet or it must be handled on its own. Received once: a retried
        transaction gets the same answer."""
        if self._pending is None:
            if self._stop.is_set() or self._consumer is None:
                return None
            try:
                self._pending = self._consumer.receive(0.0)
            except Exception:  # the loop's own receive reports it
                log.debug("receiving the next delivery failed", exc_info=True)
                return None
        pending = self._pending
        if (
            pending is None
            or pending.task_id is None
            or not may_claim_after(finished_job, pending.job_id)
            or (
                pending.identifier is not None and self.registry.resolve(pending.identifier) is None
            )
        ):
            return None
        self._offered = pending.task_id
        return pending.task_id

    def _supervise(self, claimed: ClaimedTask, execution: _Execution) -> bool:
        """Wait for the execution while keeping its lease; False if the result must not be
        recorded by the caller (timed out, handed back or the lease was lost)."""
        settings = self.settings
        timeout = claimed.timeout if claimed.timeout is not None else settings.default_timeout
        started = time.monotonic()
        next_extend = started + settings.lease / 3
        next_flush = started + settings.progress_interval
        shutdown_deadline: float | None = None
        last_live: tuple[str, dict[str | None, tuple[int, int]]] = (claimed.display, {})
        while True:
            now = time.monotonic()
            waits = [next_extend - now, next_flush - now, 1.0]
            if timeout is not None:
                waits.append(started + timeout - now)
            if shutdown_deadline is not None:
                waits.append(shutdown_deadline - now)
            if execution.done.wait(max(min(waits), 0.0)):
                return True
            now = time.monotonic()
            context = execution.context
            if timeout is not None and now - started >= timeout:
                self.failed += 1
                self.abandoned += 1
                log.warning(
                    "task %s timed out after %.1fs; abandoning its thread",
                    claimed.id,
                    timeout,
                    extra=_context(claimed, self.id),
                )
                self.service.fail(
                    claimed,
                    TaskError("TaskTimeout", f"execution exceeded its {timeout:g}s timeout"),
                    outcome="timeout",
                    display=context.current_task.display,
                    progress=context._progress_snapshot(),
                )
                return False
            if self._stop.is_set():
                if shutdown_deadline is None:
                    shutdown_deadline = now + settings.grace_period
                    log.info(
                        "waiting up to %.0fs for task %s to finish",
                        settings.grace_period,
                        claimed.id,
                        extra=_context(claimed, self.id),
                    )
                elif now >= shutdown_deadline:
                    self.abandoned += 1
                    log.warning(
                        "task %s did not finish within the grace period: handing it back",
                        claimed.id,
                        extra=_context(claimed, self.id),
                    )
                    self.service.give_back(claimed, "runner shut down before the task finished")
                    return False
            try:
                if now >= next_extend:
                    next_extend = now + settings.lease / 3
                    if not self.service.extend_lease(claimed, settings.lease):
                        self.abandoned += 1
                        log.warning(
                            "lost the lease of task %s (attempt %d): another runner owns it now; "
                            "this execution's result will be discarded",
                            claimed.id,
                            claimed.attempt,
                            extra=_context(claimed, self.id),
                        )
                        return False
                if now >= next_flush:
                    next_flush = now + settings.progress_interval
                    live = (context.current_task.display, context._progress_snapshot())
                    if live != last_live:
                        self.service.report_live(claimed, live[0], live[1])
                        last_live = live
                if self._registered and now >= self._next_heartbeat:
                    self._next_heartbeat = now + settings.heartbeat_interval
                    self.service.runner_heartbeat(self.id, claimed.id, self.computed, self.failed)
            except InfrastructureError as exc:
                log.warning(
                    "store unreachable while task %s runs: %s",
                    claimed.id,
                    exc,
                    extra=_context(claimed, self.id),
                )

    # -- registry and signals ------------------------------------------------------------------
    def _register(self) -> None:
        now_info = RunnerInfo(
            id=self.id,
            cluster=self.cluster,
            host=self.host,
            pid=self.pid,
            identifiers=tuple(self.registry.task_identifiers),
            started_at=_utcnow(),
            last_seen=_utcnow(),
        )
        try:
            self.service.register_runner(now_info)
            self._registered = True
        except InfrastructureError as exc:
            log.warning("could not register runner %s: %s", self.id, exc)

    def _unregister(self) -> None:
        if self._registered:
            with contextlib.suppress(InfrastructureError):
                self.service.set_runner_state(self.id, "stopped")
            self._registered = False

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _restore_signal_handlers(self, previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting now; the task lease will expire elsewhere")
            os._exit(128 + signum)
        log.info("signal %d: finishing the current task, then stopping", signum)
        self._stop.set()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
