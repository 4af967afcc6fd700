"""Process concerns of the entry points: signal handlers and exiting at once.

The core (runner, monitor) only knows ``stop()``: what a signal means for the process is the
entry point's decision, so it lives here and the composition root hands it to
``TaskRunner(signals=…)``, and ``conveyor monitor`` wraps ``Monitor.run_forever`` in it. A
runner embedded in someone else's program (a thread, a test) then never steals that program's
handlers.

The shutdown contract (README, ``conveyor worker --help``): the first SIGTERM or SIGINT stops
taking work and lets the running task finish within its grace period; a second one exits at
once with 128 + the signal number, leaving the task to its lease.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: The signals that ask a conveyor process to stop.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class Stoppable(Protocol):
    def stop(self) -> None: ...


@contextlib.contextmanager
def stop_on_signals(
    target: Stoppable,
    *,
    exit_on_second: bool = True,
    what: str = "finishing the current task, then stopping",
    exit_now: Callable[[int], Any] = os._exit,
) -> Iterator[None]:
    """Within the block, SIGTERM/SIGINT call ``target.stop()``; with ``exit_on_second`` a second
    signal calls ``exit_now(128 + signum)`` (``os._exit``: no clean-up runs, the lease covers the
    task). Handlers can only be installed in the main thread: elsewhere this does nothing. The
    previous handlers are restored on leaving."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = 0

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal received
        received += 1
        if received > 1 and exit_on_second:
            log.warning("second signal: exiting now; the task lease will expire elsewhere")
            exit_now(128 + signum)
            return
        log.info("signal %d: %s", signum, what)
        # Not in the handler itself: stop() sets a threading.Event, whose lock the interrupted
        # main thread may be holding (in Event.wait) — set from here, that would deadlock.
        threading.Thread(target=target.stop, name="conveyor-stop", daemon=True).start()

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def runner_signals(target: Stoppable) -> contextlib.AbstractContextManager[None]:
    """The handlers of a task runner process (``TaskRunner(signals=runner_signals)``)."""
    return stop_on_signals(target)


def monitor_signals(target: Stoppable) -> contextlib.AbstractContextManager[None]:
    """The handlers of ``conveyor monitor``: every signal only stops it (it holds no task)."""
    return stop_on_signals(target, exit_on_second=False, what="monitor stopping")
