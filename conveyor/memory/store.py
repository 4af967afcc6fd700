"""In-memory state store: the store port's exact semantics, in one process.

Transactions are serialisable: one lock is held for the whole transaction, and every change is
journalled (:mod:`conveyor.memory.journal`) so a transaction that raises is rolled back
completely (the same all-or-nothing the SQL store gives). Records handed out are copies, so the
core never changes state behind the store's back. Used for unit tests, ``memory://`` clients and
single-process embedded runs.

A transaction is a composition of one module per part of the port (``clusters``, ``jobs``,
``tasks``, ``claims``, ``outbox``, ``attempts``, ``runners``, ``reads``), all writing through
the transaction's one journal.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import TypeVar

from conveyor.memory.attempts import MemoryAttempts
from conveyor.memory.claims import MemoryClaims
from conveyor.memory.clusters import MemoryClusters
from conveyor.memory.jobs import MemoryJobs
from conveyor.memory.journal import Journal, Tables
from conveyor.memory.outbox import MemoryOutbox
from conveyor.memory.reads import MemoryReads
from conveyor.memory.runners import MemoryRunners
from conveyor.memory.tasks import MemoryTasks

T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class InMemoryStore:
    """A thread-safe, transactional store in process memory."""

    def __init__(self, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._tables = Tables()
        self._lock = threading.RLock()
        self._clock = clock

    def run(self, fn: Callable[[InMemoryTx], T]) -> T:
        with self._lock:
            tx = InMemoryTx(self._tables, self._clock)
            try:
                return fn(tx)
            except BaseException:
                tx.rollback()
                raise

    def close(self) -> None:
        """Nothing to release."""


class InMemoryTx:
    """One transaction over :class:`~conveyor.memory.journal.Tables`, journalled for rollback."""

    def __init__(self, tables: Tables, clock: Callable[[], dt.datetime]) -> None:
        self._journal = Journal(tables, clock())
        self.clusters = MemoryClusters(self._journal)
        self.jobs = MemoryJobs(self._journal)
        self.tasks = MemoryTasks(self._journal)
        self.attempts = MemoryAttempts(self._journal, self.tasks)
        self.claims = MemoryClaims(self._journal, self.jobs, self.tasks, self.attempts)
        self.outbox = MemoryOutbox(self._journal)
        self.runners = MemoryRunners(self._journal)
        self.reads = MemoryReads(tables, self.tasks)

    def now(self) -> dt.datetime:
        return self._journal.now

    def rollback(self) -> None:
        """Undo every change this transaction made."""
        self._journal.rollback()
