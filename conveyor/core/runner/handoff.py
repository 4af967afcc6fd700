"""The delivery hand-off: the runner's consumer and the one delivery it may hold.

Start opens the consumer, stop gives a held delivery back and closes it. In between, the loop
takes deliveries with ``next``; a completion's transaction asks ``following`` for the task of
the next delivery so that it can claim it in the same commit (one commit per task instead of
two in a backlog), and ``take_offered`` hands that delivery over once the transaction is done.
A runner about to run store-claimed work ``pause``s the consumer: a message that arrives then
is for an idle runner.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import RegisteredIdentifier
from conveyor.core.ports import Consumer, Delivery
from conveyor.core.registry import Runner
from conveyor.core.usecases import may_claim_after

log = logging.getLogger("conveyor.core.runner")

#: Opens a runner's consumer: ``Broker.consumer`` (cluster, identifiers to consume).
ConsumerFactory = Callable[[str, Sequence[RegisteredIdentifier]], Consumer]


class DeliveryHandoff:
    """See the module docstring; ``pending`` is a delivery received but not handled yet."""

    def __init__(
        self,
        consumers: ConsumerFactory,
        cluster: str,
        identifiers: Sequence[RegisteredIdentifier],
        registry: Runner,
        stopping: threading.Event,
    ) -> None:
        self._consumers = consumers
        self._cluster = cluster
        self._identifiers = identifiers
        self._registry = registry
        self._stopping = stopping
        self._consumer: Consumer | None = None
        #: A delivery received while a result was being recorded, not handled yet.
        self._pending: Delivery | None = None
        #: The pending delivery's task, once offered to a completion's transaction.
        self._offered: TaskId | None = None

    def start(self) -> None:
        self._consumer = self._consumers(self._cluster, self._identifiers)

    def stop(self) -> None:
        pending, self._pending = self._pending, None
        consumer, self._consumer = self._consumer, None
        if pending is not None:
            pending.requeue()
        if consumer is not None:
            consumer.close()

    def next(self, timeout: float) -> Delivery | None:
        """The held delivery if any, else one received within ``timeout`` seconds."""
        delivery, self._pending = self._pending, None
        if delivery is None and self._consumer is not None:
            delivery = self._consumer.receive(timeout)
        return delivery

    def pause(self) -> None:
        if self._consumer is not None:
            self._consumer.pause()

    def following(self, finished_job: JobId) -> TaskId | None:
        """The task of the next delivery, for the completion's transaction to claim; None if
        there is none yet or it must be handled on its own. Received once: a retried
        transaction gets the same answer."""
        if self._pending is None:
            if self._stopping.is_set() or self._consumer is None:
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
                pending.identifier is not None
                and self._registry.resolve(pending.identifier) is None
            )
        ):
            return None
        self._offered = pending.task_id
        return pending.task_id

    def forget_offer(self) -> None:
        """Before a completion's transaction: nothing offered yet."""
        self._offered = None

    def take_offered(self) -> tuple[TaskId, Delivery] | None:
        """The delivery whose task the transaction was offered, now the caller's; None if none
        was offered (a held delivery then stays for ``next``)."""
        offered, self._offered = self._offered, None
        if offered is None:
            return None
        pending, self._pending = self._pending, None
        assert pending is not None and pending.task_id == offered
        return offered, pending
