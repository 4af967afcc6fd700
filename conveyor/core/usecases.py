"""The state rules of design §2, written once against the store port.

Each public function here runs inside one store transaction (``Store.run``) and returns the
dispatch messages that must be published after commit. Nothing here talks to a broker: the
caller publishes, then marks the messages published; if it crashes in between, the outbox sweep
publishes them later (a publish lease keeps the sweep off rows that are still being published).

Every transition that ends a task for good goes through :func:`fail_terminally` or
:func:`_propagate_complete`, so the optional/SKIPPED/job-state rules apply identically whatever
the cause (user error, crash limit, timeout, a completion that cannot commit).

The module is longer than most on purpose: the rules are one state machine whose parts call
each other (a failure may complete a parent, a completion may skip an optional path), and they
are reviewed against the design side by side. Each rule asks the store only for the parts it
needs (``tx.tasks``, ``tx.jobs``, ``tx.claims``, ``tx.outbox``, ``tx.attempts``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from conveyor.core.errors import ClusterNotFoundError, JobNotFoundError
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import (
    DONE_STATES,
    INACTIVE_JOB_STATES,
    RETRYABLE_JOB_STATES,
    ClaimedTask,
    ClaimRefusal,
    DispatchMessage,
    JobFacts,
    JobRecord,
    JobState,
    NewTask,
    RefusalReason,
    TaskError,
    TaskRecord,
    TaskState,
)
from conveyor.core.ports import StoreTx

#: Longest display kept (Tilebox's rule, applied after appending the error on failure).
MAX_DISPLAY = 1024


@dataclass(frozen=True, slots=True)
class Policy:
    """Tunables of the state rules, passed in by the composition root."""

    #: Whether the broker needs a message per dispatchable task (False: runners poll the store).
    publish: bool = True
    #: Lease expiries after which a task fails instead of being requeued.
    crash_limit: int = 10
    #: Requeues for reasons outside user code after which a task fails (nothing loops forever).
    system_requeue_limit: int = 10
    #: Seconds a writer owns the publishing of what it committed before a sweep may take over.
    publish_lease: float = 30.0
    #: Retry back-off: first delay in seconds (0 disables back-off, Tilebox's behaviour).
    retry_backoff: float = 0.0
    #: Back-off multiplier per retry and its cap in seconds.
    retry_backoff_factor: float = 2.0
    retry_backoff_max: float = 600.0

    def backoff(self, retry_count: int) -> float:
        """Seconds to wait before retry number ``retry_count`` (1-based) may run."""
        if self.retry_backoff <= 0:
            return 0.0
        delay = self.retry_backoff * self.retry_backoff_factor ** max(retry_count - 1, 0)
        return float(min(delay, self.retry_backoff_max))


@dataclass(slots=True)
class Outcome:
    """What a use case changed that the caller must act on after commit."""

    #: Messages to publish once the transaction committed.
    to_publish: list[DispatchMessage] = field(default_factory=list)
    #: Whether the runner's result was recorded (False: stale attempt, discarded).
    recorded: bool = True


def message_for(task: TaskRecord) -> DispatchMessage:
    """The dispatch message announcing ``task``."""
    return DispatchMessage(task.id, task.job_id, task.cluster, task.identifier)


def derive_job_state(facts: JobFacts) -> JobState:
    """Job state precedence: CANCELED > FAILED > COMPLETED > RUNNING > STARTED > SUBMITTED."""
    if facts.state is JobState.CANCELED:
        return JobState.CANCELED
    if facts.any_failed:
        return JobState.FAILED
    if facts.all_roots_complete:
        return JobState.COMPLETED
    if facts.any_running:
        return JobState.RUNNING
    if facts.any_work_done:
        return JobState.STARTED
    return JobState.SUBMITTED


def refresh_job_state(tx: StoreTx, job_id: JobId) -> JobState:
    """Recompute the job's state from its facts; writes the job row only if it changed."""
    state = derive_job_state(tx.jobs.job_facts(job_id))
    tx.jobs.set_job_state(job_id, state)
    return state


def _require_clusters(tx: StoreTx, clusters: Iterable[str]) -> None:
    for slug in sorted(set(clusters)):
        if tx.clusters.get_cluster(slug) is None:
            raise ClusterNotFoundError(
                f"Unknown cluster {slug!r}: create it first (`conveyor clusters create {slug}`)"
            )


def _new_record(
    job_id: JobId,
    parent: TaskRecord | None,
    spec: NewTask,
    *,
    skipped: bool,
    now: dt.datetime,
    policy: Policy,
) -> TaskRecord:
    path = parent.optional_path if parent is not None else ()
    if spec.optional:
        path = (*path, spec.id)
    state = TaskState.SKIPPED if skipped else TaskState.QUEUED
    deps_open = 0 if skipped else len(spec.depends_on)
    pending = policy.publish and state is TaskState.QUEUED and deps_open == 0
    return TaskRecord(
        id=spec.id,
        job_id=job_id,
        parent_id=parent.id if parent is not None else None,
        cluster=spec.cluster,
        identifier=spec.identifier,
        input=spec.input,
        display=spec.display,
        state=state,
        depends_on=spec.depends_on,
        max_retries=spec.max_retries,
        optional=spec.optional,
        optional_path=path,
        timeout=spec.timeout,
        deps_open=deps_open,
        complete=skipped,
        created_at=now,
        stopped_at=now if skipped else None,
        publish_pending=pending,
        publish_after=now + dt.timedelta(seconds=policy.publish_lease) if pending else None,
    )


def submit_job(
    tx: StoreTx,
    name: str,
    roots: Sequence[NewTask],
    policy: Policy,
    idempotency_key: str | None = None,
) -> tuple[JobRecord, Outcome]:
    """Create a job with its root tasks, all QUEUED and ready.

    With an idempotency key that was used before, returns the existing job and changes nothing.

    Raises:
        ClusterNotFoundError: a root names a cluster that does not exist.
    """
    if idempotency_key is not None:
        existing = tx.jobs.find_job_by_key(idempotency_key)
        if existing is not None:
            return existing, Outcome()
    _require_clusters(tx, (root.cluster for root in roots))
    now = tx.now()
    job = JobRecord(
        id=JobId(uuid7()),
        name=name,
        state=JobState.SUBMITTED,
        submitted_at=now,
        cluster=roots[0].cluster,
        idempotency_key=idempotency_key,
        root_count=len(roots),
        updated_at=now,
    )
    tx.jobs.insert_job(job)
    records = [_new_record(job.id, None, r, skipped=False, now=now, policy=policy) for r in roots]
    tx.tasks.insert_tasks(records)
    return job, Outcome([message_for(r) for r in records if r.publish_pending])


#: Job states a successful claim moves to RUNNING. A claim succeeds only on an active job
#: (not FAILED, CANCELED or COMPLETED), and afterwards the job has a RUNNING task and an
#: incomplete root, so ``derive_job_state`` can only give RUNNING: no facts need to be read.
CLAIM_STARTS_JOB = frozenset({JobState.SUBMITTED, JobState.STARTED})


def claim(
    tx: StoreTx, task_id: TaskId, cluster: str, runner_id: str, lease_seconds: float
) -> ClaimedTask | ClaimRefusal:
    """Claim one task named by a delivery for a runner of ``cluster``; if it is not
    dispatchable, why not (the runner drops the message and logs the reason).

    Only a task of ``cluster`` is taken, whatever queue the message came from: clusters isolate
    runners (a misrouted or forged message must not run a task on machines it was not meant
    for). The job becomes RUNNING in the same step (see :data:`CLAIM_STARTS_JOB`). The reason
    is read only when the claim took nothing (:func:`refusal`), so a successful claim stays one
    statement."""
    claimed = tx.claims.claim_task(
        task_id, cluster, runner_id, lease_seconds, JobState.RUNNING, CLAIM_STARTS_JOB
    )
    if claimed is not None:
        return claimed
    return refusal(tx, task_id, cluster)


def refusal(tx: StoreTx, task_id: TaskId, cluster: str) -> ClaimRefusal:
    """Why a claim of ``task_id`` by a runner of ``cluster`` took nothing, from the task row read
    after the claim in the same transaction (and the job row if the task looks dispatchable).

    It names the first condition that fails, in the order a reader needs (a foreign task is
    reported as such whatever its state); it decides nothing, the claim did. A task found
    dispatchable here changed between the claim and the read (``CHANGED``)."""
    task = tx.tasks.get_task(task_id)
    if task is None:
        return ClaimRefusal(task_id, RefusalReason.UNKNOWN_TASK, cluster)
    job_state: JobState | None = None
    if task.cluster != cluster:
        reason = RefusalReason.OTHER_CLUSTER
    elif task.state is TaskState.RUNNING:
        reason = RefusalReason.RUNNING
    elif task.state is not TaskState.QUEUED:
        reason = RefusalReason.DONE
    else:
        job = tx.jobs.get_job(task.job_id)
        job_state = job.state if job is not None else None
        if job_state is None or job_state in INACTIVE_JOB_STATES:
            reason = RefusalReason.JOB_INACTIVE
        elif task.deps_open > 0:
            reason = RefusalReason.WAITING
        elif task.not_before is not None and task.not_before > tx.now():
            reason = RefusalReason.BACKING_OFF
        else:
            reason = RefusalReason.CHANGED
    return ClaimRefusal(
        task_id,
        reason,
        cluster,
        cluster=task.cluster,
        state=task.state,
        attempt=task.attempt,
        runner_id=task.runner_id,
        job_state=job_state,
    )


def _locked_running(tx: StoreTx, task_id: TaskId, attempt: int) -> TaskRecord | None:
    task = tx.tasks.lock_task(task_id)
    if task is None or task.attempt != attempt or task.state is not TaskState.RUNNING:
        return None
    return task


def complete(
    tx: StoreTx,
    task_id: TaskId,
    attempt: int,
    subtasks: Sequence[NewTask],
    display: str | None,
    progress: Mapping[str | None, tuple[int, int]],
    policy: Policy,
    then: Callable[[], ClaimedTask | None] | None = None,
) -> Outcome:
    """Record a successful execution: COMPUTED, its subtasks created in the same transaction.

    Idempotent on ``(task_id, attempt)``: a retry of a commit whose reply was lost finds the task
    COMPUTED at the same attempt and reports success. A stale attempt (the lease expired and
    another runner took over) records nothing: ``Outcome.recorded`` is False.

    Without subtasks (the common case) the store records it in one step
    (``tx.claims.finish_computed``); the rules applied are the same.

    ``then`` (see :func:`complete_and_claim`) is called at most once, where a claim in the same
    transaction saves a job-state write; the caller calls it if this did not.
    """
    if display is not None:
        display = display[:MAX_DISPLAY]
    if not subtasks:
        return _complete_leaf(tx, task_id, attempt, display, progress, policy, then)
    task = _locked_running(tx, task_id, attempt)
    if task is None:
        return _computed_before(tx, task_id, attempt)
    if display is not None:
        task.display = display
    tx.attempts.write_progress(task.id, attempt, progress)
    try:
        _require_clusters(tx, (s.cluster for s in subtasks))
    except ClusterNotFoundError as exc:
        error = TaskError("ClusterNotFoundError", str(exc))
        return fail(tx, task, error, user_error=True, outcome="failed", policy=policy)
    now = tx.now()
    skipped = task.is_optional and tx.tasks.any_subtree_failed(task.optional_path)
    records = [
        _new_record(task.job_id, task, s, skipped=skipped, now=now, policy=policy) for s in subtasks
    ]
    if records:
        tx.tasks.insert_tasks(records)
    task.state = TaskState.COMPUTED
    task.stopped_at = now
    task.lease_expires = None
    task.error = None
    task.open_children = sum(1 for r in records if not r.complete)
    tx.tasks.save_task(task)
    tx.attempts.end_attempt(task.id, attempt, "computed", None)
    out = Outcome([message_for(r) for r in records if r.publish_pending])
    if task.open_children == 0:
        out.to_publish += _propagate_complete(tx, task, policy)
    refresh_job_state(tx, task.job_id)
    return out


def _computed_before(tx: StoreTx, task_id: TaskId, attempt: int) -> Outcome:
    """A completion that found its guard gone: success if this very attempt was recorded
    COMPUTED already (a retried commit whose reply was lost), else a stale attempt."""
    current = tx.tasks.get_task(task_id)
    done = (
        current is not None and current.attempt == attempt and current.state is TaskState.COMPUTED
    )
    return Outcome(recorded=done)


def _complete_leaf(
    tx: StoreTx,
    task_id: TaskId,
    attempt: int,
    display: str | None,
    progress: Mapping[str | None, tuple[int, int]],
    policy: Policy,
    then: Callable[[], ClaimedTask | None] | None = None,
) -> Outcome:
    """``complete`` without subtasks: COMPUTED and complete at once (it has no children), its
    dependents released and its parent decremented by the store in one step; then the walk up
    (``_propagate_complete``) continues here only if the parent's subtree completed too."""
    finished = tx.claims.finish_computed(
        task_id, attempt, display, policy.publish_lease if policy.publish else None
    )
    if finished is None:
        return _computed_before(tx, task_id, attempt)
    if progress:
        tx.attempts.write_progress(task_id, attempt, progress)
    out = Outcome([message_for(r) for r in finished.released if r.publish_pending])
    parent = finished.parent
    if parent is not None and parent.open_children == 0 and parent.state in DONE_STATES:
        out.to_publish += _propagate_complete(tx, parent, policy)
        refresh_job_state(tx, finished.job_id)
        return out
    state = derive_job_state(finished.facts)
    if then is not None and state is JobState.STARTED:
        # The job ran out of running tasks only until the claim that follows: if that claim
        # takes a task of the same job, the job stays RUNNING and its row is not rewritten
        # twice (RUNNING -> STARTED -> RUNNING) for every task of a backlog.
        following = then()
        if following is not None and following.job_id == finished.job_id:
            return out
    tx.jobs.set_job_state(finished.job_id, state)
    return out


def may_claim_after(finished_job: JobId, next_job: JobId | None) -> bool:
    """Whether a completion in ``finished_job`` may claim a task of ``next_job`` in its own
    transaction (:func:`complete_and_claim`).

    The completion holds its job row's lock when the claim locks the next task and its job's
    row. Two such transactions going to each other's jobs would wait on each other, so the
    fused path only moves to a job whose id is not smaller (the same job, or a later one: ids
    are uuid7, ordered by creation). Job rows are then locked in ascending order and fused
    transactions cannot deadlock one another; a delivery of an older job is claimed on its own.
    """
    return next_job is not None and next_job >= finished_job


def complete_and_claim(
    tx: StoreTx,
    task_id: TaskId,
    attempt: int,
    subtasks: Sequence[NewTask],
    display: str | None,
    progress: Mapping[str | None, tuple[int, int]],
    policy: Policy,
    following: Callable[[], TaskId | None],
    cluster: str,
    runner_id: str,
    lease_seconds: float,
) -> tuple[Outcome, ClaimedTask | ClaimRefusal | None]:
    """:func:`complete`, then :func:`claim` the runner's next task, in one transaction.

    A runner that has its next delivery in hand when a task ends commits once per task instead
    of twice (the result, then the next claim): the commit's WAL flush is the largest single
    cost of a short task. ``following`` is asked once the completion is written — as late as
    possible, so the next message has had the completion's round trips to arrive — and returns
    the task id to claim or None (nothing in hand, or not to be fused: see
    :func:`may_claim_after`). The two stay independent: a stale completion still claims, a
    failed claim (duplicate, held, canceled) still records the completion. The second value is
    the claimed task, the claim's refusal, or None when ``following`` named nothing; the claim
    is the same as :func:`claim`'s, cluster rule included.
    """
    claims: list[ClaimedTask | ClaimRefusal | None] = []

    def claim_following() -> ClaimedTask | None:
        next_id = following()
        claimed = (
            claim(tx, next_id, cluster, runner_id, lease_seconds) if next_id is not None else None
        )
        claims.append(claimed)
        return claimed if isinstance(claimed, ClaimedTask) else None

    outcome = complete(tx, task_id, attempt, subtasks, display, progress, policy, claim_following)
    if not claims:
        claim_following()
    return outcome, claims[0]


def _propagate_complete(tx: StoreTx, task: TaskRecord, policy: Policy) -> list[DispatchMessage]:
    """``task`` and its subtree are done: release its dependents and walk up the parents."""
    messages: list[DispatchMessage] = []
    current = task
    while tx.tasks.mark_complete(current.id):
        released = tx.tasks.release_dependents(
            current.id, policy.publish_lease if policy.publish else None
        )
        messages += [message_for(r) for r in released if r.publish_pending]
        if current.parent_id is None:
            break
        parent = tx.tasks.decrement_open_children(current.parent_id)
        if parent.open_children > 0 or parent.state not in DONE_STATES:
            break
        current = parent
    return messages


def fail(
    tx: StoreTx,
    task: TaskRecord,
    error: TaskError,
    *,
    user_error: bool,
    outcome: str,
    policy: Policy,
    progress: Mapping[str | None, tuple[int, int]] | None = None,
) -> Outcome:
    """An attempt of a locked RUNNING task failed: retry it if allowed, otherwise fail it for good.

    ``user_error`` counts against ``max_retries``; otherwise (outside user code) the task is
    requeued without counting a retry, up to ``policy.system_requeue_limit`` times.
    """
    if progress:
        tx.attempts.write_progress(task.id, task.attempt, progress)
    tx.attempts.end_attempt(task.id, task.attempt, outcome, error)
    now = tx.now()
    task.error = error
    task.stopped_at = now
    task.lease_expires = None
    in_failed_boundary = task.is_optional and tx.tasks.any_subtree_failed(task.optional_path)
    if user_error:
        may_requeue = task.retry_count < task.max_retries
        if may_requeue:
            task.retry_count += 1
    else:
        task.system_requeues += 1
        may_requeue = task.system_requeues <= policy.system_requeue_limit
    if may_requeue and not in_failed_boundary:
        delay = policy.backoff(task.retry_count) if user_error else 0.0
        return _requeue(tx, task, now, delay, policy)
    out = Outcome(fail_terminally(tx, task, error, policy))
    refresh_job_state(tx, task.job_id)
    return out


def _requeue(
    tx: StoreTx, task: TaskRecord, now: dt.datetime, delay: float, policy: Policy
) -> Outcome:
    task.state = TaskState.QUEUED
    task.not_before = now + dt.timedelta(seconds=delay) if delay > 0 else None
    task.publish_pending = policy.publish
    task.publish_after = now + dt.timedelta(seconds=policy.publish_lease)
    tx.tasks.save_task(task)
    refresh_job_state(tx, task.job_id)
    return Outcome([message_for(task)] if policy.publish else [])


def fail_terminally(
    tx: StoreTx, task: TaskRecord, error: TaskError, policy: Policy
) -> list[DispatchMessage]:
    """The one terminal-failure path: FAILED (job fails) or, in an optional subtree,
    FAILED_OPTIONAL with every still-queued task under the nearest optional boundary SKIPPED."""
    task.display = f"{task.display}\n{error.type}({error.message!r})"[:MAX_DISPLAY]
    task.error = error
    task.publish_pending = False
    if not task.is_optional:
        task.state = TaskState.FAILED
        tx.tasks.save_task(task)
        return []
    task.state = TaskState.FAILED_OPTIONAL
    boundary_id = task.optional_path[-1]
    newly_failed_boundary = False
    if boundary_id == task.id:
        newly_failed_boundary = not task.subtree_failed
        task.subtree_failed = True
        tx.tasks.save_task(task)
    else:
        tx.tasks.save_task(task)
        boundary = tx.tasks.lock_task(boundary_id)
        if boundary is not None and not boundary.subtree_failed:
            boundary.subtree_failed = True
            tx.tasks.save_task(boundary)
            newly_failed_boundary = True
    messages = _propagate_complete(tx, task, policy)
    if newly_failed_boundary:
        for queued_id in tx.tasks.queued_descendants(boundary_id):
            messages += _skip(tx, queued_id, policy)
    return messages


def _skip(tx: StoreTx, task_id: TaskId, policy: Policy) -> list[DispatchMessage]:
    task = tx.tasks.lock_task(task_id)
    if task is None or task.state is not TaskState.QUEUED:
        return []
    task.state = TaskState.SKIPPED
    task.publish_pending = False
    task.stopped_at = tx.now()
    tx.tasks.save_task(task)
    return _propagate_complete(tx, task, policy)


def fail_running(
    tx: StoreTx,
    task_id: TaskId,
    attempt: int,
    error: TaskError,
    *,
    user_error: bool,
    outcome: str,
    policy: Policy,
    display: str | None = None,
    progress: Mapping[str | None, tuple[int, int]] | None = None,
) -> Outcome:
    """A runner reports a failed attempt (fenced: a stale attempt records nothing)."""
    task = _locked_running(tx, task_id, attempt)
    if task is None:
        return Outcome(recorded=False)
    if display is not None:
        task.display = display[:MAX_DISPLAY]
    return fail(
        tx, task, error, user_error=user_error, outcome=outcome, policy=policy, progress=progress
    )


def give_back(tx: StoreTx, task_id: TaskId, attempt: int, reason: str, policy: Policy) -> Outcome:
    """Hand a running task back (shutdown, unknown identifier): QUEUED, no retry counted."""
    error = TaskError("GivenBack", reason)
    return fail_running(
        tx, task_id, attempt, error, user_error=False, outcome="given_back", policy=policy
    )


def expire_leases(tx: StoreTx, policy: Policy, limit: int = 500, overdue: float = 0.0) -> Outcome:
    """Requeue tasks whose lease expired (crashed, hung or cut-off runners), counting a crash;
    past the crash limit they fail for good. Safe to run from many processes at once.

    ``overdue``: only leases that expired at least this many seconds ago are taken. After the
    store was unreachable, the sweeper passes how long (``Orchestrator.expire_leases``): a live
    holder could not extend meanwhile, so that time must not count against its lease."""
    out = Outcome()
    jobs: set[JobId] = set()
    for task in tx.tasks.expired_leases(limit, overdue):
        error = TaskError(
            "LeaseExpired",
            f"the runner {task.runner_id} stopped extending its lease (crashed, hung or "
            f"lost its connection); lease expiry {task.crash_count + 1}",
        )
        tx.attempts.end_attempt(task.id, task.attempt, "expired", error)
        task.crash_count += 1
        now = tx.now()
        task.lease_expires = None
        task.stopped_at = now
        in_failed_boundary = task.is_optional and tx.tasks.any_subtree_failed(task.optional_path)
        if task.crash_count > policy.crash_limit:
            limit_error = TaskError(
                "CrashLimitExceeded",
                f"lease expired {task.crash_count} times (limit {policy.crash_limit})",
            )
            out.to_publish += fail_terminally(tx, task, limit_error, policy)
        elif in_failed_boundary:
            task.state = TaskState.QUEUED
            tx.tasks.save_task(task)
            out.to_publish += _skip(tx, task.id, policy)
        else:
            task.state = TaskState.QUEUED
            task.publish_pending = policy.publish
            task.publish_after = now + dt.timedelta(seconds=policy.publish_lease)
            tx.tasks.save_task(task)
            if policy.publish:
                out.to_publish.append(message_for(task))
        jobs.add(task.job_id)
    for job_id in sorted(jobs):
        refresh_job_state(tx, job_id)
    return out


def retry_job(tx: StoreTx, job_id: JobId, policy: Policy) -> tuple[int, Outcome]:
    """Put a FAILED or CANCELED job's FAILED tasks back in the queue and resume it.

    Returns the number of FAILED tasks requeued; on an active or COMPLETED job, 0 and no change.
    """
    job = tx.jobs.get_job(job_id)
    if job is None:
        raise JobNotFoundError(f"No job with id {job_id}")
    if job.state not in RETRYABLE_JOB_STATES:
        return 0, Outcome()
    count = tx.tasks.requeue_failed_tasks(job_id)
    tx.jobs.set_job_state(job_id, JobState.SUBMITTED)  # drop the CANCELED mark, then derive
    refresh_job_state(tx, job_id)
    messages = tx.outbox.republish_ready(job_id, policy.publish_lease) if policy.publish else []
    return count, Outcome(messages)


def cancel_job(tx: StoreTx, job_id: JobId) -> JobState:
    """Stop dispatching a job's queued tasks; running ones finish. No-op on a COMPLETED job."""
    job = tx.jobs.get_job(job_id)
    if job is None:
        raise JobNotFoundError(f"No job with id {job_id}")
    if job.state is JobState.COMPLETED:
        return job.state
    tx.jobs.set_job_state(job_id, JobState.CANCELED)
    return JobState.CANCELED
