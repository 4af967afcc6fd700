"""The application service: use cases run as store transactions, messages published after commit.

This is the one place where a committed state change turns into broker messages. Publishing
happens after commit (never inside a transaction, so a slow broker never holds row locks); if the
process dies or the broker refuses, the rows stay publish-pending and the outbox sweep
(:meth:`Orchestrator.publish_outbox`, run by every runner and the monitor) sends them later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from conveyor.core import usecases
from conveyor.core.errors import (
    ClusterNotFoundError,
    ConveyorError,
    StoreUnavailableError,
)
from conveyor.core.identifiers import (
    DEFAULT_CLUSTER,
    SLUG_PATTERN,
    JobId,
    TaskId,
    slugify,
    validate_slug,
)
from conveyor.core.model import (
    ClaimedTask,
    ClaimRefusal,
    Cluster,
    DispatchMessage,
    JobRecord,
    JobState,
    NewTask,
    RegisteredIdentifier,
    RunnerInfo,
    TaskError,
)
from conveyor.core.ports import Broker, Store, StoreTx
from conveyor.core.relay import OutboxRelay
from conveyor.core.usecases import Outcome, Policy

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Messages published (and marked published) per batch in large fan-outs.
PUBLISH_CHUNK = 5000

#: A transaction that starts this many seconds after its call waited for the store itself
#: (connections refused, the store's own retries), not for a row lock or a pool slot.
OUTAGE_WAIT = 1.0


class StoreAvailability:
    """What this process saw of the store's availability: the time an outage took from lease
    holders, which the expiry sweep gives back (:meth:`Orchestrator.expire_leases`).

    Every store call of an orchestrator goes through :meth:`run`. A call saw the store
    unavailable when its transaction had to be run again (a lost connection, including a
    pooled one that died while this process was idle), when it started ``OUTAGE_WAIT`` or more
    after the call (the store's retries while the database was down), or when an earlier call
    failed with StoreUnavailableError. The outage is then taken to have lasted from the end of
    the last call that succeeded before it (the store may have gone right after) to the start
    of the attempt that got through: never shorter than what the holders lost, possibly longer
    for an idle process, which only delays recovery from real crashes right after an outage.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: When the latest successful call ended (None: no call succeeded yet).
        self._last_ok: float | None = None
        #: Set by a call that failed for good: the outage began at the latest then.
        self._down_since: float | None = None
        #: The latest outage: its length and when the store was reachable again.
        self._length = 0.0
        self._back_at = 0.0

    def run(self, store: Store, fn: Callable[[StoreTx], T]) -> T:
        """``store.run(fn)``, noting whether the call found the store unavailable."""
        asked = self._clock()
        with self._lock:
            since = asked if self._last_ok is None else self._last_ok
        attempts = 0

        def attempt(tx: StoreTx) -> T:
            nonlocal attempts
            attempts += 1
            began = self._clock()
            with self._lock:
                if attempts > 1 or began - asked >= OUTAGE_WAIT or self._down_since is not None:
                    self._outage_ended(since, began)
            return fn(tx)

        try:
            result = store.run(attempt)
        except StoreUnavailableError:
            with self._lock:
                if self._down_since is None:
                    self._down_since = since
            raise
        ended = self._clock()
        with self._lock:
            self._last_ok = ended if self._last_ok is None else max(self._last_ok, ended)
        return result

    def _outage_ended(self, since: float, back: float) -> None:
        """Under the lock: the store was unavailable from ``since`` (or earlier, if a call
        failed meanwhile) until ``back``. An outage right after another one keeps the larger
        grace, so flapping never shortens it."""
        start = since if self._down_since is None else min(since, self._down_since)
        self._down_since = None
        self._length = max(back - start, self._grace(back))
        self._back_at = back

    def _grace(self, now: float) -> float:
        if now < self._back_at + 2 * self._length:
            return self._length
        return 0.0

    def grace(self) -> float:
        """Seconds an expired lease must be overdue before a sweep may take it now.

        The length D of the latest outage, for 2·D after the store came back; then 0. A holder
        that lost D seconds of extensions gets them back (a lease it had extended on time is
        taken no earlier than 2/3 of a lease after the store returned), and its own retries,
        which back off while the store is down (at most ~1.5·D), get through before a lease
        that ran out after the store returned is taken at 2·D.
        """
        now = self._clock()
        with self._lock:
            return self._grace(now)


class Orchestrator:
    """Store + broker + policy: every command the client, runners and monitor perform.

    Reads live in :class:`conveyor.core.reads.ReadService`; what stays here changes state (or
    is what a runner asks before it does, such as ``has_dispatchable`` and ``find_cluster``)."""

    def __init__(
        self,
        store: Store,
        broker: Broker,
        policy: Policy | None = None,
        *,
        relay: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``relay``: submissions return after their commit and a background thread publishes
        their messages in batches (:mod:`conveyor.core.relay`); for brokers where a publish
        is a network round trip. ``clock``: the monotonic clock outages are measured with."""
        self.store = store
        self.broker = broker
        #: What this process saw of the store's availability (see ``expire_leases``).
        self.availability = StoreAvailability(clock)
        base = policy or Policy()
        self.policy = Policy(
            publish=broker.requires_publish,
            crash_limit=base.crash_limit,
            system_requeue_limit=base.system_requeue_limit,
            publish_lease=base.publish_lease,
            retry_backoff=base.retry_backoff,
            retry_backoff_factor=base.retry_backoff_factor,
            retry_backoff_max=base.retry_backoff_max,
        )
        self.relay = OutboxRelay(self._publish) if relay and self.policy.publish else None

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
        self.broker.close()
        self.store.close()

    # -- publishing ----------------------------------------------------------------------------
    def _publish(self, messages: Sequence[DispatchMessage]) -> int:
        """Publish after commit, then mark published; failures are left to the outbox sweep.

        Large fan-outs go in chunks; each chunk is marked published on a helper thread while
        the next one is published (marking 5,000 rows took as long as publishing them), with
        at most one mark in flight. Returns how many were published and marked.
        """
        if not messages or not self.policy.publish:
            return 0
        sent = 0
        marking: threading.Thread | None = None
        errors: list[ConveyorError] = []
        marked: list[int] = []

        def mark(ids: list[TaskId]) -> None:
            try:
                self._run(lambda tx: tx.outbox.mark_published(ids))
                marked.append(len(ids))
            except ConveyorError as exc:
                errors.append(exc)

        for start in range(0, len(messages), PUBLISH_CHUNK):
            chunk = messages[start : start + PUBLISH_CHUNK]
            try:
                self.broker.publish(chunk)
            except ConveyorError as exc:
                errors.append(exc)
                break
            ids = [m.task_id for m in chunk]
            if marking is not None:
                marking.join()
            if errors:
                break
            if start + PUBLISH_CHUNK >= len(messages):  # the last (or only) chunk: inline
                marking = None
                mark(ids)
            else:
                marking = threading.Thread(target=mark, args=(ids,), name="conveyor-mark")
                marking.start()
        if marking is not None:
            marking.join()
        sent = sum(marked)
        if errors:
            log.warning(
                "publishing %d dispatch messages failed (%s); the outbox sweep will retry",
                len(messages) - sent,
                errors[0],
            )
        return sent

    def _run(self, fn: Callable[[StoreTx], T]) -> T:
        """Every store call: a transaction, watched for outages (:class:`StoreAvailability`)."""
        return self.availability.run(self.store, fn)

    def _after(self, outcome: Outcome) -> Outcome:
        self._publish(outcome.to_publish)
        return outcome

    def publish_outbox(self, limit: int = 1000) -> int:
        """Publish what committed transactions left unpublished (their publish lease passed)."""
        if not self.policy.publish:
            return 0
        messages = self._run(
            lambda tx: tx.outbox.claim_unpublished(self.policy.publish_lease, limit)
        )
        return self._publish(messages)

    def expire_leases(self, limit: int = 500) -> int:
        """Requeue (or fail, past the crash limit) tasks whose lease expired; how many.

        Right after the store was unreachable, only leases overdue by more than the outage are
        taken (:meth:`StoreAvailability.grace`, read when the transaction starts, so a sweep
        that itself waited through the outage counts it): holders could not extend meanwhile.
        Every sweeper (runners, ``run_all``, the monitor) calls this, so one rule covers all.
        """
        outcome = self._run(
            lambda tx: usecases.expire_leases(tx, self.policy, limit, self.availability.grace())
        )
        self._after(outcome)
        return len(outcome.to_publish)

    # -- clusters ------------------------------------------------------------------------------
    def create_cluster(self, name: str, slug: str | None = None) -> Cluster:
        """Create a cluster; the slug is the name itself when that is a valid slug."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("A cluster name is required")
        if slug is None:
            slug = name if SLUG_PATTERN.match(name) else slugify(name)
        cluster = Cluster(validate_slug(slug), name)
        self._run(lambda tx: tx.clusters.insert_cluster(cluster))
        return cluster

    def find_cluster(self, slug: str | None) -> Cluster:
        slug = slug or DEFAULT_CLUSTER
        cluster = self._run(lambda tx: tx.clusters.get_cluster(slug))
        if cluster is None:
            raise ClusterNotFoundError(
                f"Unknown cluster {slug!r}: create it first (`conveyor clusters create {slug}`)"
            )
        return cluster

    def delete_cluster(self, slug: str) -> None:
        cluster = self.find_cluster(slug)
        if not cluster.deletable:
            raise ValueError(f"The {slug!r} cluster always exists and cannot be deleted")
        self._run(lambda tx: tx.clusters.delete_cluster(slug))

    # -- jobs ----------------------------------------------------------------------------------
    def submit_job(
        self, name: str, roots: Sequence[NewTask], idempotency_key: str | None = None
    ) -> JobRecord:
        if not isinstance(name, str) or not name:
            raise ValueError("A job name is required (a non-empty string)")
        if not roots:
            raise ValueError("At least one task must be submitted.")
        job, outcome = self._run(
            lambda tx: usecases.submit_job(tx, name, roots, self.policy, idempotency_key)
        )
        if self.relay is not None:
            self.relay.put(outcome.to_publish)
        else:
            self._after(outcome)
        return job

    def retry_job(self, job_id: JobId) -> int:
        count, outcome = self._run(lambda tx: usecases.retry_job(tx, job_id, self.policy))
        self._after(outcome)
        return count

    def cancel_job(self, job_id: JobId) -> JobState:
        return self._run(lambda tx: usecases.cancel_job(tx, job_id))

    def delete_job(self, job_id: JobId) -> bool:
        return self._run(lambda tx: tx.jobs.delete_job(job_id))

    # -- runners -------------------------------------------------------------------------------
    def claim(
        self, task_id: TaskId, cluster: str, runner_id: str, lease: float
    ) -> ClaimedTask | ClaimRefusal:
        """Claim the task a message names for a runner of ``cluster``, or say why not."""
        return self._run(lambda tx: usecases.claim(tx, task_id, cluster, runner_id, lease))

    def claim_next(
        self,
        cluster: str,
        identifiers: Sequence[RegisteredIdentifier],
        runner_id: str,
        lease: float,
    ) -> ClaimedTask | None:
        def run(tx: StoreTx) -> ClaimedTask | None:
            claimed = tx.claims.claim_next(cluster, identifiers, runner_id, lease)
            if claimed is not None:
                usecases.refresh_job_state(tx, claimed.job_id)
            return claimed

        return self._run(run)

    def has_dispatchable(self, cluster: str, identifiers: Sequence[RegisteredIdentifier]) -> bool:
        return self._run(lambda tx: tx.claims.has_dispatchable(cluster, identifiers))

    def complete(
        self,
        task: ClaimedTask,
        subtasks: Sequence[NewTask],
        display: str | None,
        progress: Mapping[str | None, tuple[int, int]],
    ) -> bool:
        """Record success; False if the attempt was stale (result discarded)."""
        outcome = self._run(
            lambda tx: usecases.complete(
                tx, task.id, task.attempt, subtasks, display, progress, self.policy
            )
        )
        return self._after(outcome).recorded

    def complete_and_claim(
        self,
        task: ClaimedTask,
        subtasks: Sequence[NewTask],
        display: str | None,
        progress: Mapping[str | None, tuple[int, int]],
        following: Callable[[], TaskId | None],
        cluster: str,
        runner_id: str,
        lease: float,
    ) -> tuple[bool, ClaimedTask | ClaimRefusal | None]:
        """Record success and claim the task ``following()`` names in the same transaction
        (``usecases.complete_and_claim``): whether the result was recorded, and the claimed
        task, the claim's refusal or None (nothing named). ``following`` may be called again
        if the transaction is retried."""
        outcome, claimed = self._run(
            lambda tx: usecases.complete_and_claim(
                tx,
                task.id,
                task.attempt,
                subtasks,
                display,
                progress,
                self.policy,
                following,
                cluster,
                runner_id,
                lease,
            )
        )
        return self._after(outcome).recorded, claimed

    def fail(
        self,
        task: ClaimedTask,
        error: TaskError,
        *,
        user_error: bool = True,
        outcome: str = "failed",
        display: str | None = None,
        progress: Mapping[str | None, tuple[int, int]] | None = None,
    ) -> bool:
        """Record a failed attempt; False if the attempt was stale."""
        result = self._run(
            lambda tx: usecases.fail_running(
                tx,
                task.id,
                task.attempt,
                error,
                user_error=user_error,
                outcome=outcome,
                policy=self.policy,
                display=display,
                progress=progress,
            )
        )
        return self._after(result).recorded

    def give_back(self, task: ClaimedTask, reason: str) -> bool:
        result = self._run(
            lambda tx: usecases.give_back(tx, task.id, task.attempt, reason, self.policy)
        )
        return self._after(result).recorded

    def extend_lease(self, task: ClaimedTask, lease: float) -> bool:
        expires = self._run(lambda tx: tx.tasks.extend_lease(task.id, task.attempt, lease))
        return expires is not None

    def report_live(
        self,
        task: ClaimedTask,
        display: str | None,
        progress: Mapping[str | None, tuple[int, int]],
    ) -> bool:
        """Write live progress and display of a running task (fenced)."""

        def run(tx: StoreTx) -> bool:
            ok = tx.attempts.write_progress(task.id, task.attempt, progress) if progress else True
            if display is not None:
                ok = tx.tasks.set_display(task.id, task.attempt, display) and ok
            return ok

        return self._run(run)

    def register_runner(self, info: RunnerInfo) -> None:
        self._run(lambda tx: tx.runners.upsert_runner(info))

    def runner_heartbeat(
        self, runner_id: str, current: TaskId | None, computed: int, failed: int
    ) -> None:
        self._run(lambda tx: tx.runners.runner_heartbeat(runner_id, current, computed, failed))

    def set_runner_state(self, runner_id: str, state: str) -> None:
        self._run(lambda tx: tx.runners.set_runner_state(runner_id, state))

    def mark_silent_runners(self, silent_seconds: float) -> int:
        """Mark gone the runners silent for ``silent_seconds``; right after an outage, for that
        plus the outage (:meth:`StoreAvailability.grace`): their heartbeats could not land."""
        return self._run(
            lambda tx: tx.runners.mark_silent_runners(silent_seconds + self.availability.grace())
        )
