"""The task runner, as small parts that start and stop with its loop (Celery's bootsteps are
the model): see :mod:`.loop` for how they compose.

============================  =================================================================
module                        holds
============================  =================================================================
:mod:`.settings`              ``RunnerSettings``, the defaults of every runner tunable
:mod:`.housekeeping`          registry row, heartbeats, lease-expiry and outbox sweeps
:mod:`.lease`                 ``LeaseKeeper``: extend the lease, flush live progress, heartbeat
:mod:`.handoff`               ``DeliveryHandoff``: consumer, held delivery, fused next claim
:mod:`.execution`             worker thread, timeout, shutdown grace; ``error_of``
:mod:`.loop`                  ``TaskRunner``: claims, records outcomes, composes the parts
============================  =================================================================

Signals and process exit are not here: the entry points install them (:mod:`conveyor.process`).
"""

from conveyor.core.runner.execution import error_of
from conveyor.core.runner.handoff import ConsumerFactory
from conveyor.core.runner.housekeeping import RunnerStats
from conveyor.core.runner.loop import SignalScope, TaskRunner
from conveyor.core.runner.settings import RunnerSettings

__all__ = [
    "ConsumerFactory",
    "RunnerSettings",
    "RunnerStats",
    "SignalScope",
    "TaskRunner",
    "error_of",
]
