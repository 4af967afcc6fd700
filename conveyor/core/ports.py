"""Ports: what the core needs from the outside world, each with its contract.

Adapters (``conveyor.memory``, ``conveyor.store_sql``, ``conveyor.broker_amqp``, …) implement
these Protocols; the contract test suites in ``tests/contract`` check exactly the sentences
written here, against every adapter.

The store is a set of transactional primitives rather than a repository of aggregates: the rules
live in :mod:`conveyor.core.usecases`, and every primitive is one SQL statement (or one bulk
statement) in the SQL adapter, so a completion costs O(changed rows) even in a job of 10^6 tasks.
``StoreTx`` is a composition of narrow parts (``tx.tasks``, ``tx.claims``, ``tx.outbox``, …), each
its own Protocol with its own contract suite; ``tx.reads`` is the read-only monitoring port.

This module is longer than most because it is the contract: every sentence of every docstring is
a rule the adapters are tested against, and the ports read best side by side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import (
    AttemptRecord,
    ClaimedTask,
    Cluster,
    DispatchMessage,
    ExecutionStats,
    JobFacts,
    JobQuery,
    JobRecord,
    JobState,
    ProgressIndicator,
    RegisteredIdentifier,
    RunnerInfo,
    TaskError,
    TaskRecord,
    TaskState,
)
from conveyor.core.views import (
    AttemptBucket,
    ChildGroup,
    EndedAttempt,
    IdentifierStateCount,
    QueueStats,
    TaskFailure,
    TaskQuery,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FinishedTask:
    """What :meth:`Claims.finish_computed` changed besides the task itself."""

    job_id: JobId
    #: The parent after its ``open_children`` was decremented; None for a root task.
    parent: TaskRecord | None
    #: Dependents that became ready, as ``release_dependents`` returns them.
    released: list[TaskRecord]
    #: The job's facts read after every change above, under the job row's lock.
    facts: JobFacts


class ClusterRows(Protocol):
    """Clusters: the isolation boundary of runners (a runner claims only its cluster's tasks)."""

    def get_cluster(self, slug: str) -> Cluster | None:
        """The cluster with this slug, or None."""
        ...

    def list_clusters(self) -> list[Cluster]:
        """Every cluster, sorted by slug. ``default`` always exists."""
        ...

    def insert_cluster(self, cluster: Cluster) -> None:
        """Create a cluster. Raises AlreadyExistsError if the slug is taken."""
        ...

    def delete_cluster(self, slug: str) -> bool:
        """Delete a deletable cluster; False if it did not exist."""
        ...


class JobRows(Protocol):
    """Job rows: submission, the job's derived state and its facts, paged listing, deletion."""

    def insert_job(self, job: JobRecord) -> None:
        """Create a job. Raises AlreadyExistsError if its idempotency key is taken."""
        ...

    def get_job(self, job_id: JobId) -> JobRecord | None:
        """The job, or None."""
        ...

    def find_job_by_key(self, idempotency_key: str) -> JobRecord | None:
        """The job submitted with this idempotency key, or None."""
        ...

    def set_job_state(self, job_id: JobId, state: JobState) -> bool:
        """Write the job's state only if it differs (the job row is hot); True if it changed."""
        ...

    def job_facts(self, job_id: JobId) -> JobFacts:
        """Stored state plus whether any task is RUNNING / FAILED / done or retried, and whether
        every root task's subtree is complete. Raises JobNotFoundError.

        Must see every change committed before it, even from a concurrent transaction that
        finished another root at the same moment: a SQL adapter locks the job row first (else
        two transactions completing a job's last two roots each miss the other's change)."""
        ...

    def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        """Jobs matching every filter, newest first, at most ``query.limit``; ``before_id``
        continues after the last id of a previous page. ``name`` matches case-insensitively as
        a substring."""
        ...

    def delete_job(self, job_id: JobId) -> bool:
        """Delete a job with all its tasks, dependencies, attempts and progress."""
        ...


class TaskRows(Protocol):
    """Task rows and the per-task primitives the use cases compose (the tree and dependency
    bookkeeping, fenced runner writes, lease sweeps).

    The fused fast paths that combine several of these in one step live in :class:`Claims`."""

    def insert_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        """Insert fully formed task rows and their dependency edges, in bulk."""
        ...

    def get_task(self, task_id: TaskId) -> TaskRecord | None:
        """The task, or None."""
        ...

    def lock_task(self, task_id: TaskId) -> TaskRecord | None:
        """The task, locked against concurrent writers until the transaction ends."""
        ...

    def save_task(self, task: TaskRecord) -> None:
        """Write every mutable field of a task previously obtained from ``lock_task``."""
        ...

    def job_tasks(
        self, job_id: JobId, *, after: TaskId | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        """A job's tasks ordered by id (creation order), keyset-paginated."""
        ...

    def extend_lease(
        self, task_id: TaskId, attempt: int, lease_seconds: float
    ) -> dt.datetime | None:
        """Fenced: push the lease to ``now + lease``; the new expiry, or None if the guard fails."""
        ...

    def set_display(self, task_id: TaskId, attempt: int, display: str) -> bool:
        """Fenced: update a running task's display."""
        ...

    def decrement_open_children(self, task_id: TaskId) -> TaskRecord:
        """Atomically ``open_children -= 1`` on a task and return the updated row."""
        ...

    def mark_complete(self, task_id: TaskId) -> bool:
        """Set ``complete``; False (and no change) if it already was."""
        ...

    def release_dependents(self, task_id: TaskId, publish_lease: float | None) -> list[TaskRecord]:
        """Atomically ``deps_open -= 1`` on every task depending on ``task_id``. Returns those now
        ready (QUEUED, ``deps_open == 0``); unless ``publish_lease`` is None they are marked
        publish-pending with ``publish_after = now + publish_lease``."""
        ...

    def queued_descendants(self, task_id: TaskId) -> list[TaskId]:
        """Ids of every QUEUED task in the subtree below ``task_id`` (not the task itself)."""
        ...

    def any_subtree_failed(self, task_ids: Sequence[TaskId]) -> bool:
        """Whether any of these (optional boundary) tasks has ``subtree_failed`` set.

        A SQL adapter locks the boundary rows, so subtasks are never created QUEUED under a
        boundary that a concurrent transaction is failing."""
        ...

    def requeue_failed_tasks(self, job_id: JobId) -> int:
        """Job retry: every FAILED task of the job back to QUEUED with ``retry_count``,
        ``crash_count`` and ``system_requeues`` reset and no error. Returns how many."""
        ...

    def task_counts(self, job_id: JobId) -> dict[TaskState, int]:
        """Number of tasks per state (only states that occur)."""
        ...

    def expired_leases(self, limit: int, overdue: float = 0.0) -> list[TaskRecord]:
        """RUNNING tasks whose lease expired at least ``overdue`` seconds before now, locked;
        rows another transaction already locked are skipped (several sweepers never block each
        other)."""
        ...


class Claims(Protocol):
    """Taking a task for a runner and recording the commonest success, each in one step.

    These are the hot path: a SQL adapter writes each as one statement (or one round trip), so
    they are a part of their own rather than compositions of :class:`TaskRows` primitives."""

    def claim(self, task_id: TaskId, runner_id: str, lease_seconds: float) -> ClaimedTask | None:
        """Claim one task for a runner, atomically.

        Succeeds only if the task is dispatchable: QUEUED, ``deps_open == 0``, ``not_before``
        passed, and its job is neither FAILED, CANCELED nor COMPLETED. Then sets RUNNING,
        ``attempt += 1``, ``runner_id``, ``started_at = now`` and ``lease_expires = now + lease``,
        records an attempt row (outcome ``running``) and returns the claimed task with its input.
        Returns None otherwise (duplicate message, already claimed, held or canceled job).
        Runners claim through ``claim_task`` (which also requires their cluster) or
        ``claim_next``; this primitive is the rule they share.
        """
        ...

    def claim_next(
        self,
        cluster: str,
        identifiers: Sequence[RegisteredIdentifier],
        runner_id: str,
        lease_seconds: float,
    ) -> ClaimedTask | None:
        """Claim the oldest dispatchable task of ``cluster`` that one of ``identifiers`` can run
        (same name and major, submitted minor ≤ ``max_minor``), as ``claim`` does; concurrent
        callers never claim the same task. None if there is none."""
        ...

    def has_dispatchable(self, cluster: str, identifiers: Sequence[RegisteredIdentifier]) -> bool:
        """Whether ``claim_next`` could find a task now or once a ``not_before`` passes."""
        ...

    def claim_task(
        self,
        task_id: TaskId,
        cluster: str,
        runner_id: str,
        lease_seconds: float,
        job_state: JobState,
        job_states_from: Collection[JobState],
    ) -> ClaimedTask | None:
        """``claim`` by a runner of ``cluster``, and in the same step the claimed task's job: set
        to ``job_state`` (with ``updated_at = now``) if its state is one of ``job_states_from``,
        else left as it is.

        Only a task of ``cluster`` is claimed: a message naming another cluster's task claims
        nothing, whatever queue it arrived on (a runner's cluster is isolation, not routing).
        The job row is locked in both cases, as ``job_facts`` locks it, so a concurrent
        transaction deriving the job's state from its facts waits for this claim and sees the
        running task. None (and no change at all) when ``claim`` would return None or the task
        belongs to another cluster. A SQL adapter does all of it in one statement, and may commit
        a transaction that did nothing but this claim without waiting for the disk (see the SQL
        adapter for why that is safe)."""
        ...

    def finish_computed(
        self, task_id: TaskId, attempt: int, display: str | None, publish_lease: float | None
    ) -> FinishedTask | None:
        """Fenced: record a successful attempt that created no subtasks, in one step.

        Only if the task is RUNNING at ``attempt``; otherwise None and nothing changes. Then,
        exactly as the finer primitives of :class:`TaskRows` and :class:`Attempts` would:

        * the task becomes COMPUTED with ``stopped_at = now``, no lease, no error,
          ``open_children = 0`` and ``display`` replaced unless it is None, and its attempt row
          is closed as ``end_attempt(task_id, attempt, "computed", None)`` does;
        * it is marked complete (``mark_complete``: it has no children) and
          ``release_dependents(task_id, publish_lease)`` runs;
        * a task with a parent decrements it (``decrement_open_children``), in the lock order
          task → parent → job;
        * ``job_facts`` of the task's job is read last, under the job row's lock.

        Walking further up (a parent whose subtree is now complete) and writing the job state
        are left to the caller. A SQL adapter needs one statement for the task and one round
        trip for the job's facts, instead of the dozen statements of the finer primitives."""
        ...


class Outbox(Protocol):
    """The transactional outbox: which tasks still need a dispatch message published.

    The store is the truth and the broker only a doorbell, so a message is marked pending in
    the same transaction that makes its task ready, and published after commit."""

    def republish_ready(self, job_id: JobId, lease_seconds: float) -> list[DispatchMessage]:
        """Mark every ready QUEUED task of the job publish-pending with a publish lease and
        return their messages (a resumed job's tasks whose messages were dropped meanwhile)."""
        ...

    def mark_published(self, task_ids: Sequence[TaskId]) -> None:
        """Clear publish-pending and set ``published_at = now`` on these tasks.

        A task another transaction holds may be skipped rather than waited for (whoever holds
        it is claiming it, which clears the flag too, or finishing it); a flag left behind only
        costs a duplicate message from the outbox sweep, which the claim rule drops."""
        ...

    def claim_unpublished(self, lease_seconds: float, limit: int) -> list[DispatchMessage]:
        """Publish-pending tasks whose publish lease passed: take the lease (``publish_after =
        now + lease``) and return their messages. Locked rows are skipped."""
        ...


class Attempts(Protocol):
    """Attempt rows (one per claim), per-attempt progress and the execution statistics
    derived from them."""

    def end_attempt(
        self, task_id: TaskId, attempt: int, outcome: str, error: TaskError | None
    ) -> None:
        """Close an attempt row with its outcome and ``ended_at = now``."""
        ...

    def task_attempts(self, task_id: TaskId) -> list[AttemptRecord]:
        """A task's attempts, oldest first."""
        ...

    def write_progress(
        self, task_id: TaskId, attempt: int, progress: Mapping[str | None, tuple[int, int]]
    ) -> bool:
        """Fenced on the attempt only (a just-finished attempt may still flush): store the
        absolute (total, done) per label for this attempt. False if ``attempt`` is not the
        task's current one."""
        ...

    def job_progress(self, job_id: JobId) -> list[ProgressIndicator]:
        """Per label, the sum over the job's tasks of each task's latest attempt, sorted."""
        ...

    def job_stats(self, job_id: JobId) -> ExecutionStats:
        """Execution statistics of a job (first start, last stop, compute time, parallelism)."""
        ...


class RunnerRows(Protocol):
    """Registered runners: registration, heartbeats, state and the silent-runner sweep."""

    def upsert_runner(self, runner: RunnerInfo) -> None:
        """Register a runner (or refresh its row), ``last_seen = now``."""
        ...

    def runner_heartbeat(
        self, runner_id: str, current_task: TaskId | None, computed: int, failed: int
    ) -> None:
        """Refresh ``last_seen = now`` and the runner's live counters."""
        ...

    def set_runner_state(self, runner_id: str, state: str) -> None:
        """Mark a runner ``online``, ``stopped`` or ``gone``."""
        ...

    def mark_silent_runners(self, silent_seconds: float) -> int:
        """Mark ``gone`` every online runner not seen for ``silent_seconds``; how many."""
        ...

    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]:
        """Registered runners, most recently seen first."""
        ...


class MonitoringReads(Protocol):
    """The read-only port for dashboards, the web UI and metrics.

    Nothing here writes, and no command depends on it: these queries may scan and aggregate,
    and a change to them cannot change what the orchestrator does. They are served to callers
    by :class:`conveyor.core.reads.ReadService`."""

    def count_jobs_by_state(self) -> dict[JobState, int]:
        """Number of jobs per state over every job (only states that occur)."""
        ...

    def task_counts_by_job(self, job_ids: Sequence[JobId]) -> dict[JobId, dict[TaskState, int]]:
        """``task_counts`` of several jobs in one query; every id asked for is a key (an
        unknown job maps to an empty dict)."""
        ...

    def queue_stats(self) -> list[QueueStats]:
        """Per (cluster, name, version) with any dispatchable or running task: how many are
        dispatchable (QUEUED, ``deps_open == 0``, job neither FAILED, CANCELED nor COMPLETED;
        a pending retry back-off counts) and how many are RUNNING. Sorted by cluster, then
        identifier. Queues with neither are left out."""
        ...

    def recent_failures(self, limit: int) -> list[TaskFailure]:
        """Tasks now FAILED or FAILED_OPTIONAL with their job's name, most recently stopped
        first, at most ``limit``."""
        ...

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        """A keyset page of one job's tasks matching every filter of ``query``, ordered by id.
        With ``include_input`` false the records carry an empty input."""
        ...

    def children_summary(self, job_id: JobId, parent_id: TaskId | None) -> list[ChildGroup]:
        """Counts per (identifier, state) of the children of ``parent_id``, or of the job's
        roots when ``parent_id`` is None; sorted. Empty for an unknown job or task."""
        ...

    def child_counts(self, task_ids: Sequence[TaskId]) -> dict[TaskId, int]:
        """Number of direct children of each task; every id asked for is a key."""
        ...

    def attempts_per_minute(self, since: dt.datetime) -> list[AttemptBucket]:
        """Attempts that ended at or after ``since``, counted per minute (UTC, truncated) and
        outcome; sorted by minute then outcome."""
        ...

    def ended_attempts(self, since: dt.datetime, until: dt.datetime) -> list[EndedAttempt]:
        """Every attempt with ``since <= ended_at < until``: its task's identifier, outcome
        and duration (``ended_at - started_at`` in seconds), ordered by ``ended_at``."""
        ...

    def task_counts_by_identifier(self) -> list[IdentifierStateCount]:
        """Number of tasks per (identifier, state) over every job; sorted."""
        ...


class StoreTx(Protocol):
    """One transaction of the state store, as a composition of narrow parts.

    Everything done through one ``StoreTx`` commits together or not at all, whichever parts it
    goes through. Writes a runner makes about a task are *fenced*: they name the attempt they
    belong to and change nothing when the task's current attempt or state differs (a zombie
    runner's late write is a no-op).

    A use case asks for the part it needs by name (``tx.tasks.get_task(...)``), so a reader sees
    what a use case touches, and each part has its own contract suite run against every adapter.
    The parts are read-only properties so an adapter may hold them as plain attributes or build
    them lazily.
    """

    def now(self) -> dt.datetime:
        """The store's clock (timezone-aware UTC). Leases are computed from it, never a runner's."""
        ...

    @property
    def clusters(self) -> ClusterRows: ...

    @property
    def jobs(self) -> JobRows: ...

    @property
    def tasks(self) -> TaskRows: ...

    @property
    def claims(self) -> Claims: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def attempts(self) -> Attempts: ...

    @property
    def runners(self) -> RunnerRows: ...

    @property
    def reads(self) -> MonitoringReads: ...


class Store(Protocol):
    """The durable state store: runs functions as transactions."""

    def run(self, fn: Callable[[StoreTx], T]) -> T:
        """Run ``fn`` in one transaction: commit if it returns, roll back if it raises.

        Transient failures (lost connection, deadlock, serialisation conflict) roll back and run
        ``fn`` again with back-off, so ``fn`` must not have side effects outside the store.
        Raises StoreUnavailableError when the store stays unreachable.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class Delivery(Protocol):
    """One message handed to a runner. Settle it exactly once (ack or requeue)."""

    @property
    def task_id(self) -> TaskId | None:
        """The task to claim, or None for a *poll* delivery: claim the next dispatchable one."""
        ...

    @property
    def identifier(self) -> TaskIdentifier | None:
        """The task's identifier as the publisher stated it (checked by the runner)."""
        ...

    @property
    def job_id(self) -> JobId | None:
        """The task's job as the publisher stated it, or None (poll deliveries, old messages).
        Only a hint: it orders a runner's locks (``usecases.may_claim_after``)."""
        ...

    def ack(self) -> None:
        """Done with it (the task was recorded, or the claim failed). For a poll delivery:
        work was found, poll again at once."""
        ...

    def requeue(self) -> None:
        """Give it back to the broker at once for another runner. For a poll delivery:
        nothing was found, back off."""
        ...


class Consumer(Protocol):
    """A runner's subscription to the queues of its cluster and identifiers."""

    def receive(self, timeout: float) -> Delivery | None:
        """Wait up to ``timeout`` seconds for one delivery. At most one delivery is unsettled at a
        time: messages arriving meanwhile go back to the broker for other runners."""
        ...

    def pause(self) -> None:
        """The runner is about to work without a delivery (a task claimed straight from the
        store): a message received but not yet taken goes back to the broker at once, and none
        is held until the next ``receive``. A busy runner must not hold a message that an idle
        runner could run now."""
        ...

    def close(self) -> None:
        """Stop consuming; an unsettled delivery goes back to the broker."""
        ...


class Broker(Protocol):
    """The doorbell: tells runners a task became dispatchable. SQL stays the truth."""

    #: False for a dispatcher that needs no messages (runners claim straight from the store).
    requires_publish: bool

    def publish(self, messages: Sequence[DispatchMessage]) -> None:
        """Publish durably and wait for confirms; raises BrokerUnavailableError if any message
        was not confirmed or not routable. Duplicates are harmless (the claim drops them)."""
        ...

    def consumer(self, cluster: str, identifiers: Sequence[RegisteredIdentifier]) -> Consumer:
        """Consume the queues of ``cluster`` for every (name, major, minor ≤ max_minor)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class JobCache(Protocol):
    """Byte values by string key, namespaced per job with ``group``; Tilebox's cache contract."""

    def __contains__(self, key: str) -> bool: ...

    def __setitem__(self, key: str, value: bytes) -> None: ...

    def __getitem__(self, key: str) -> bytes:
        """Raises KeyError when missing."""
        ...

    def __iter__(self) -> Iterator[str]:
        """Keys at this level only (no subgroups)."""
        ...

    def group(self, key: str) -> JobCache:
        """A nested namespace; ``"a/b"`` equals ``group("a")["b"]``."""
        ...
