"""Tilebox's ``Runner``: the registry of task classes a runner can execute.

It resolves a submitted identifier to the registered class with the highest compatible minor of
the same major, and tells the broker which queues to consume (every minor up to the highest one
registered per name and major).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import RegisteredIdentifier
from conveyor.core.task import Task, is_executable, task_identifier


class Runner:
    """A reusable set of task classes (and an optional cache) to start task runners with."""

    def __init__(self, tasks: Iterable[type[Task]] | None = None, cache: object = None) -> None:
        self.cache = cache
        self.tasks_by_identifier: dict[TaskIdentifier, type[Task]] = {}
        for task in tasks or ():
            self.register(task)

    def register(self, task: type[Task]) -> None:
        """Add a task class.

        Raises:
            ValueError: not executable (no ``execute``), or the same name and version twice.
            TypeError: not a Task subclass.
        """
        if not isinstance(task, type) or not issubclass(task, Task):
            raise TypeError(f"Expected a Task subclass, got {task!r}")
        if not is_executable(task):
            raise ValueError(
                f"Task {task.__name__} is not executable: it defines no execute(self, context)"
            )
        ident = task_identifier(task)
        if ident in self.tasks_by_identifier:
            raise ValueError(
                f"Duplicate task identifier: A task '{ident.name}' with version "
                f"'{ident.version}' is already registered."
            )
        self.tasks_by_identifier[ident] = task

    @property
    def task_identifiers(self) -> list[TaskIdentifier]:
        return sorted(self.tasks_by_identifier)

    def resolve(self, submitted: TaskIdentifier) -> type[Task] | None:
        """The registered class to run ``submitted`` with: same name and major, the highest
        registered minor that is ≥ the submitted minor; None if there is none."""
        best: tuple[int, type[Task]] | None = None
        for ident, cls in self.tasks_by_identifier.items():
            if ident.can_run(submitted) and (best is None or ident.minor > best[0]):
                best = (ident.minor, cls)
        return best[1] if best is not None else None

    def registered(self) -> list[RegisteredIdentifier]:
        """One entry per (name, major) with the highest registered minor."""
        return registered_from(list(self.tasks_by_identifier))


def registered_from(identifiers: Sequence[TaskIdentifier]) -> list[RegisteredIdentifier]:
    """The consume set for a list of identifiers (highest minor per name and major)."""
    highest: dict[tuple[str, int], int] = {}
    for ident in identifiers:
        key = (ident.name, ident.major)
        highest[key] = max(highest.get(key, -1), ident.minor)
    return [RegisteredIdentifier(n, major, minor) for (n, major), minor in sorted(highest.items())]
