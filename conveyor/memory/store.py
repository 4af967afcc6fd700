"""In-memory state store: the store port's exact semantics, in one process.

Transactions are serialisable: one lock is held for the whole transaction, and every change is
journalled so a transaction that raises is rolled back completely (the same all-or-nothing the
SQL store gives). Records handed out are copies, so the core never changes state behind the
store's back. Used for unit tests, ``memory://`` clients and single-process embedded runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from conveyor.core.errors import AlreadyExistsError, JobNotFoundError, TaskNotFoundError
from conveyor.core.identifiers import DEFAULT_CLUSTER, JobId, TaskId, TaskIdentifier
from conveyor.core.model import (
    DONE_STATES,
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
from conveyor.core.ports import FinishedTask
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
_INACTIVE = (JobState.FAILED, JobState.CANCELED, JobState.COMPLETED)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Tables:
    """The store's state. Every mutation goes through ``_set``/``_delete`` so it is journalled."""

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {
            DEFAULT_CLUSTER: Cluster(DEFAULT_CLUSTER, "Default", deletable=False)
        }
        self.jobs: dict[JobId, JobRecord] = {}
        self.job_keys: dict[str, JobId] = {}
        self.tasks: dict[TaskId, TaskRecord] = {}
        self.job_tasks: dict[JobId, list[TaskId]] = {}
        self.children: dict[TaskId, list[TaskId]] = {}
        self.dependents: dict[TaskId, list[TaskId]] = {}
        self.queued: dict[TaskId, None] = {}  # insertion-ordered set of QUEUED task ids
        self.running: dict[TaskId, None] = {}
        self.attempts: dict[TaskId, list[AttemptRecord]] = {}
        self.progress: dict[tuple[TaskId, int], dict[str | None, tuple[int, int]]] = {}
        self.runners: dict[str, RunnerInfo] = {}


class InMemoryStore:
    """A thread-safe, transactional store in process memory."""

    def __init__(self, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._tables = _Tables()
        self._lock = threading.RLock()
        self._clock = clock

    def run(self, fn: Callable[[InMemoryTx], T]) -> T:
        with self._lock:
            tx = InMemoryTx(self._tables, self._clock)
            try:
                return fn(tx)
            except BaseException:
                tx._rollback()
                raise
            finally:
                tx._closed = True

    def close(self) -> None:
        """Nothing to release."""


class InMemoryTx:
    """One transaction over :class:`_Tables`, journalled for rollback."""

    def __init__(self, tables: _Tables, clock: Callable[[], dt.datetime]) -> None:
        self._t = tables
        self._now = clock()
        self._undo: list[Callable[[], None]] = []
        self._closed = False

    # -- journalling ---------------------------------------------------------------------------
    def _set(self, mapping: dict[Any, Any], key: Any, value: Any) -> None:
        if key in mapping:
            old = mapping[key]
            self._undo.append(lambda: mapping.__setitem__(key, old))
        else:
            self._undo.append(lambda: mapping.pop(key, None))
        mapping[key] = value

    def _delete(self, mapping: dict[Any, Any], key: Any) -> None:
        if key in mapping:
            old = mapping.pop(key)
            self._undo.append(lambda: mapping.__setitem__(key, old))

    def _append(self, mapping: dict[Any, list[Any]], key: Any, value: Any) -> None:
        current = mapping.get(key)
        self._set(mapping, key, [*(current or []), value])

    def _rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _store_task(self, task: TaskRecord) -> None:
        self._set(self._t.tasks, task.id, dataclasses.replace(task))
        for index, member in (
            (self._t.queued, task.state is TaskState.QUEUED),
            (self._t.running, task.state is TaskState.RUNNING),
        ):
            if member and task.id not in index:
                self._set(index, task.id, None)
            elif not member and task.id in index:
                self._delete(index, task.id)

    def _task(self, task_id: TaskId) -> TaskRecord:
        task = self._t.tasks.get(task_id)
        if task is None:
            raise TaskNotFoundError(f"No task with id {task_id}")
        return task

    def now(self) -> dt.datetime:
        return self._now

    # -- clusters ------------------------------------------------------------------------------
    def get_cluster(self, slug: str) -> Cluster | None:
        return self._t.clusters.get(slug)

    def list_clusters(self) -> list[Cluster]:
        return [self._t.clusters[k] for k in sorted(self._t.clusters)]

    def insert_cluster(self, cluster: Cluster) -> None:
        if cluster.slug in self._t.clusters:
            raise AlreadyExistsError(f"A cluster with slug {cluster.slug!r} already exists")
        self._set(self._t.clusters, cluster.slug, cluster)

    def delete_cluster(self, slug: str) -> bool:
        cluster = self._t.clusters.get(slug)
        if cluster is None or not cluster.deletable:
            return False
        self._delete(self._t.clusters, slug)
        return True

    # -- jobs ----------------------------------------------------------------------------------
    def insert_job(self, job: JobRecord) -> None:
        if job.idempotency_key is not None:
            if job.idempotency_key in self._t.job_keys:
                raise AlreadyExistsError(
                    f"A job with idempotency key {job.idempotency_key!r} already exists"
                )
            self._set(self._t.job_keys, job.idempotency_key, job.id)
        self._set(self._t.jobs, job.id, dataclasses.replace(job))
        self._set(self._t.job_tasks, job.id, [])

    def get_job(self, job_id: JobId) -> JobRecord | None:
        job = self._t.jobs.get(job_id)
        return dataclasses.replace(job) if job is not None else None

    def find_job_by_key(self, idempotency_key: str) -> JobRecord | None:
        job_id = self._t.job_keys.get(idempotency_key)
        return self.get_job(job_id) if job_id is not None else None

    def set_job_state(self, job_id: JobId, state: JobState) -> bool:
        job = self._t.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"No job with id {job_id}")
        if job.state is state:
            return False
        self._set(self._t.jobs, job_id, dataclasses.replace(job, state=state, updated_at=self._now))
        return True

    def job_facts(self, job_id: JobId) -> JobFacts:
        job = self._t.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"No job with id {job_id}")
        tasks = [self._t.tasks[i] for i in self._t.job_tasks.get(job_id, [])]
        return JobFacts(
            state=job.state,
            any_running=any(t.state is TaskState.RUNNING for t in tasks),
            any_failed=any(t.state is TaskState.FAILED for t in tasks),
            any_work_done=any(
                t.state in DONE_STATES or t.retry_count > 0 or t.attempt > 0 for t in tasks
            ),
            all_roots_complete=all(t.complete for t in tasks if t.parent_id is None),
        )

    def query_jobs(self, query: JobQuery) -> list[JobRecord]:
        found = []
        needle = query.name.lower() if query.name else None
        for job in sorted(self._t.jobs.values(), key=lambda j: j.id, reverse=True):
            if query.before_id is not None and job.id >= query.before_id:
                continue
            if query.states and job.state not in query.states:
                continue
            if needle and needle not in job.name.lower():
                continue
            if query.cluster and job.cluster != query.cluster:
                continue
            if query.submitted_after and job.submitted_at < query.submitted_after:
                continue
            if query.submitted_before and job.submitted_at >= query.submitted_before:
                continue
            found.append(dataclasses.replace(job))
            if len(found) >= query.limit:
                break
        return found

    def delete_job(self, job_id: JobId) -> bool:
        job = self._t.jobs.get(job_id)
        if job is None:
            return False
        for task_id in self._t.job_tasks.get(job_id, []):
            for mapping in (
                self._t.tasks,
                self._t.children,
                self._t.dependents,
                self._t.queued,
                self._t.running,
                self._t.attempts,
            ):
                self._delete(mapping, task_id)
            for key in [k for k in self._t.progress if k[0] == task_id]:
                self._delete(self._t.progress, key)
        self._delete(self._t.job_tasks, job_id)
        if job.idempotency_key is not None:
            self._delete(self._t.job_keys, job.idempotency_key)
        self._delete(self._t.jobs, job_id)
        return True

    # -- tasks ---------------------------------------------------------------------------------
    def insert_tasks(self, tasks: Sequence[TaskRecord]) -> None:
        by_job: dict[JobId, list[TaskId]] = {}
        for task in tasks:
            if task.id in self._t.tasks:
                raise AlreadyExistsError(f"A task with id {task.id} already exists")
            if task.job_id not in self._t.jobs:
                raise JobNotFoundError(f"No job with id {task.job_id}")
            self._store_task(task)
            by_job.setdefault(task.job_id, []).append(task.id)
            if task.parent_id is not None:
                self._append(self._t.children, task.parent_id, task.id)
            for dep in task.depends_on:
                self._append(self._t.dependents, dep, task.id)
        for job_id, ids in by_job.items():
            self._set(self._t.job_tasks, job_id, [*self._t.job_tasks.get(job_id, []), *ids])

    def get_task(self, task_id: TaskId) -> TaskRecord | None:
        task = self._t.tasks.get(task_id)
        return dataclasses.replace(task) if task is not None else None

    def lock_task(self, task_id: TaskId) -> TaskRecord | None:
        return self.get_task(task_id)

    def save_task(self, task: TaskRecord) -> None:
        self._task(task.id)
        self._store_task(task)

    def job_tasks(
        self, job_id: JobId, *, after: TaskId | None = None, limit: int = 1000
    ) -> list[TaskRecord]:
        ids = sorted(self._t.job_tasks.get(job_id, []))
        if after is not None:
            ids = [i for i in ids if i > after]
        return [dataclasses.replace(self._t.tasks[i]) for i in ids[:limit]]

    def _dispatchable(self, task: TaskRecord) -> bool:
        if task.state is not TaskState.QUEUED or task.deps_open != 0:
            return False
        if task.not_before is not None and task.not_before > self._now:
            return False
        return self._t.jobs[task.job_id].state not in _INACTIVE

    def _do_claim(self, task: TaskRecord, runner_id: str, lease_seconds: float) -> ClaimedTask:
        expires = self._now + dt.timedelta(seconds=lease_seconds)
        task = dataclasses.replace(
            task,
            state=TaskState.RUNNING,
            attempt=task.attempt + 1,
            runner_id=runner_id,
            started_at=self._now,
            stopped_at=None,
            lease_expires=expires,
            not_before=None,
            publish_pending=False,
        )
        self._store_task(task)
        self._append(
            self._t.attempts, task.id, AttemptRecord(task.id, task.attempt, runner_id, self._now)
        )
        job = self._t.jobs[task.job_id]
        return ClaimedTask(
            id=task.id,
            job_id=task.job_id,
            job_name=job.name,
            parent_id=task.parent_id,
            cluster=task.cluster,
            identifier=task.identifier,
            input=task.input,
            display=task.display,
            attempt=task.attempt,
            retry_count=task.retry_count,
            max_retries=task.max_retries,
            optional_path=task.optional_path,
            timeout=task.timeout,
            lease_expires=expires,
            depends_on=task.depends_on,
        )

    def claim(self, task_id: TaskId, runner_id: str, lease_seconds: float) -> ClaimedTask | None:
        task = self._t.tasks.get(task_id)
        if task is None or not self._dispatchable(task):
            return None
        return self._do_claim(task, runner_id, lease_seconds)

    def _matching(
        self, cluster: str, identifiers: Sequence[RegisteredIdentifier]
    ) -> Iterator[TaskRecord]:
        for task_id in self._t.queued:
            task = self._t.tasks[task_id]
            if task.cluster != cluster:
                continue
            ident = task.identifier
            if any(
                r.name == ident.name and r.major == ident.major and ident.minor <= r.max_minor
                for r in identifiers
            ):
                yield task

    def claim_next(
        self,
        cluster: str,
        identifiers: Sequence[RegisteredIdentifier],
        runner_id: str,
        lease_seconds: float,
    ) -> ClaimedTask | None:
        for task in self._matching(cluster, identifiers):
            if self._dispatchable(task):
                return self._do_claim(task, runner_id, lease_seconds)
        return None

    def has_dispatchable(self, cluster: str, identifiers: Sequence[RegisteredIdentifier]) -> bool:
        return any(
            t.deps_open == 0 and self._t.jobs[t.job_id].state not in _INACTIVE
            for t in self._matching(cluster, identifiers)
        )

    def claim_task(
        self,
        task_id: TaskId,
        cluster: str,
        runner_id: str,
        lease_seconds: float,
        job_state: JobState,
        job_states_from: Collection[JobState],
    ) -> ClaimedTask | None:
        task = self._t.tasks.get(task_id)
        if task is None or task.cluster != cluster:
            return None
        claimed = self.claim(task_id, runner_id, lease_seconds)
        if claimed is not None and self._t.jobs[claimed.job_id].state in job_states_from:
            self.set_job_state(claimed.job_id, job_state)
        return claimed

    def finish_computed(
        self, task_id: TaskId, attempt: int, display: str | None, publish_lease: float | None
    ) -> FinishedTask | None:
        task = self._running(task_id, attempt)
        if task is None:
            return None
        task = dataclasses.replace(
            task,
            state=TaskState.COMPUTED,
            stopped_at=self._now,
            lease_expires=None,
            error=None,
            open_children=0,
            display=task.display if display is None else display,
        )
        self._store_task(task)
        self.end_attempt(task_id, attempt, "computed", None)
        self.mark_complete(task_id)
        released = self.release_dependents(task_id, publish_lease)
        parent = None
        if task.parent_id is not None:
            parent = self.decrement_open_children(task.parent_id)
        return FinishedTask(task.job_id, parent, released, self.job_facts(task.job_id))

    def _running(self, task_id: TaskId, attempt: int) -> TaskRecord | None:
        task = self._t.tasks.get(task_id)
        if task is None or task.attempt != attempt or task.state is not TaskState.RUNNING:
            return None
        return task

    def extend_lease(
        self, task_id: TaskId, attempt: int, lease_seconds: float
    ) -> dt.datetime | None:
        task = self._running(task_id, attempt)
        if task is None:
            return None
        expires = self._now + dt.timedelta(seconds=lease_seconds)
        self._store_task(dataclasses.replace(task, lease_expires=expires))
        return expires

    def set_display(self, task_id: TaskId, attempt: int, display: str) -> bool:
        task = self._running(task_id, attempt)
        if task is None:
            return False
        self._store_task(dataclasses.replace(task, display=display))
        return True

    def decrement_open_children(self, task_id: TaskId) -> TaskRecord:
        task = self._task(task_id)
        task = dataclasses.replace(task, open_children=task.open_children - 1)
        self._store_task(task)
        return dataclasses.replace(task)

    def mark_complete(self, task_id: TaskId) -> bool:
        task = self._task(task_id)
        if task.complete:
            return False
        self._store_task(dataclasses.replace(task, complete=True))
        return True

    def release_dependents(self, task_id: TaskId, publish_lease: float | None) -> list[TaskRecord]:
        released = []
        for dep_id in self._t.dependents.get(task_id, []):
            dep = self._t.tasks[dep_id]
            dep = dataclasses.replace(dep, deps_open=dep.deps_open - 1)
            if dep.deps_open == 0 and dep.state is TaskState.QUEUED:
                if publish_lease is not None:
                    dep.publish_pending = True
                    dep.publish_after = self._now + dt.timedelta(seconds=publish_lease)
                released.append(dataclasses.replace(dep))
            self._store_task(dep)
        return released

    def queued_descendants(self, task_id: TaskId) -> list[TaskId]:
        found: list[TaskId] = []
        stack = list(self._t.children.get(task_id, []))
        while stack:
            current = stack.pop()
            if self._t.tasks[current].state is TaskState.QUEUED:
                found.append(current)
            stack.extend(self._t.children.get(current, []))
        return sorted(found)

    def any_subtree_failed(self, task_ids: Sequence[TaskId]) -> bool:
        return any(self._t.tasks[i].subtree_failed for i in task_ids if i in self._t.tasks)

    def expired_leases(self, limit: int, overdue: float = 0.0) -> list[TaskRecord]:
        before = self._now - dt.timedelta(seconds=overdue)
        expired = []
        for task_id in self._t.running:
            task = self._t.tasks[task_id]
            if task.lease_expires is not None and task.lease_expires <= before:
                expired.append(dataclasses.replace(task))
                if len(expired) >= limit:
                    break
        return expired

    def requeue_failed_tasks(self, job_id: JobId) -> int:
        count = 0
        for task_id in self._t.job_tasks.get(job_id, []):
            task = self._t.tasks[task_id]
            if task.state is not TaskState.FAILED:
                continue
            self._store_task(
                dataclasses.replace(
                    task,
                    state=TaskState.QUEUED,
                    retry_count=0,
                    crash_count=0,
                    system_requeues=0,
                    error=None,
                    not_before=None,
                    stopped_at=None,
                )
            )
            count += 1
        return count

    def republish_ready(self, job_id: JobId, lease_seconds: float) -> list[DispatchMessage]:
        messages = []
        until = self._now + dt.timedelta(seconds=lease_seconds)
        for task_id in self._t.job_tasks.get(job_id, []):
            task = self._t.tasks[task_id]
            if task.state is TaskState.QUEUED and task.deps_open == 0:
                self._store_task(
                    dataclasses.replace(task, publish_pending=True, publish_after=until)
                )
                messages.append(
                    DispatchMessage(task.id, task.job_id, task.cluster, task.identifier)
                )
        return messages

    def mark_published(self, task_ids: Sequence[TaskId]) -> None:
        for task_id in task_ids:
            task = self._t.tasks.get(task_id)
            if task is not None and task.publish_pending:
                self._store_task(
                    dataclasses.replace(task, publish_pending=False, published_at=self._now)
                )

    def claim_unpublished(self, lease_seconds: float, limit: int) -> list[DispatchMessage]:
        messages = []
        until = self._now + dt.timedelta(seconds=lease_seconds)
        for task in list(self._t.tasks.values()):
            if not task.publish_pending:
                continue
            if task.publish_after is not None and task.publish_after > self._now:
                continue
            self._store_task(dataclasses.replace(task, publish_after=until))
            messages.append(DispatchMessage(task.id, task.job_id, task.cluster, task.identifier))
            if len(messages) >= limit:
                break
        return messages

    # -- attempts and progress ------------------------------------------------------------------
    def end_attempt(
        self, task_id: TaskId, attempt: int, outcome: str, error: TaskError | None
    ) -> None:
        attempts = self._t.attempts.get(task_id, [])
        updated = [
            dataclasses.replace(a, ended_at=self._now, outcome=outcome, error=error)
            if a.attempt == attempt
            else a
            for a in attempts
        ]
        self._set(self._t.attempts, task_id, updated)

    def task_attempts(self, task_id: TaskId) -> list[AttemptRecord]:
        return list(self._t.attempts.get(task_id, []))

    def write_progress(
        self, task_id: TaskId, attempt: int, progress: Mapping[str | None, tuple[int, int]]
    ) -> bool:
        task = self._t.tasks.get(task_id)
        if task is None or task.attempt != attempt:
            return False
        if progress:
            self._set(self._t.progress, (task_id, attempt), dict(progress))
        return True

    def job_progress(self, job_id: JobId) -> list[ProgressIndicator]:
        totals: dict[str | None, list[int]] = {}
        for task_id in self._t.job_tasks.get(job_id, []):
            task = self._t.tasks[task_id]
            for label, (total, done) in self._t.progress.get((task_id, task.attempt), {}).items():
                entry = totals.setdefault(label, [0, 0])
                entry[0] += total
                entry[1] += done
        return sorted(
            (ProgressIndicator(label, t, d) for label, (t, d) in totals.items()),
            key=lambda p: (p.label is not None, p.label or ""),
        )

    def task_counts(self, job_id: JobId) -> dict[TaskState, int]:
        counts: dict[TaskState, int] = {}
        for task_id in self._t.job_tasks.get(job_id, []):
            state = self._t.tasks[task_id].state
            counts[state] = counts.get(state, 0) + 1
        return counts

    def job_stats(self, job_id: JobId) -> ExecutionStats:
        tasks = [self._t.tasks[i] for i in self._t.job_tasks.get(job_id, [])]
        attempts = [a for t in tasks for a in self._t.attempts.get(t.id, [])]
        starts = [a.started_at for a in attempts]
        stops = [a.ended_at for a in attempts if a.ended_at is not None]
        compute = sum(((a.ended_at or self._now) - a.started_at for a in attempts), dt.timedelta())
        first = min(starts) if starts else None
        last = max(stops) if stops else None
        end = self._now if any(a.ended_at is None for a in attempts) else last
        elapsed = (end - first) if first is not None and end is not None else dt.timedelta()
        parallelism = compute / elapsed if elapsed.total_seconds() > 0 else 0.0
        return ExecutionStats(
            first_task_started_at=first,
            last_task_stopped_at=last,
            compute_time=compute,
            elapsed_time=elapsed,
            parallelism=parallelism,
            total_tasks=len(tasks),
            tasks_by_state=self.task_counts(job_id),
        )

    # -- runners -------------------------------------------------------------------------------
    def upsert_runner(self, runner: RunnerInfo) -> None:
        self._set(self._t.runners, runner.id, dataclasses.replace(runner, last_seen=self._now))

    def runner_heartbeat(
        self, runner_id: str, current_task: TaskId | None, computed: int, failed: int
    ) -> None:
        runner = self._t.runners.get(runner_id)
        if runner is None:
            return
        self._set(
            self._t.runners,
            runner_id,
            dataclasses.replace(
                runner,
                last_seen=self._now,
                current_task=current_task,
                tasks_computed=computed,
                tasks_failed=failed,
                state="online" if runner.state == "gone" else runner.state,
            ),
        )

    def set_runner_state(self, runner_id: str, state: str) -> None:
        runner = self._t.runners.get(runner_id)
        if runner is not None:
            self._set(self._t.runners, runner_id, dataclasses.replace(runner, state=state))

    def mark_silent_runners(self, silent_seconds: float) -> int:
        cutoff = self._now - dt.timedelta(seconds=silent_seconds)
        count = 0
        for runner in list(self._t.runners.values()):
            if runner.state == "online" and runner.last_seen < cutoff:
                self._set(self._t.runners, runner.id, dataclasses.replace(runner, state="gone"))
                count += 1
        return count

    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]:
        runners = [r for r in self._t.runners.values() if include_gone or r.state == "online"]
        return sorted(runners, key=lambda r: r.last_seen, reverse=True)

    # -- monitoring queries (read-only) ---------------------------------------------------------
    def count_jobs_by_state(self) -> dict[JobState, int]:
        counts: dict[JobState, int] = {}
        for job in self._t.jobs.values():
            counts[job.state] = counts.get(job.state, 0) + 1
        return counts

    def task_counts_by_job(self, job_ids: Sequence[JobId]) -> dict[JobId, dict[TaskState, int]]:
        return {job_id: self.task_counts(job_id) for job_id in job_ids}

    def queue_stats(self) -> list[QueueStats]:
        ready: dict[tuple[str, TaskIdentifier], int] = {}
        running: dict[tuple[str, TaskIdentifier], int] = {}
        for task_id in self._t.queued:
            task = self._t.tasks[task_id]
            if task.deps_open == 0 and self._t.jobs[task.job_id].state not in _INACTIVE:
                key = (task.cluster, task.identifier)
                ready[key] = ready.get(key, 0) + 1
        for task_id in self._t.running:
            task = self._t.tasks[task_id]
            key = (task.cluster, task.identifier)
            running[key] = running.get(key, 0) + 1
        return [
            QueueStats(
                cluster, ident, ready.get((cluster, ident), 0), running.get((cluster, ident), 0)
            )
            for cluster, ident in sorted(ready.keys() | running.keys())
        ]

    def recent_failures(self, limit: int) -> list[TaskFailure]:
        failed = [
            t
            for t in self._t.tasks.values()
            if t.state in (TaskState.FAILED, TaskState.FAILED_OPTIONAL)
        ]
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
        failed.sort(key=lambda t: (t.stopped_at or oldest, t.id), reverse=True)
        return [
            TaskFailure(
                task_id=t.id,
                job_id=t.job_id,
                job_name=self._t.jobs[t.job_id].name,
                cluster=t.cluster,
                identifier=t.identifier,
                state=t.state,
                display=t.display,
                runner_id=t.runner_id,
                stopped_at=t.stopped_at,
                error=t.error,
            )
            for t in failed[: max(limit, 0)]
        ]

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]:
        if query.limit <= 0:
            return []
        if query.roots:
            ids = [
                i
                for i in self._t.job_tasks.get(query.job_id, [])
                if self._t.tasks[i].parent_id is None
            ]
        elif query.parent_id is not None:
            ids = list(self._t.children.get(query.parent_id, []))
        else:
            ids = list(self._t.job_tasks.get(query.job_id, []))
        found: list[TaskRecord] = []
        for task_id in sorted(ids):
            if query.after is not None and task_id <= query.after:
                continue
            task = self._t.tasks[task_id]
            if task.job_id != query.job_id:
                continue
            if query.states and task.state not in query.states:
                continue
            if query.identifier is not None and task.identifier != query.identifier:
                continue
            copy = dataclasses.replace(task)
            if not query.include_input:
                copy.input = b""
            found.append(copy)
            if len(found) >= query.limit:
                break
        return found

    def children_summary(self, job_id: JobId, parent_id: TaskId | None) -> list[ChildGroup]:
        if parent_id is None:
            ids = [
                i for i in self._t.job_tasks.get(job_id, []) if self._t.tasks[i].parent_id is None
            ]
        else:
            ids = self._t.children.get(parent_id, [])
        counts: dict[tuple[TaskIdentifier, TaskState], int] = {}
        for task_id in ids:
            task = self._t.tasks[task_id]
            if task.job_id != job_id:
                continue
            key = (task.identifier, task.state)
            counts[key] = counts.get(key, 0) + 1
        return sorted(ChildGroup(ident, state, n) for (ident, state), n in counts.items())

    def child_counts(self, task_ids: Sequence[TaskId]) -> dict[TaskId, int]:
        return {task_id: len(self._t.children.get(task_id, [])) for task_id in task_ids}

    def _ended(self) -> Iterator[tuple[TaskRecord, AttemptRecord, dt.datetime]]:
        for task_id, attempts in self._t.attempts.items():
            for attempt in attempts:
                if attempt.ended_at is not None:
                    yield self._t.tasks[task_id], attempt, attempt.ended_at

    def attempts_per_minute(self, since: dt.datetime) -> list[AttemptBucket]:
        counts: dict[tuple[dt.datetime, str], int] = {}
        for _, attempt, ended in self._ended():
            if ended >= since:
                key = (ended.replace(second=0, microsecond=0), attempt.outcome)
                counts[key] = counts.get(key, 0) + 1
        return sorted(AttemptBucket(minute, outcome, n) for (minute, outcome), n in counts.items())

    def ended_attempts(self, since: dt.datetime, until: dt.datetime) -> list[EndedAttempt]:
        found = [
            EndedAttempt(
                task.identifier,
                attempt.outcome,
                max((ended - attempt.started_at).total_seconds(), 0.0),
                ended,
            )
            for task, attempt, ended in self._ended()
            if since <= ended < until
        ]
        return sorted(found, key=lambda e: e.ended_at)

    def task_counts_by_identifier(self) -> list[IdentifierStateCount]:
        counts: dict[tuple[TaskIdentifier, TaskState], int] = {}
        for task in self._t.tasks.values():
            key = (task.identifier, task.state)
            counts[key] = counts.get(key, 0) + 1
        return sorted(IdentifierStateCount(i, s, n) for (i, s), n in counts.items())
