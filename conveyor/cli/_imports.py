"""Resolve task classes from import paths given on the command line."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Iterable

import click

from conveyor.core.task import Task, is_executable


def _ensure_cwd_importable() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _import_module(name: str, spec: str) -> object:
    _ensure_cwd_importable()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise click.BadParameter(
            f"cannot import {spec!r}: no module named {exc.name!r} (run from the folder that "
            "contains your package, or install it into this environment)"
        ) from None
    except Exception as exc:  # the user's module raised while importing
        raise click.BadParameter(
            f"importing {name!r} failed: {type(exc).__name__}: {exc}"
        ) from None


def _tasks_in(value: object, spec: str) -> list[type[Task]]:
    if inspect.isclass(value):
        if not issubclass(value, Task):
            raise click.BadParameter(f"{spec!r} is {value.__name__}, which is not a Task subclass")
        return [value]
    if isinstance(value, list | tuple):
        found: list[type[Task]] = []
        for item in value:
            found += _tasks_in(item, spec)
        return found
    if inspect.ismodule(value):
        listed = getattr(value, "TASKS", None)
        if listed is not None:
            return _tasks_in(listed, f"{spec}:TASKS")
        classes = [
            obj
            for obj in vars(value).values()
            if inspect.isclass(obj)
            and issubclass(obj, Task)
            and obj.__module__ == value.__name__
            and is_executable(obj)
        ]
        if not classes:
            raise click.BadParameter(f"module {spec!r} defines no executable Task classes")
        return sorted(classes, key=lambda c: c.__name__)
    raise click.BadParameter(f"{spec!r} is a {type(value).__name__}, not a Task class or list")


def load_tasks(specs: Iterable[str]) -> list[type[Task]]:
    """Task classes from ``pkg.mod:Class``, ``pkg.mod:LIST`` or ``pkg.mod`` (its ``TASKS``
    list, else every executable Task class it defines). The current directory is importable."""
    found: list[type[Task]] = []
    for spec in specs:
        module_name, _, attr = spec.partition(":")
        if not module_name:
            raise click.BadParameter(f"{spec!r}: expected 'package.module:Class'")
        module = _import_module(module_name, spec)
        value: object = module
        for part in filter(None, attr.split(".")):
            if not hasattr(value, part):
                raise click.BadParameter(f"{module_name!r} has no attribute {attr!r} ({spec!r})")
            value = getattr(value, part)
        for cls in _tasks_in(value, spec):
            if cls not in found:
                found.append(cls)
    return found


def load_task(spec: str) -> type[Task]:
    """Exactly one task class from an import path."""
    tasks = load_tasks([spec])
    if len(tasks) != 1:
        names = ", ".join(t.__name__ for t in tasks)
        raise click.BadParameter(f"{spec!r} names {len(tasks)} task classes ({names}); name one")
    return tasks[0]
