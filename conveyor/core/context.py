"""What a task sees while it executes: ``ExecutionContext`` and its helpers (Tilebox's API).

Subtasks submitted here are only buffered: they come into existence when the runner records the
parent COMPUTED, atomically in that same transaction, so a failed attempt never leaves subtasks
behind and a retried task never duplicates them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier, validate_slug
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask
from conveyor.core.serialization import serialize_task
from conveyor.core.task import Task, task_identifier

if TYPE_CHECKING:
    from conveyor.core.ports import JobCache

#: Default cap on one task's serialised input (Tilebox caps at 2 KiB; we allow more).
DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
#: Tilebox's limits on progress indicators.
MAX_PROGRESS_INDICATORS = 1000
MAX_PROGRESS_LABEL = 100

#: Progress of one task: label -> (total, done).
Progress = dict[str | None, tuple[int, int]]


def encode_input(task: Task, max_bytes: int) -> bytes:
    """Serialise a task's input and enforce the size cap.

    Raises:
        ValueError: the input is larger than ``max_bytes`` or cannot be encoded as JSON.
    """
    try:
        data = serialize_task(task)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Cannot serialise the input of {type(task).__name__}: {exc}") from None
    if len(data) > max_bytes:
        raise ValueError(
            f"The input of {type(task).__name__} is {len(data):,} bytes, over the "
            f"{max_bytes:,}-byte limit: pass large data through the job cache or object storage"
        )
    return data


def new_task_spec(
    task: Task,
    *,
    cluster: str,
    max_retries: int = 0,
    optional: bool = False,
    depends_on: Sequence[TaskId] = (),
    timeout: float | None = None,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
) -> NewTask:
    """Validate a task instance and its options into a :class:`NewTask` ready to insert."""
    if not isinstance(task, Task):
        raise TypeError(f"Expected a Task instance, got {type(task).__name__}: {task!r}")
    validate_slug(cluster)
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    if timeout is None:
        timeout = type(task).task_timeout
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return NewTask(
        id=TaskId(uuid7()),
        cluster=cluster,
        identifier=task_identifier(task),
        input=encode_input(task, max_input_bytes),
        display=type(task).__name__,
        depends_on=tuple(depends_on),
        max_retries=max_retries,
        optional=optional,
        timeout=timeout,
    )


@dataclass(frozen=True, eq=False)
class FutureTask:
    """A subtask submitted in this execution; pass it to ``depends_on`` of later siblings."""

    index: int
    task: Task
    spec: NewTask
    _owner: object = field(repr=False, compare=False)

    @property
    def id(self) -> TaskId:
        return self.spec.id

    @property
    def identifier(self) -> TaskIdentifier:
        return self.spec.identifier

    def display(self) -> str:
        return self.spec.display


class ProgressUpdate:
    """A progress bar of one label: ``add(n)`` grows its total, ``done(n)`` advances it."""

    def __init__(self, label: str | None, lock: threading.Lock) -> None:
        self.label = label
        self._lock = lock
        self._total = 0
        self._done = 0

    def add(self, count: int) -> None:
        """Add ``count`` units of work to this indicator's total."""
        with self._lock:
            self._total += int(count)

    def done(self, count: int) -> None:
        """Mark ``count`` units of work done."""
        with self._lock:
            self._done += int(count)

    @property
    def total(self) -> int:
        return self._total

    @property
    def completed(self) -> int:
        return self._done


@dataclass(frozen=True)
class JobRef:
    """The job a task belongs to (``context.current_task.job``)."""

    id: JobId
    name: str


class CurrentTask:
    """The executing task's record; ``display`` may be changed and is shown in the UI/CLI."""

    def __init__(self, claimed: ClaimedTask) -> None:
        self.id = claimed.id
        self.identifier = claimed.identifier
        self.parent_id = claimed.parent_id
        self.depends_on = list(claimed.depends_on)
        self.retry_count = claimed.retry_count
        self.attempt = claimed.attempt
        self.job = JobRef(claimed.job_id, claimed.job_name)
        self.display: str = claimed.display


class ExecutionContext:
    """Handed to ``Task.execute``: submit subtasks, report progress, use the job cache, log."""

    def __init__(
        self,
        claimed: ClaimedTask,
        *,
        cache: JobCache,
        fallback_cluster: str,
        logger: logging.Logger | None = None,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        runner_context: Any = None,
    ) -> None:
        self.current_task = CurrentTask(claimed)
        self.job_cache: JobCache = cache
        self.runner_context = runner_context
        self._fallback_cluster = fallback_cluster
        self._max_input_bytes = max_input_bytes
        self._lock = threading.Lock()
        self._subtasks: list[FutureTask] = []
        self._progress: dict[str | None, ProgressUpdate] = {}
        base = logger or logging.getLogger("conveyor.task")
        self.logger = logging.LoggerAdapter(
            base,
            {
                "task_id": str(claimed.id),
                "job_id": str(claimed.job_id),
                "task": str(claimed.identifier),
            },
        )

    def submit_subtask(
        self,
        task: Task,
        depends_on: FutureTask | Sequence[FutureTask] | None = None,
        cluster: str | None = None,
        max_retries: int = 0,
        optional: bool = False,
        timeout: float | None = None,
    ) -> FutureTask:
        """Buffer a subtask; it is created when this task is recorded COMPUTED.

        Args:
            depends_on: sibling subtasks submitted earlier in this same execution; this one
                starts only once each of them completed with its whole subtree.
            cluster: the cluster to run on; defaults to the executing runner's cluster.
            max_retries: how often a failing execution is retried (N+1 executions at most).
            optional: a failure of this subtask (or below it) does not fail the job.
            timeout: seconds after which an execution counts as failed.

        Raises:
            ValueError: a dependency that is not an earlier sibling, an input over the size
                limit or an invalid cluster slug.
            TypeError: ``task`` is not a Task, or a dependency is not a FutureTask.
        """
        deps = list(dict.fromkeys(_as_list(depends_on)))  # naming a sibling twice counts once
        with self._lock:
            for dep in deps:
                if not isinstance(dep, FutureTask):
                    raise TypeError(
                        f"Invalid dependency {dep!r}: expected a FutureTask returned by "
                        "submit_subtask in this execution"
                    )
                if (
                    dep._owner is not self
                    or dep.index >= len(self._subtasks)
                    or self._subtasks[dep.index] is not dep
                ):
                    raise ValueError(
                        f"Dependent task {dep.index} does not exist: depends_on may only name "
                        "subtasks submitted earlier in this same execution (siblings)"
                    )
            spec = new_task_spec(
                task,
                cluster=cluster or self._fallback_cluster,
                max_retries=max_retries,
                optional=optional,
                depends_on=[d.id for d in deps],
                timeout=timeout,
                max_input_bytes=self._max_input_bytes,
            )
            future = FutureTask(len(self._subtasks), task, spec, self)
            self._subtasks.append(future)
            return future

    def submit_subtasks(
        self,
        tasks: Sequence[Task],
        depends_on: FutureTask | Sequence[FutureTask] | None = None,
        cluster: str | None = None,
        max_retries: int = 0,
        optional: bool = False,
        timeout: float | None = None,
    ) -> list[FutureTask]:
        """``submit_subtask`` for each task, with the same options."""
        return [
            self.submit_subtask(t, depends_on, cluster, max_retries, optional, timeout)
            for t in tasks
        ]

    def progress(self, label: str | None = None) -> ProgressUpdate:
        """The progress indicator for ``label`` (the same object for the same label)."""
        label = label or None
        if label is not None and len(label) > MAX_PROGRESS_LABEL:
            raise ValueError(f"Progress label too long: at most {MAX_PROGRESS_LABEL} characters")
        with self._lock:
            if label not in self._progress:
                if len(self._progress) >= MAX_PROGRESS_INDICATORS:
                    raise ValueError(
                        f"At most {MAX_PROGRESS_INDICATORS} progress indicators per task"
                    )
                self._progress[label] = ProgressUpdate(label, self._lock)
            return self._progress[label]

    # -- runner-facing: read by the task runner, not meant for task code -----------------------
    def progress_snapshot(self) -> Progress:
        """Every indicator's (total, done) now; the runner writes it live and with the result."""
        with self._lock:
            return {label: (p._total, p._done) for label, p in self._progress.items()}

    def outcome(self, *, with_subtasks: bool = True) -> TaskOutcome:
        """What the runner records once ``execute`` returned (subtasks only for a success)."""
        with self._lock:
            subtasks = [f.spec for f in self._subtasks] if with_subtasks else []
            progress = {label: (p._total, p._done) for label, p in self._progress.items()}
        return TaskOutcome(self.current_task.display, progress, subtasks)


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """A snapshot of what an execution leaves for the runner to record."""

    display: str
    progress: Progress
    subtasks: list[NewTask]


def _as_list(
    depends_on: FutureTask | Sequence[FutureTask] | None,
) -> list[FutureTask]:
    if depends_on is None:
        return []
    if isinstance(depends_on, FutureTask):
        return [depends_on]
    if isinstance(depends_on, list | tuple):
        return list(depends_on)
    raise TypeError(f"Invalid dependency {depends_on!r}: expected a FutureTask or a list of them")
