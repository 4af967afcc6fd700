"""The lease keeper: what the runner's thread does for a task while user code runs.

It extends the lease every third of it (a lost lease means another runner owns the task: the
execution's result will be discarded), writes live progress and display when they changed, and
keeps the runner's heartbeat going. A store outage is logged and tried again at the next due
time: the execution goes on, and the expiry sweeps give the lease back the outage's time.
"""

from __future__ import annotations

import logging

from conveyor.core.context import ExecutionContext, Progress
from conveyor.core.errors import InfrastructureError
from conveyor.core.model import ClaimedTask
from conveyor.core.service import Orchestrator

from .housekeeping import Housekeeping, RunnerStats
from .settings import RunnerSettings

log = logging.getLogger("conveyor.core.runner")


def log_context(claimed: ClaimedTask, runner_id: str) -> dict[str, str]:
    """``extra=`` of a log line about one task: its ids become fields of JSON logs."""
    return {"task_id": str(claimed.id), "job_id": str(claimed.job_id), "runner_id": runner_id}


class LeaseKeeper:
    """Keeps one claimed task's lease while it runs; ``due`` says when ``tick`` has work."""

    def __init__(
        self,
        service: Orchestrator,
        settings: RunnerSettings,
        housekeeping: Housekeeping,
        stats: RunnerStats,
        runner_id: str,
        claimed: ClaimedTask,
        context: ExecutionContext,
        started: float,
    ) -> None:
        self._service = service
        self._settings = settings
        self._housekeeping = housekeeping
        self._stats = stats
        self._runner_id = runner_id
        self._claimed = claimed
        self._context = context
        self._next_extend = started + settings.lease / 3
        self._next_flush = started + settings.progress_interval
        self._last_live: tuple[str, Progress] = (claimed.display, {})

    @property
    def due(self) -> float:
        """The monotonic time of the next extension or flush."""
        return min(self._next_extend, self._next_flush)

    def tick(self, now: float) -> bool:
        """Extend, flush and heartbeat, each if due; False once the lease was lost."""
        claimed, settings = self._claimed, self._settings
        try:
            if now >= self._next_extend:
                self._next_extend = now + settings.lease / 3
                if not self._service.extend_lease(claimed, settings.lease):
                    self._stats.abandoned += 1
                    log.warning(
                        "lost the lease of task %s (attempt %d): another runner owns it now; "
                        "this execution's result will be discarded",
                        claimed.id,
                        claimed.attempt,
                        extra=log_context(claimed, self._runner_id),
                    )
                    return False
            if now >= self._next_flush:
                self._next_flush = now + settings.progress_interval
                live = (self._context.current_task.display, self._context.progress_snapshot())
                if live != self._last_live:
                    self._service.report_live(claimed, live[0], live[1])
                    self._last_live = live
            self._housekeeping.heartbeat(claimed.id)
        except InfrastructureError as exc:
            log.warning(
                "store unreachable while task %s runs: %s",
                claimed.id,
                exc,
                extra=log_context(claimed, self._runner_id),
            )
        return True
