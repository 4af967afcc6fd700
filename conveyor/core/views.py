"""Read models of the monitoring queries (dashboards, the web UI, Prometheus metrics).

The store's read-only query primitives (the last section of ``conveyor.core.ports.StoreTx``)
return these. They are aggregates computed in the store, so a dashboard never loads a job of
10^6 tasks: counts per state, queue depths, pages of tasks, attempt timings since an instant.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import TaskError, TaskState


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue: the tasks of one (cluster, name, version).

    ``ready`` counts *dispatchable* tasks (QUEUED, every dependency complete, job active),
    including those whose retry back-off has not passed yet; ``running`` counts RUNNING tasks.
    """

    cluster: str
    identifier: TaskIdentifier
    ready: int
    running: int


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """A task that failed for good (FAILED or FAILED_OPTIONAL), with its job's name."""

    task_id: TaskId
    job_id: JobId
    job_name: str
    cluster: str
    identifier: TaskIdentifier
    state: TaskState
    display: str
    runner_id: str | None
    stopped_at: dt.datetime | None
    error: TaskError | None


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """A page of one job's tasks, in id (creation) order.

    ``parent_id`` limits the page to the children of one task; ``roots`` to the job's root
    tasks (``parent_id`` is then ignored). ``states`` and ``identifier`` (name and exact
    version) filter further; ``after`` continues after the last id of a previous page.
    """

    job_id: JobId
    parent_id: TaskId | None = None
    roots: bool = False
    states: tuple[TaskState, ...] = ()
    identifier: TaskIdentifier | None = None
    after: TaskId | None = None
    limit: int = 100
    #: False: records carry an empty input (pages drawn as a graph do not need inputs).
    include_input: bool = True


@dataclass(frozen=True, slots=True, order=True)
class ChildGroup:
    """How many children of one task (or roots of one job) have one identifier and state."""

    identifier: TaskIdentifier
    state: TaskState
    count: int


@dataclass(frozen=True, slots=True, order=True)
class AttemptBucket:
    """Attempts that ended within one minute (``minute``: its start, UTC) with one outcome."""

    minute: dt.datetime
    outcome: str
    count: int


@dataclass(frozen=True, slots=True)
class EndedAttempt:
    """One attempt that ended: what ran, how it ended and how long it took."""

    identifier: TaskIdentifier
    outcome: str
    seconds: float
    ended_at: dt.datetime


@dataclass(frozen=True, slots=True, order=True)
class IdentifierStateCount:
    """Number of tasks of one identifier in one state, over every job."""

    identifier: TaskIdentifier
    state: TaskState
    count: int
