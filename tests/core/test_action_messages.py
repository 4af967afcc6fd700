"""Retry and cancel say the same thing in the CLI and the web UI, decided by the state before."""

from __future__ import annotations

import pytest

from conveyor.core.action_messages import cancel_message, retry_message
from conveyor.core.model import INACTIVE_JOB_STATES, RETRYABLE_JOB_STATES, JobState


def test_a_retry_of_a_failed_or_canceled_job_says_how_many_tasks_it_requeued() -> None:
    assert retry_message(JobState.FAILED, 1, JobState.SUBMITTED) == (
        "Requeued 1 failed task; the job is now SUBMITTED"
    )
    assert retry_message(JobState.CANCELED, 0, JobState.STARTED, "nightly") == (
        "Requeued 0 failed tasks; job 'nightly' is now STARTED"
    )


@pytest.mark.parametrize("state", sorted(set(JobState) - RETRYABLE_JOB_STATES))
def test_a_retry_of_any_other_job_did_nothing(state: JobState) -> None:
    assert retry_message(state, 0, state) == f"Nothing to retry: the job is {state.value}"


def test_a_cancel_says_what_waits_and_what_finishes() -> None:
    assert cancel_message(JobState.RUNNING, "nightly", queued=3, running=1) == (
        "Canceled job 'nightly': 3 queued tasks held, 1 running will finish"
    )
    assert cancel_message(JobState.STARTED) == (
        "Canceled the job: queued tasks are no longer dispatched"
    )
    assert cancel_message(JobState.COMPLETED, "x", queued=0, running=0) == (
        "Nothing to cancel: job 'x' is COMPLETED"
    )


def test_the_state_sets() -> None:
    assert RETRYABLE_JOB_STATES < INACTIVE_JOB_STATES
    assert {JobState.COMPLETED, JobState.FAILED, JobState.CANCELED} == INACTIVE_JOB_STATES
