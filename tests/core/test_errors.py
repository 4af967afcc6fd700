"""One error tree: every exception class conveyor defines derives from ConveyorError, and the
old homes of the moved classes still export them (callers import them from there)."""

from __future__ import annotations

import importlib
import pkgutil

import conveyor
from conveyor.core import errors

#: Raised and caught inside one adapter, never seen by a caller: the AMQP consumer's verdict on
#: a message it drops or dead-letters (conveyor.broker_amqp._codec).
INTERNAL = {"PoisonMessage"}


def conveyor_exception_classes() -> list[type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(conveyor.__path__, "conveyor."):
        if info.name.endswith("__main__") or ".migrations" in info.name:
            continue  # __main__ runs the CLI; alembic's env and versions run under alembic only
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__.startswith("conveyor")
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_every_conveyor_exception_is_a_conveyor_error() -> None:
    classes = conveyor_exception_classes()
    assert errors.AlreadyExistsError in classes and len(classes) > 10
    outside = [c.__qualname__ for c in classes if not issubclass(c, errors.ConveyorError)]
    outside = [name for name in outside if name not in INTERNAL]
    assert outside == []


def test_the_moved_classes_are_exported_from_their_old_modules() -> None:
    from conveyor.bootstrap import ConfigurationError
    from conveyor.config import SettingsError
    from conveyor.core.serialization import InputDecodeError

    assert ConfigurationError is errors.ConfigurationError
    assert SettingsError is errors.SettingsError
    assert InputDecodeError is errors.InputDecodeError


def test_bad_values_stay_value_errors() -> None:
    for cls in (
        errors.InvalidValueError,
        errors.InputDecodeError,
        errors.ConfigurationError,
        errors.SettingsError,
        errors.AlreadyExistsError,
        errors.NoCacheError,
    ):
        assert issubclass(cls, ValueError), cls
    assert issubclass(errors.SettingsError, errors.ConfigurationError)
    assert not issubclass(errors.InfrastructureError, ValueError)
