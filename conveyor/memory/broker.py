"""In-memory broker: per-(cluster, name, major, minor) queues with RabbitMQ's delivery semantics.

Like the AMQP adapter it keeps one queue per exact version, so a message waits for a runner that
does not exist yet; a consumer takes messages from the queues of every minor it can run; an
unsettled delivery returns to the front of its queue when requeued or when its consumer closes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import DispatchMessage, RegisteredIdentifier

QueueKey = tuple[str, str, int, int]


def _queue_key(message: DispatchMessage) -> QueueKey:
    ident = message.identifier
    return (message.cluster, ident.name, ident.major, ident.minor)


class InMemoryBroker:
    """A thread-safe broker in process memory (``broker_url="memory://"``)."""

    requires_publish = True

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queues: dict[QueueKey, deque[DispatchMessage]] = {}
        self.published = 0
        self.acked = 0
        self.requeued = 0
        self._closed = False

    def publish(self, messages: Sequence[DispatchMessage]) -> None:
        with self._cond:
            for message in messages:
                self._queues.setdefault(_queue_key(message), deque()).append(message)
            self.published += len(messages)
            self._cond.notify_all()

    def consumer(
        self, cluster: str, identifiers: Sequence[RegisteredIdentifier]
    ) -> InMemoryConsumer:
        keys = [
            (cluster, r.name, r.major, minor)
            for r in identifiers
            for minor in range(r.max_minor + 1)
        ]
        return InMemoryConsumer(self, keys)

    def depth(self, key: QueueKey | None = None) -> int:
        """Messages waiting (in one queue, or in all): for tests and metrics."""
        with self._cond:
            if key is not None:
                return len(self._queues.get(key, ()))
            return sum(len(q) for q in self._queues.values())

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _take(
        self, keys: Sequence[QueueKey], start: int
    ) -> tuple[QueueKey, DispatchMessage] | None:
        for offset in range(len(keys)):
            key = keys[(start + offset) % len(keys)]
            queue = self._queues.get(key)
            if queue:
                return key, queue.popleft()
        return None

    def _take_peek(self, keys: Sequence[QueueKey]) -> bool:
        return any(self._queues.get(key) for key in keys)

    def _return(self, key: QueueKey, message: DispatchMessage) -> None:
        with self._cond:
            self._queues.setdefault(key, deque()).appendleft(message)
            self.requeued += 1
            self._cond.notify_all()


class InMemoryDelivery:
    """One message taken from a queue; settled exactly once."""

    def __init__(self, consumer: InMemoryConsumer, key: QueueKey, message: DispatchMessage):
        self._consumer = consumer
        self._key = key
        self.message = message
        self.settled = False

    @property
    def task_id(self) -> TaskId | None:
        return self.message.task_id

    @property
    def identifier(self) -> TaskIdentifier | None:
        return self.message.identifier

    @property
    def job_id(self) -> JobId | None:
        return self.message.job_id

    def ack(self) -> None:
        if self._settle():
            with self._consumer._broker._cond:
                self._consumer._broker.acked += 1

    def requeue(self) -> None:
        if self._settle():
            self._consumer._broker._return(self._key, self.message)

    def _settle(self) -> bool:
        if self.settled:
            return False
        self.settled = True
        if self._consumer._unsettled is self:
            self._consumer._unsettled = None
        return True


class InMemoryConsumer:
    """Consumes a fixed set of queues, round-robin, with at most one unsettled delivery."""

    def __init__(self, broker: InMemoryBroker, keys: Sequence[QueueKey]) -> None:
        self._broker = broker
        self._keys = list(keys)
        self._next = 0
        self._unsettled: InMemoryDelivery | None = None
        self._closed = False

    def receive(self, timeout: float) -> InMemoryDelivery | None:
        if self._unsettled is not None:
            raise RuntimeError("settle the previous delivery before receiving another")
        with self._broker._cond:
            taken = None
            if not self._closed and self._keys:
                self._broker._cond.wait_for(
                    lambda: (
                        self._closed or self._broker._closed or self._broker._take_peek(self._keys)
                    ),
                    timeout=max(timeout, 0.0),
                )
                if not self._closed:
                    taken = self._broker._take(self._keys, self._next)
            if taken is None:
                return None
            self._next = (self._keys.index(taken[0]) + 1) % len(self._keys)
        delivery = InMemoryDelivery(self, *taken)
        self._unsettled = delivery
        return delivery

    def pause(self) -> None:
        """Nothing to give back: messages stay in their queue until ``receive`` takes one."""

    def close(self) -> None:
        if self._unsettled is not None:
            self._unsettled.requeue()
        self._closed = True
        with self._broker._cond:
            self._broker._cond.notify_all()
