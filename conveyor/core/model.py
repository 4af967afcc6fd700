"""The job/task model: states, stored records and the views built from them.

Records are plain dataclasses so every adapter maps them explicitly (no ORM instrumentation in
the core). The unit of consistency is the task row: counters on it (``deps_open``,
``open_children``) make dependency release and subtree completion O(changed rows), so a job of
10^6 tasks is never loaded whole.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier


class TaskState(enum.StrEnum):
    """Stored task states (Tilebox's names). COMPLETED is derived, never stored."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPUTED = "COMPUTED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    FAILED_OPTIONAL = "FAILED_OPTIONAL"


#: States whose task, once its subtree is done, counts as complete for dependents and parents.
DONE_STATES = frozenset({TaskState.COMPUTED, TaskState.FAILED_OPTIONAL, TaskState.SKIPPED})


class JobState(enum.StrEnum):
    """Job states, derived from its tasks and kept as a column for cheap listings."""

    SUBMITTED = "SUBMITTED"
    RUNNING = "RUNNING"
    STARTED = "STARTED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


#: Job states in which no task is dispatched: the terminal ones (what a waiting client or page
#: stops at). The one definition: a retry makes FAILED and CANCELED active again.
INACTIVE_JOB_STATES = frozenset({JobState.FAILED, JobState.CANCELED, JobState.COMPLETED})
#: Job states a retry acts on (it requeues their FAILED tasks); on any other it does nothing.
RETRYABLE_JOB_STATES = frozenset({JobState.FAILED, JobState.CANCELED})


@dataclass(frozen=True, slots=True)
class Cluster:
    """A named group of runners; tasks only run on runners of their own cluster."""

    slug: str
    display_name: str
    deletable: bool = True


@dataclass(frozen=True, slots=True)
class TaskError:
    """What went wrong in one attempt, as recorded for users."""

    type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclass(slots=True)
class TaskRecord:
    """One stored task row (Tilebox's task fields plus conveyor's bookkeeping)."""

    id: TaskId
    job_id: JobId
    parent_id: TaskId | None
    cluster: str
    identifier: TaskIdentifier
    input: bytes
    display: str
    state: TaskState = TaskState.QUEUED
    depends_on: tuple[TaskId, ...] = ()
    max_retries: int = 0
    optional: bool = False
    #: Ids of the optional ancestors-or-self, outermost first; the last is the nearest boundary.
    optional_path: tuple[TaskId, ...] = ()
    timeout: float | None = None
    retry_count: int = 0
    crash_count: int = 0
    #: Requeues for reasons outside user code (shutdown, unknown identifier), capped separately.
    system_requeues: int = 0
    #: Claims so far; the fencing token every write of a runner is guarded by.
    attempt: int = 0
    #: Dependencies whose subtree is not complete yet; the task is ready at 0.
    deps_open: int = 0
    #: Direct children whose subtree is not complete yet.
    open_children: int = 0
    #: Whether this task and its whole subtree are done (the derived COMPLETED).
    complete: bool = False
    #: On an optional boundary: a task inside its subtree failed, so queued ones are skipped.
    subtree_failed: bool = False
    runner_id: str | None = None
    lease_expires: dt.datetime | None = None
    #: Earliest time the task may be claimed again (retry back-off).
    not_before: dt.datetime | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    stopped_at: dt.datetime | None = None
    error: TaskError | None = None
    #: Outbox marker: a dispatch message for this task must (still) be published.
    publish_pending: bool = False
    #: Publish lease: a sweep does not republish before this time (the writer is publishing).
    publish_after: dt.datetime | None = None
    published_at: dt.datetime | None = None

    @property
    def ready(self) -> bool:
        """QUEUED with every dependency's subtree complete."""
        return self.state is TaskState.QUEUED and self.deps_open == 0

    @property
    def is_optional(self) -> bool:
        """Optional itself or inside an optional ancestor's subtree."""
        return bool(self.optional_path)


@dataclass(slots=True)
class JobRecord:
    """One stored job row."""

    id: JobId
    name: str
    state: JobState
    submitted_at: dt.datetime
    cluster: str = "default"
    idempotency_key: str | None = None
    #: Number of root tasks (set at submission, never written again).
    root_count: int = 0
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to insert: a root of a new job or a subtask created at its parent's completion."""

    id: TaskId
    cluster: str
    identifier: TaskIdentifier
    input: bytes
    display: str
    depends_on: tuple[TaskId, ...] = ()
    max_retries: int = 0
    optional: bool = False
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class JobFacts:
    """The few facts job-state derivation needs, read in one query by the store."""

    state: JobState
    any_running: bool
    any_failed: bool
    any_work_done: bool
    all_roots_complete: bool


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task a runner won: everything it needs to execute and to fence its writes."""

    id: TaskId
    job_id: JobId
    job_name: str
    parent_id: TaskId | None
    cluster: str
    identifier: TaskIdentifier
    input: bytes
    display: str
    attempt: int
    retry_count: int
    max_retries: int
    optional_path: tuple[TaskId, ...]
    timeout: float | None
    lease_expires: dt.datetime
    depends_on: tuple[TaskId, ...] = ()


class RefusalReason(enum.Enum):
    """Why a claim of a task named by a message took nothing (the message is then dropped)."""

    #: No such task: its job was deleted, or the message was not published by conveyor.
    UNKNOWN_TASK = "unknown task"
    #: The task belongs to another cluster than the claiming runner's (misrouted or forged).
    OTHER_CLUSTER = "other cluster"
    #: The task ended already (COMPUTED, FAILED, FAILED_OPTIONAL or SKIPPED): a duplicate.
    DONE = "done"
    #: Another runner holds it (or this one did, before a redelivery).
    RUNNING = "running"
    #: Its job is FAILED, CANCELED or COMPLETED: its queued tasks are held.
    JOB_INACTIVE = "job not active"
    #: It still waits for dependencies.
    WAITING = "waiting for dependencies"
    #: A retry back-off has not passed yet.
    BACKING_OFF = "backing off"
    #: Dispatchable when read back: it changed between the claim and the read (a race).
    CHANGED = "changed meanwhile"


#: Refusals that mean a message reached a runner it was not meant for: worth a warning, not
#: the routine duplicate of a task that ran already.
SUSPICIOUS_REFUSALS = frozenset({RefusalReason.UNKNOWN_TASK, RefusalReason.OTHER_CLUSTER})


@dataclass(frozen=True, slots=True)
class ClaimRefusal:
    """A claim by task id that took nothing, and why: the task row as read right after the
    refused claim, in the same transaction. Read only on this path, so a successful claim (the
    hot path) costs nothing more; the runner logs it when it drops the message."""

    task_id: TaskId
    reason: RefusalReason
    #: The claiming runner's cluster.
    runner_cluster: str
    #: The task's cluster, state, attempt and holder as read (None for an unknown task).
    cluster: str | None = None
    state: TaskState | None = None
    attempt: int = 0
    runner_id: str | None = None
    #: The job's state, when the job decided the refusal.
    job_state: JobState | None = None

    @property
    def suspicious(self) -> bool:
        """A message that should not have reached this runner (see SUSPICIOUS_REFUSALS)."""
        return self.reason in SUSPICIOUS_REFUSALS

    def __str__(self) -> str:
        reason = self.reason
        if reason is RefusalReason.UNKNOWN_TASK:
            return "no such task in the store (job deleted, or not a conveyor message)"
        if reason is RefusalReason.OTHER_CLUSTER:
            return (
                f"the task belongs to cluster {self.cluster!r}, not to the runner's cluster "
                f"{self.runner_cluster!r}"
            )
        if reason is RefusalReason.DONE:
            return f"already {self.state} (attempt {self.attempt}): a duplicate message"
        if reason is RefusalReason.RUNNING:
            return f"RUNNING on runner {self.runner_id} (attempt {self.attempt})"
        if reason is RefusalReason.JOB_INACTIVE:
            return f"its job is {self.job_state}: its tasks are not dispatched"
        if reason is RefusalReason.WAITING:
            return "it waits for its dependencies"
        if reason is RefusalReason.BACKING_OFF:
            return "its retry back-off has not passed"
        return f"{self.state} when read back: it changed while the claim ran"


@dataclass(frozen=True, slots=True)
class DispatchMessage:
    """The doorbell sent through the broker: ids and identifier, never the input."""

    task_id: TaskId
    job_id: JobId
    cluster: str
    identifier: TaskIdentifier


@dataclass(frozen=True, slots=True, order=True)
class ProgressIndicator:
    """A job's progress for one label: the sum over tasks' latest attempts."""

    label: str | None
    total: int
    done: int


@dataclass(frozen=True, slots=True)
class ExecutionStats:
    """Aggregates over a job's tasks (Tilebox's ExecutionStats)."""

    first_task_started_at: dt.datetime | None
    last_task_stopped_at: dt.datetime | None
    compute_time: dt.timedelta
    elapsed_time: dt.timedelta
    parallelism: float
    total_tasks: int
    tasks_by_state: dict[TaskState, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One execution of a task (the per-attempt history the UI shows)."""

    task_id: TaskId
    attempt: int
    runner_id: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    #: ``running``, ``computed``, ``failed``, ``expired``, ``given_back``, ``timeout``
    outcome: str = "running"
    error: TaskError | None = None


@dataclass(frozen=True, slots=True)
class RunnerInfo:
    """A runner process as registered in the store and kept alive by heartbeats."""

    id: str
    cluster: str
    host: str
    pid: int
    identifiers: tuple[TaskIdentifier, ...]
    started_at: dt.datetime
    last_seen: dt.datetime
    state: str = "online"  # online | stopped | gone
    current_task: TaskId | None = None
    tasks_computed: int = 0
    tasks_failed: int = 0


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Filters for listing jobs, newest first, keyset-paginated by id."""

    states: tuple[JobState, ...] = ()
    name: str | None = None
    cluster: str | None = None
    submitted_after: dt.datetime | None = None
    submitted_before: dt.datetime | None = None
    before_id: JobId | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True)
class RegisteredIdentifier:
    """What a runner can execute for one name and major: every minor up to ``max_minor``."""

    name: str
    major: int
    max_minor: int


@dataclass(frozen=True, slots=True)
class Job:
    """A job as users see it (Tilebox's ``Job``): state, progress bars and execution stats."""

    id: JobId
    name: str
    state: JobState
    submitted_at: dt.datetime
    cluster: str
    progress: list[ProgressIndicator]
    execution_stats: ExecutionStats

    @property
    def canceled(self) -> bool:
        """Deprecated Tilebox alias: True for CANCELED and FAILED jobs."""
        return self.state in (JobState.CANCELED, JobState.FAILED)
