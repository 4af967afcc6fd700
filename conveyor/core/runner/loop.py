"""``TaskRunner``: the loop that composes the runner's parts.

One runner executes one task at a time. Its parts start and stop with the loop, in this order:
the delivery hand-off (:mod:`.handoff`, the consumer), housekeeping (:mod:`.housekeeping`,
registry row, heartbeats, sweeps; registered by ``run_forever`` only) and the executor
(:mod:`.execution`, the worker thread); each task gets a lease keeper (:mod:`.lease`).

Shutdown: ``stop()`` stops taking tasks and lets the running task finish within the grace
period; otherwise it is handed back (QUEUED, no retry counted) so another runner takes it at
once. Signals are the entry point's business (:mod:`conveyor.process`, handed in as
``signals``): there, SIGTERM/SIGINT call ``stop()`` and a second signal exits the process at
once, leaving the task to its lease.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType

from conveyor.core.context import ExecutionContext, TaskOutcome
from conveyor.core.errors import InfrastructureError
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, RunnerInfo, TaskError
from conveyor.core.ports import Delivery, JobCache
from conveyor.core.registry import Runner
from conveyor.core.serialization import InputDecodeError, deserialize_task
from conveyor.core.service import Orchestrator

from .execution import Execution, Executor, error_of
from .handoff import ConsumerFactory, DeliveryHandoff
from .housekeeping import Housekeeping, RunnerStats
from .lease import LeaseKeeper, log_context
from .settings import RunnerSettings

log = logging.getLogger("conveyor.core.runner")

#: Wraps ``run_forever`` in the entry point's signal handling (``conveyor.process``).
SignalScope = Callable[["TaskRunner"], AbstractContextManager[None]]


class TaskRunner:
    """Runs the tasks of one cluster that its registry can execute; see the module docstring.

    ``consumers`` opens the runner's consumer (default: the service's broker's); ``signals``
    wraps ``run_forever`` (default: none, as a runner embedded in another program wants).
    """

    def __init__(
        self,
        service: Orchestrator,
        cluster: str,
        registry: Runner,
        cache: JobCache,
        settings: RunnerSettings | None = None,
        runner_id: str | None = None,
        *,
        consumers: ConsumerFactory | None = None,
        signals: SignalScope | None = None,
    ) -> None:
        self.service = service
        self.cluster = cluster
        self.registry = registry
        self.cache = cache
        self.settings = settings or RunnerSettings()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = runner_id or f"{self.host}-{self.pid}-{uuid7().hex[-8:]}"
        self.stats = RunnerStats()
        self._identifiers = registry.registered()
        self._stop = threading.Event()
        self._signals = signals
        self._next_safety_poll = 0.0
        self._handoff = DeliveryHandoff(
            consumers or service.broker.consumer,
            cluster,
            self._identifiers,
            registry,
            self._stop,
        )
        self._housekeeper = Housekeeping(service, self.settings, self.stats)
        self._executor = Executor(service, self.settings, self.stats, self.id, self._stop)

    # -- counters (``stats``) ------------------------------------------------------------------
    @property
    def computed(self) -> int:
        return self.stats.computed

    @property
    def failed(self) -> int:
        return self.stats.failed

    @property
    def abandoned(self) -> int:
        return self.stats.abandoned

    @property
    def fused(self) -> int:
        """Completions that claimed the runner's next task in their own transaction."""
        return self.stats.fused

    # -- public API ----------------------------------------------------------------------------
    def run_all(self) -> None:
        """Run tasks until the store holds no dispatchable task this runner could run.

        Decided from the store, not from an empty queue. Returns with its consumer cancelled,
        any held delivery given back and nothing of its own running.
        """
        self._stop.clear()
        self._loop(until_idle=True)

    def run_forever(self) -> None:
        """Run tasks until ``stop()`` (or a signal, where the entry point handles them)."""
        self._stop.clear()
        scope = self._signals(self) if self._signals is not None else contextlib.nullcontext()
        with scope:
            try:
                self._housekeeper.start(self._info())
                self._loop(until_idle=False)
            finally:
                self._housekeeper.stop()

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
        receive_timeout = 0.05 if until_idle else self.settings.receive_timeout
        self._handoff.start()
        try:
            while not self._stop.is_set():
                try:
                    self._housekeeping(force_sweep=False)
                    delivery = self._handoff.next(receive_timeout)
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
            self._handoff.stop()
            self._executor.stop()

    def _housekeeping(self, *, force_sweep: bool) -> None:
        """Between deliveries and between chained tasks (nothing of ours runs then)."""
        self._housekeeper.tick(None, force_sweep=force_sweep)

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
        self._handoff.pause()  # busy now: a message that arrives is for an idle runner
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

    # -- one task ------------------------------------------------------------------------------
    def _run_chain(self, claimed: ClaimedTask, delivery: Delivery | None) -> None:
        """Run ``claimed``, then each task that its completion's transaction claimed."""
        current: tuple[ClaimedTask, Delivery | None] | None = (claimed, delivery)
        while current is not None:
            claimed, delivery = current
            try:
                current = self._execute(claimed, delivery)
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
                extra=log_context(claimed, self.id),
            )
            self.service.give_back(
                claimed, f"runner {self.id} has no task class for {claimed.identifier}"
            )
            return None
        try:
            task = deserialize_task(cls, claimed.input)
        except InputDecodeError as exc:
            self.stats.failed += 1
            self.service.fail(claimed, TaskError("InputDecodeError", str(exc)), user_error=True)
            return None
        context = ExecutionContext(
            claimed,
            cache=self.cache.group(str(claimed.job_id)),
            fallback_cluster=self.cluster,
            max_input_bytes=self.settings.max_input_bytes,
        )
        execution = Execution(task, context)
        log.debug(
            "runner %s starts %s (task %s, attempt %d)",
            self.id,
            claimed.identifier,
            claimed.id,
            claimed.attempt,
            extra=log_context(claimed, self.id),
        )
        keeper = LeaseKeeper(
            self.service,
            self.settings,
            self._housekeeper,
            self.stats,
            self.id,
            claimed,
            context,
            time.monotonic(),
        )
        if not self._executor.run(claimed, execution, keeper):
            return None
        return self._record(claimed, delivery, execution)

    def _record(
        self, claimed: ClaimedTask, delivery: Delivery | None, execution: Execution
    ) -> tuple[ClaimedTask, Delivery] | None:
        """Record a finished execution's outcome (see ``_complete_and_claim_next``)."""
        if execution.error is not None:
            outcome = execution.context.outcome(with_subtasks=False)
            self.stats.failed += 1
            log.info(
                "task %s (%s) failed: %r",
                claimed.id,
                claimed.identifier,
                execution.error,
                extra=log_context(claimed, self.id),
            )
            recorded = self.service.fail(
                claimed,
                error_of(execution.error, execution.traceback),
                display=outcome.display,
                progress=outcome.progress,
            )
        else:
            outcome = execution.context.outcome()
            self.stats.computed += 1
            if delivery is not None and delivery.task_id is not None:
                return self._complete_and_claim_next(claimed, delivery, outcome)
            recorded = self.service.complete(
                claimed, outcome.subtasks, outcome.display, outcome.progress
            )
        if not recorded:
            self._discarded(claimed)
        return None

    def _discarded(self, claimed: ClaimedTask) -> None:
        log.warning(
            "the result of task %s attempt %d was discarded: its lease passed to another "
            "runner meanwhile",
            claimed.id,
            claimed.attempt,
            extra=log_context(claimed, self.id),
        )

    def _complete_and_claim_next(
        self, claimed: ClaimedTask, delivery: Delivery, outcome: TaskOutcome
    ) -> tuple[ClaimedTask, Delivery] | None:
        """Record a success and, in the same transaction, claim the next delivered task.

        The message is acked before the result commits: the claim is durable and its lease
        covers a crash from here on, so nothing is lost; and acking now lets the broker send the
        next message (prefetch 1) during the result's round trips, in time for the transaction
        to claim it too: one commit per task instead of two in a backlog.
        """
        delivery.ack()
        self._handoff.forget_offer()
        recorded, following = self.service.complete_and_claim(
            claimed,
            outcome.subtasks,
            outcome.display,
            outcome.progress,
            lambda: self._following(claimed.job_id),
            self.cluster,
            self.id,
            self.settings.lease,
        )
        if not recorded:
            self._discarded(claimed)
        taken = self._handoff.take_offered()
        if taken is None:
            return None  # nothing in hand, or not claimable here: the loop handles it
        offered, pending = taken
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
        self.stats.fused += 1
        return following, pending

    def _following(self, finished_job: JobId) -> TaskId | None:
        """The hand-off's next task for the completion's transaction (``DeliveryHandoff``)."""
        return self._handoff.following(finished_job)

    # -- registry ------------------------------------------------------------------------------
    def _info(self) -> RunnerInfo:
        now = dt.datetime.now(dt.UTC)
        return RunnerInfo(
            id=self.id,
            cluster=self.cluster,
            host=self.host,
            pid=self.pid,
            identifiers=tuple(self.registry.task_identifiers),
            started_at=now,
            last_seen=now,
        )
