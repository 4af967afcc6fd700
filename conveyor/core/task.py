"""The ``Task`` base class users subclass, with Tilebox's class-definition checks.

Every subclass is turned into a dataclass automatically (fields are class annotations, the
constructor follows field order), and its identifier and ``execute`` signature are checked when
the class is defined, so a mistake surfaces at import time instead of on a runner hours later.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any, ClassVar, dataclass_transform

from conveyor.core.identifiers import TaskIdentifier, parse_version, validate_name

if TYPE_CHECKING:
    from conveyor.core.context import ExecutionContext


@dataclass_transform()
class _Taskify(type):
    """Metaclass: applies ``@dataclass`` and validates identifier and ``execute``."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _Taskify:
        cls = super().__new__(mcs, name, bases, namespace, **kwargs)
        if not bases:  # the Task base itself
            return cls
        if "__dataclass_fields__" not in namespace:
            cls = dataclasses.dataclass(cls)  # type: ignore[assignment,arg-type]
        ident = _identifier_of(cls)
        cls._conveyor_identifier = ident  # type: ignore[attr-defined]
        cls._conveyor_executable = _validate_execute(cls)  # type: ignore[attr-defined]
        return cls


def _identifier_of(cls: type) -> TaskIdentifier:
    if getattr(cls, "identifier", None) is None:
        return TaskIdentifier(cls.__name__, "v0.0")
    try:
        result = cls.identifier()  # type: ignore[attr-defined]
    except TypeError as exc:
        raise TypeError(
            f"Failed to invoke {cls.__name__}.identifier(): it must be a staticmethod or "
            f"classmethod taking no arguments ({exc})"
        ) from None
    if (
        not isinstance(result, tuple)
        or len(result) != 2
        or not all(isinstance(part, str) for part in result)
    ):
        raise TypeError(
            f"Expected {cls.__name__}.identifier() to return a tuple of two strings "
            f"(name, 'vMAJOR.MINOR'), got {result!r}"
        )
    task_name, version = result
    try:
        validate_name(task_name)
        parse_version(version)
    except ValueError as exc:
        raise TypeError(f"Invalid identifier of task class {cls.__name__}: {exc}") from None
    return TaskIdentifier(task_name, version)


def _validate_execute(cls: type) -> bool:
    execute = getattr(cls, "execute", None)
    if execute is None or execute is Task.__dict__.get("execute"):
        return False
    if getattr(execute, "__override__", False):
        return True
    try:
        params = list(inspect.signature(execute).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) != 2 or len(positional) != 2:
        raise TypeError(
            f"Expected a function signature of 'def execute(self, context)' on task class "
            f"{cls.__name__}, got 'execute{inspect.signature(execute)}'"
        )
    return True


class Task(metaclass=_Taskify):
    """Base class of every task: subclass it and declare input fields as annotations.

    Example::

        class Greet(Task):
            name: str

            def execute(self, context: ExecutionContext) -> None:
                context.current_task.display = f"Hello {self.name}"

    The identifier defaults to ``(ClassName, "v0.0")``; define a staticmethod
    ``identifier() -> tuple[str, str]`` returning ``(name, "vMAJOR.MINOR")`` to version a task.

    Optional class attributes:
        task_timeout: seconds after which an execution counts as failed (retries apply).
    """

    #: Seconds after which one execution of this task counts as failed; ``None``: no timeout.
    task_timeout: ClassVar[float | None] = None

    def execute(self, context: ExecutionContext) -> None:
        """Run the task. May be ``async def``. Raise to fail the attempt."""
        raise NotImplementedError


def task_identifier(task: Task | type[Task]) -> TaskIdentifier:
    """The validated identifier of a task class or instance."""
    cls = task if isinstance(task, type) else type(task)
    ident: TaskIdentifier = cls._conveyor_identifier  # type: ignore[attr-defined]
    return ident


def is_executable(cls: type[Task]) -> bool:
    """Whether the class defines ``execute`` (a class without it is a base, not runnable)."""
    return bool(getattr(cls, "_conveyor_executable", False))
