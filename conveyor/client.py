"""The public client (Tilebox's ``Client``): jobs, clusters and task runners.

``Client(database_url=…, broker_url=…)`` is the only thing user code constructs; everything else
hangs off it. A client is safe to share between threads, including from inside ``execute``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from conveyor.bootstrap import build_orchestrator, build_runner, build_runner_settings
from conveyor.caches import NoCache
from conveyor.config import Settings
from conveyor.core.context import new_task_spec
from conveyor.core.identifiers import DEFAULT_CLUSTER, JobId, validate_slug
from conveyor.core.model import INACTIVE_JOB_STATES, Cluster, Job, JobQuery, JobState, TaskRecord
from conveyor.core.ports import Broker, JobCache, Store
from conveyor.core.reads import ReadService
from conveyor.core.registry import Runner
from conveyor.core.runner import RunnerSettings, TaskRunner
from conveyor.core.task import Task
from conveyor.core.usecases import Policy


def job_id_of(job_or_id: Job | uuid.UUID | str) -> JobId:
    """Accept a Job, a UUID or its string form.

    Raises:
        ValueError: a string that is not a job id.
    """
    if isinstance(job_or_id, Job):
        return job_or_id.id
    if isinstance(job_or_id, uuid.UUID):
        return JobId(job_or_id)
    try:
        return JobId(uuid.UUID(str(job_or_id)))
    except ValueError:
        raise ValueError(f"Not a job id: {job_or_id!r} (expected a UUID)") from None


class Client:
    """Entry point: ``client.jobs()``, ``client.clusters()``, ``client.runner(...)``.

    Args:
        database_url: the state store: ``postgresql://…``, ``sqlite:///path`` or
            ``memory://``; default ``CONVEYOR_DATABASE_URL``, else the embedded SQLite file in
            ``CONVEYOR_HOME`` (``~/.conveyor``).
        broker_url: dispatch: ``amqp://…`` (RabbitMQ), ``none://`` (runners claim from the
            store) or ``memory://`` (in-process); default ``CONVEYOR_BROKER_URL``, else
            ``none://`` (``memory://`` with a ``memory://`` store).
        max_input_bytes: cap on one task's serialised input (default
            ``CONVEYOR_MAX_INPUT_BYTES``, 1 MiB).
        policy: state-rule tunables (crash limit, retry back-off, …).
        store, broker: custom adapters implementing ``conveyor.core.ports`` (instead of URLs).
        settings: every other tunable (``conveyor.config.Settings``); default from the
            environment.
    """

    def __init__(
        self,
        database_url: str | None = None,
        broker_url: str | None = None,
        *,
        max_input_bytes: int | None = None,
        policy: Policy | None = None,
        store: Store | None = None,
        broker: Broker | None = None,
        settings: Settings | None = None,
    ) -> None:
        if store is not None or broker is not None:
            self.settings = settings or Settings(database_url="memory://")
        else:
            urls: dict[str, Any] = {"database_url": database_url, "broker_url": broker_url}
            overrides = {k: v for k, v in urls.items() if v is not None}
            base = settings or Settings()
            self.settings = dataclasses.replace(base, **overrides) if overrides else base
        self.service = build_orchestrator(self.settings, store=store, broker=broker, policy=policy)
        self.max_input_bytes = (
            max_input_bytes if max_input_bytes is not None else self.settings.max_input_bytes
        )

    def jobs(self) -> JobClient:
        return JobClient(self)

    def clusters(self) -> ClusterClient:
        return ClusterClient(self)

    @functools.cached_property
    def reads(self) -> ReadService:
        """Read-only queries (the web UI, /metrics and the CLI's read commands use them);
        commands go through ``service``."""
        return ReadService(self.service.store)

    def runner(
        self,
        cluster: str | None = None,
        tasks: Sequence[type[Task]] | None = None,
        cache: JobCache | None = None,
        *,
        runner: Runner | None = None,
        lease: float | None = None,
        grace_period: float | None = None,
        timeout: float | None = None,
        settings: RunnerSettings | None = None,
    ) -> TaskRunner:
        """A task runner for ``cluster`` (default: ``default``) executing ``tasks``.

        Raises:
            ClusterNotFoundError: the cluster does not exist.
            ValueError: a task is registered twice or is not executable.
        """
        found = self.service.find_cluster(cluster or DEFAULT_CLUSTER)
        registry = runner if runner is not None else Runner(tasks or ())
        if runner is not None:
            for task in tasks or ():
                registry.register(task)
        if not registry.tasks_by_identifier:
            raise ValueError("A runner needs at least one task class to run (tasks=[...])")
        chosen_cache: Any = cache if cache is not None else registry.cache or NoCache()
        if settings is None:
            given = {"lease": lease, "grace_period": grace_period}
            overrides: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
            base = dataclasses.replace(self.settings, **overrides) if overrides else self.settings
            settings = build_runner_settings(
                base, default_timeout=timeout, max_input_bytes=self.max_input_bytes
            )
        return build_runner(self.service, found.slug, registry, chosen_cache, settings)

    def close(self) -> None:
        self.service.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JobClient:
    """Submit, inspect, retry and cancel jobs."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._service = client.service
        self._reads = client.reads

    def submit(
        self,
        job_name: str,
        root_task_or_tasks: Task | Sequence[Task],
        cluster: str | Sequence[str] | None = None,
        max_retries: int = 0,
        *,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a job of one or more root tasks.

        Args:
            cluster: a slug for every root, or one slug per root task (default ``default``).
            max_retries: retries of each root task after a failing execution.
            idempotency_key: submitting again with the same key returns the first job.

        Raises:
            ValueError: no tasks, a cluster list of the wrong length, or an input too large.
            ClusterNotFoundError: a cluster that does not exist.
        """
        tasks = (
            [root_task_or_tasks]
            if isinstance(root_task_or_tasks, Task)
            else list(root_task_or_tasks)
        )
        if not tasks:
            raise ValueError("At least one task must be submitted.")
        if cluster is None or isinstance(cluster, str):
            clusters = [cluster or DEFAULT_CLUSTER] * len(tasks)
        else:
            clusters = list(cluster)
            if len(clusters) != len(tasks):
                raise ValueError(
                    f"Got {len(clusters)} clusters for {len(tasks)} tasks: pass one cluster "
                    "slug, or exactly one per task"
                )
        specs = [
            new_task_spec(
                task,
                cluster=validate_slug(slug),
                max_retries=max_retries,
                max_input_bytes=self._client.max_input_bytes,
            )
            for task, slug in zip(tasks, clusters, strict=True)
        ]
        record = self._service.submit_job(job_name, specs, idempotency_key)
        return self._reads.find_job(record.id)

    def find(self, job_or_id: Job | uuid.UUID | str) -> Job:
        """The job's current state, progress and stats. Raises JobNotFoundError."""
        return self._reads.find_job(job_id_of(job_or_id))

    def retry(self, job_or_id: Job | uuid.UUID | str) -> int:
        """Requeue the FAILED tasks of a failed or canceled job; how many."""
        return self._service.retry_job(job_id_of(job_or_id))

    def cancel(self, job_or_id: Job | uuid.UUID | str) -> None:
        """Stop dispatching the job's queued tasks; running ones finish."""
        self._service.cancel_job(job_id_of(job_or_id))

    def delete(self, job_or_id: Job | uuid.UUID | str) -> bool:
        """Delete a job and everything recorded about it."""
        return self._service.delete_job(job_id_of(job_or_id))

    def query(
        self,
        job_states: JobState | Sequence[JobState] | None = None,
        name: str | None = None,
        cluster: str | None = None,
        limit: int = 100,
    ) -> list[Job]:
        """Jobs newest first, filtered by state(s), name substring and cluster."""
        states: tuple[JobState, ...]
        if job_states is None:
            states = ()
        elif isinstance(job_states, JobState):
            states = (job_states,)
        else:
            states = tuple(job_states)
        records = self._reads.query_jobs(
            JobQuery(states=states, name=name, cluster=cluster, limit=limit)
        )
        return [self._reads.find_job(r.id) for r in records]

    def tasks(self, job_or_id: Job | uuid.UUID | str) -> Iterator[TaskRecord]:
        """Every task of the job, paged lazily."""
        return self._reads.iter_tasks(job_id_of(job_or_id))

    def wait(
        self, job_or_id: Job | uuid.UUID | str, timeout: float | None = None, poll: float = 0.2
    ) -> Job:
        """Block until the job is COMPLETED, FAILED or CANCELED.

        Raises:
            TimeoutError: still running after ``timeout`` seconds.
        """
        job_id = job_id_of(job_or_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self._reads.find_job(job_id)
            if job.state in INACTIVE_JOB_STATES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Job {job_id} is still {job.state} after {timeout}s")
            time.sleep(poll)


class ClusterClient:
    """Create, find, list and delete clusters."""

    def __init__(self, client: Client) -> None:
        self._service = client.service
        self._reads = client.reads

    def create(self, name: str, slug: str | None = None) -> Cluster:
        return self._service.create_cluster(name, slug)

    def find(self, slug: str) -> Cluster:
        return self._service.find_cluster(slug)

    def all(self) -> list[Cluster]:
        return self._reads.all_clusters()

    def delete(self, cluster_or_slug: Cluster | str) -> None:
        slug = cluster_or_slug.slug if isinstance(cluster_or_slug, Cluster) else cluster_or_slug
        self._service.delete_cluster(slug)
