"""The outbox relay: publishes what submissions committed, off the submitter's thread.

A submission is safe once its transaction committed: its tasks are publish-pending rows (the
outbox), and if nothing else publishes them the outbox sweep does (after their publish lease).
Waiting for the broker's confirm and then for the rows' published mark in the submitter's
thread added two round trips to every ``submit`` (1.3 ms confirm + 1.1 ms mark of ~3.7 ms on
the benchmark machine, bench/README.md) without making anything safer. The relay takes those
messages over: the submitter returns after its commit, and one thread publishes whatever has
accumulated meanwhile as one confirmed batch and marks it with one statement, so a submitter
in a loop gets its messages out in batches instead of one round trip each.

``flush`` waits until everything handed over was published (or given up to the sweep); the
client flushes on ``close``, and the composition root (``conveyor.bootstrap``) at interpreter
exit, so a script that submits and ends does not leave its messages to the sweep: process exit
is the entry point's business, not the core's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from conveyor.core.model import DispatchMessage

log = logging.getLogger(__name__)

#: Most messages published as one batch (a fan-out submitted as one job is one batch anyway).
MAX_BATCH = 5000


class OutboxRelay:
    """One daemon thread that publishes handed-over messages in batches (see module doc)."""

    def __init__(self, publish: Callable[[Sequence[DispatchMessage]], int]) -> None:
        self._publish = publish
        self._cond = threading.Condition()
        self._pending: list[DispatchMessage] = []
        self._in_flight = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        #: Messages published and marked by this relay (for tests and metrics).
        self.published = 0

    def put(self, messages: Sequence[DispatchMessage]) -> None:
        """Hand over committed messages; returns at once."""
        if not messages:
            return
        with self._cond:
            if self._closed:
                raise RuntimeError("the outbox relay is closed")
            self._pending.extend(messages)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="conveyor-outbox-relay", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything handed over so far was published or left to the sweep."""
        deadline = time.monotonic() + timeout
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._pending and not self._in_flight,
                max(deadline - time.monotonic(), 0.0),
            )

    def close(self, timeout: float = 30.0) -> None:
        """Flush, then stop the thread. Messages not out by then are left to the sweep."""
        if not self.flush(timeout):
            with self._cond:
                left = len(self._pending) + self._in_flight
            log.warning(
                "%d dispatch messages were not published within %.0fs; the outbox sweep "
                "will publish them",
                left,
                timeout,
            )
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return  # closed and drained
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._in_flight = len(batch)
            try:
                # Failures are logged by the publisher and left to the outbox sweep.
                published = self._publish(batch)
            except Exception:
                published = 0
                log.exception(
                    "publishing %d dispatch messages failed; left to the sweep", len(batch)
                )
            with self._cond:
                self.published += published
                self._in_flight = 0
                self._cond.notify_all()
