"""The serverless dispatcher: no broker at all, runners claim ready tasks from the store.

Each ``receive`` hands out a *poll* delivery (``task_id=None``) after a back-off wait; the runner
then claims the next dispatchable task straight from the store (``claim_next``: the same claim
and lease rules as with a broker, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL). Acking a poll
delivery means work was found (poll again at once), requeueing means none was (back off, up to
``max_interval``). This is what the embedded default and ``broker_url="none://"`` use.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import DispatchMessage, RegisteredIdentifier


class PollingDispatcher:
    """A broker port implementation that sends nothing and tells runners to poll."""

    requires_publish = False

    def __init__(self, min_interval: float = 0.005, max_interval: float = 1.0) -> None:
        self.min_interval = min_interval
        self.max_interval = max_interval

    def publish(self, messages: Sequence[DispatchMessage]) -> None:
        """Nothing to send: the store is the queue."""

    def consumer(
        self, cluster: str, identifiers: Sequence[RegisteredIdentifier]
    ) -> PollingConsumer:
        return PollingConsumer(self.min_interval, self.max_interval)

    def close(self) -> None:
        """Nothing to release."""


class PollDelivery:
    """ "Claim the next dispatchable task"; settling it tunes the consumer's back-off."""

    task_id: TaskId | None = None
    identifier: TaskIdentifier | None = None
    job_id: JobId | None = None

    def __init__(self, consumer: PollingConsumer) -> None:
        self._consumer = consumer

    def ack(self) -> None:
        self._consumer._interval = 0.0

    def requeue(self) -> None:
        consumer = self._consumer
        consumer._interval = min(max(consumer._interval * 2, consumer._min), consumer._max)


class PollingConsumer:
    """Hands out poll deliveries, waiting the current back-off interval first."""

    def __init__(self, min_interval: float, max_interval: float) -> None:
        self._min = min_interval
        self._max = max_interval
        self._interval = 0.0
        self._remaining: float | None = None
        self._closed = threading.Event()

    def receive(self, timeout: float) -> PollDelivery | None:
        if self._remaining is None:
            self._remaining = self._interval
        wait = min(self._remaining, max(timeout, 0.0))
        if self._closed.wait(wait) if wait > 0 else self._closed.is_set():
            return None
        self._remaining -= wait
        if self._remaining > 1e-9:
            return None  # timed out before the back-off elapsed; the rest waits for next call
        self._remaining = None
        return PollDelivery(self)

    def pause(self) -> None:
        """Nothing to give back: poll deliveries hold no message."""

    def close(self) -> None:
        self._closed.set()
