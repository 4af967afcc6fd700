"""What retry and cancel report having done, in the words the CLI and the web UI both show.

One wording for both entry points, decided by the job's state *before* the action (the
use cases in :mod:`conveyor.core.usecases` act or do nothing by that state alone), so the
two cannot drift apart again.
"""

from __future__ import annotations

from conveyor.core.model import RETRYABLE_JOB_STATES, JobState


def _subject(name: str | None) -> str:
    return f"job {name!r}" if name else "the job"


def _tasks(count: int, kind: str) -> str:
    return f"{count} {kind} task{'s' if count != 1 else ''}"


def retry_message(before: JobState, requeued: int, after: JobState, name: str | None = None) -> str:
    """What a retry did to a job that was ``before`` and is now ``after``."""
    if before not in RETRYABLE_JOB_STATES:
        return f"Nothing to retry: {_subject(name)} is {before.value}"
    return f"Requeued {_tasks(requeued, 'failed')}; {_subject(name)} is now {after.value}"


def cancel_message(
    before: JobState,
    name: str | None = None,
    *,
    queued: int | None = None,
    running: int | None = None,
) -> str:
    """What a cancel did to a job that was ``before``; with the task counts, how many wait."""
    if before is JobState.COMPLETED:
        return f"Nothing to cancel: {_subject(name)} is COMPLETED"
    if queued is None or running is None:
        return f"Canceled {_subject(name)}: queued tasks are no longer dispatched"
    return (
        f"Canceled {_subject(name)}: {_tasks(queued, 'queued')} held, {running} running will finish"
    )
