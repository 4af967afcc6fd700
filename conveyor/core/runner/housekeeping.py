"""Housekeeping: the runner's registry row, its heartbeats and the sweeps every runner runs.

One implementation, on one cadence, whatever the runner is doing: the loop calls it between
deliveries and between chained tasks, and the lease keeper calls its heartbeat while a task
runs (a backlog can chain for minutes, a task can run for hours: neither may make the runner
look gone or leave expired leases unswept).
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from conveyor.core.errors import InfrastructureError
from conveyor.core.identifiers import TaskId
from conveyor.core.model import RunnerInfo
from conveyor.core.service import Orchestrator

from .settings import RunnerSettings

log = logging.getLogger("conveyor.core.runner")

#: Seconds between sweeps while ``run_all`` drains the store (it stops once nothing is left).
DRAIN_SWEEP_INTERVAL = 0.2


@dataclass(slots=True)
class RunnerStats:
    """What a runner did, reported in its heartbeats."""

    computed: int = 0
    failed: int = 0
    #: Executions given up: timed out, handed back at shutdown or their lease lost.
    abandoned: int = 0
    #: Completions that claimed the runner's next task in their own transaction.
    fused: int = 0


class Housekeeping:
    """Start: register the runner (``run_forever`` only); stop: mark it stopped. Between the
    two, ``heartbeat`` and ``sweep`` run whenever their interval has passed."""

    def __init__(self, service: Orchestrator, settings: RunnerSettings, stats: RunnerStats) -> None:
        self._service = service
        self._settings = settings
        self._stats = stats
        self._runner_id: str | None = None
        self._next_heartbeat = 0.0
        self._next_sweep = 0.0

    @property
    def registered(self) -> bool:
        return self._runner_id is not None

    def start(self, info: RunnerInfo) -> None:
        """Register the runner; a store that is down only costs the heartbeats (logged)."""
        try:
            self._service.register_runner(info)
            self._runner_id = info.id
        except InfrastructureError as exc:
            log.warning("could not register runner %s: %s", info.id, exc)

    def stop(self) -> None:
        if self._runner_id is not None:
            with contextlib.suppress(InfrastructureError):
                self._service.set_runner_state(self._runner_id, "stopped")
            self._runner_id = None

    def tick(self, current: TaskId | None = None, *, force_sweep: bool = False) -> None:
        """The heartbeat and the sweeps, each if due (``force_sweep``: the drain cadence)."""
        self.heartbeat(current)
        self.sweep(force=force_sweep)

    def heartbeat(self, current: TaskId | None) -> None:
        now = time.monotonic()
        if self._runner_id is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self._settings.heartbeat_interval
            stats = self._stats
            self._service.runner_heartbeat(self._runner_id, current, stats.computed, stats.failed)

    def sweep(self, *, force: bool) -> None:
        """Expired leases back to the queue and the outbox out; every runner runs them, so
        recovery never depends on a monitor."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + (
                DRAIN_SWEEP_INTERVAL if force else self._settings.sweep_interval
            )
            self._service.expire_leases()
            self._service.publish_outbox()
