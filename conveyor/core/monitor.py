"""The monitor loop: the safety net that keeps a cluster healthy when runners die.

Every runner already runs the lease-expiry and outbox sweeps itself, so recovery never depends
on this process; the monitor adds a steady cadence when no runner is alive, and marks runners
that went silent as gone. Every step is an idempotent store operation, so several monitors may
run at once (concurrent sweepers skip each other's locked rows).

After a database outage the monitor needs no pause of its own: its sweep, like every runner's,
is ``Orchestrator.expire_leases``, which takes only leases overdue by more than the outage this
process saw (holders could not extend meanwhile), even when the sweep itself waited through it.

Signals are the entry point's (``conveyor monitor`` wraps ``run_forever`` in
``conveyor.process.monitor_signals``): here there is only ``stop()``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from conveyor.core.errors import InfrastructureError
from conveyor.core.service import Orchestrator

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """Tunables of the monitor."""

    #: Seconds between sweeps.
    interval: float = 5.0
    #: Seconds without a heartbeat after which a runner is marked gone.
    runner_silence: float = 60.0


@dataclass(frozen=True, slots=True)
class MonitorReport:
    """What one sweep did."""

    requeued: int
    published: int
    runners_gone: int


class Monitor:
    """Sweeps expired leases, the outbox and silent runners; see the module docstring."""

    def __init__(self, service: Orchestrator, settings: MonitorSettings | None = None) -> None:
        self.service = service
        self.settings = settings or MonitorSettings()
        self._stop = threading.Event()

    def run_once(self) -> MonitorReport:
        """One sweep of every duty."""
        requeued = self.service.expire_leases()
        published = self.service.publish_outbox()
        gone = self.service.mark_silent_runners(self.settings.runner_silence)
        report = MonitorReport(requeued, published, gone)
        if requeued or published or gone:
            log.info(
                "monitor: %d expired tasks requeued, %d messages published, %d runners gone",
                requeued,
                published,
                gone,
            )
        return report

    def run_forever(self) -> None:
        """Sweep every ``interval`` seconds until ``stop()``."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except InfrastructureError as exc:
                log.warning("monitor sweep failed: %s; retrying", exc)
            self._stop.wait(self.settings.interval)

    def stop(self) -> None:
        self._stop.set()
