"""Settings from flags and ``CONVEYOR_*`` environment variables (the edge only).

Read once by an entry point (CLI, ``Client``) and handed to :mod:`conveyor.bootstrap`; the core
only ever sees plain values. With no URL configured conveyor runs *embedded*: a SQLite file in
``CONVEYOR_HOME`` (default ``~/.conveyor``, shared by every terminal of the user) and runners
that claim tasks straight from it, so nothing has to be installed.

This is a dataclass with explicit parsing rather than ``pydantic-settings``: every runner
process imports it, and pydantic + pydantic-settings cost ~11 MiB of RSS and ~70 ms of start-up
per process for a dozen scalar fields (only the web UI needs pydantic). It accepts what
pydantic accepted (numbers as strings, ``1_000``, surrounding spaces) minus clear nonsense
(negative or non-finite durations and counts, a zero lease or interval), and a blank URL, home or
queue type means the default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from conveyor.core.errors import SettingsError as SettingsError  # defined with the tree
from conveyor.core.runner.settings import RunnerSettings
from conveyor.core.usecases import Policy
from conveyor.urls import mask_url

#: Prefix of every setting's environment variable (matched case-insensitively).
ENV_PREFIX = "CONVEYOR_"

QueueType = Literal["classic", "quorum"]
QUEUE_TYPES: tuple[str, ...] = get_args(QueueType)

#: Marks a keyword argument that was not given, so the environment (then the default) applies;
#: ``None`` cannot serve, it is a valid value for the URLs.
_UNSET: Any = object()

_Number = TypeVar("_Number", int, float)


def default_home() -> Path:
    return Path.home() / ".conveyor"


# Parsers take a keyword argument or an environment string and return the field's value, or
# _UNSET for "use the default"; a ValueError's message completes "<variable>: ".


def _url(value: object) -> str | None:
    """A URL as given; blank means not configured (as an exported but empty variable)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected a URL string, got {value!r}")
    return value if value.strip() else None


def _path(value: object) -> Any:
    if isinstance(value, str) and not value.strip():
        return _UNSET
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"expected a folder path, got {value!r}")
    return Path(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _queue_type(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if value not in QUEUE_TYPES:
        raise ValueError(f"expected {' or '.join(map(repr, QUEUE_TYPES))}, got {value!r}")
    return str(value)


def _number(value: object) -> float:
    """A finite float from a number or a string like pydantic's (``' 5 '``, ``1e3``, ``1_000``)."""
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    else:
        raise ValueError(f"expected a number, got {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def _integer(value: object) -> int:
    """An int from an int, a whole float or a string of either (``'10'``, ``'10.0'``)."""
    if isinstance(value, int):
        return int(value)  # True -> 1
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    try:
        number = _number(value)
    except ValueError:
        raise ValueError(f"expected a whole number, got {value!r}") from None
    if not number.is_integer():
        raise ValueError(f"expected a whole number, got {value!r}")
    return int(number)


def _at_least_zero(parse: Callable[[object], _Number]) -> Callable[[object], _Number]:
    """For timeouts, the grace period and counts: negative ones are a mistake, not a choice."""

    def parse_non_negative(value: object) -> _Number:
        number = parse(value)
        if number < 0:
            raise ValueError(f"must be 0 or more, got {value!r}")
        return number

    return parse_non_negative


def _above_zero(value: object) -> float:
    """For a lease or an interval: zero would make a runner spin."""
    number = _number(value)
    if number <= 0:
        raise ValueError(f"must be more than 0, got {value!r}")
    return number


def _consumer_timeout(value: object) -> float:
    """RabbitMQ's ``consumer_timeout`` is given in milliseconds in rabbitmq.conf, this one in
    seconds; below a second the consumer cannot serve it (``broker_amqp.ack_deadlines``)."""
    number = _number(value)
    if not number >= 1:
        raise ValueError(
            f"must be at least 1 (seconds), got {value!r}; "
            "rabbitmq.conf's consumer_timeout = 20000 (ms) is 20 here"
        )
    return number


def _at_least_one(value: object) -> float:
    """For a multiplier: below 1 a back-off would shrink with each retry."""
    number = _number(value)
    if number < 1:
        raise ValueError(f"must be 1 or more, got {value!r}")
    return number


def _default(declared: Field[Any]) -> Any:
    default = declared.metadata["default"]
    return default() if callable(default) else default


def setting(default: Any, parse: Callable[[object], Any], doc: str) -> Any:
    """Declare a setting once: its default, its parser and what it means.

    The field's default is ``_UNSET``, so the generated ``__init__`` can tell "not given" (the
    environment, then ``default``, applies) from any value; ``default`` may be a callable for a
    per-instance default. A parser takes a keyword argument or an environment string and returns
    the value, or ``_UNSET`` for "use the default"; its ValueError's message completes
    ``"<variable>: "``.
    """
    return field(default=_UNSET, metadata={"default": default, "parse": parse, "doc": doc})


# The defaults the core owns are read from its own dataclasses (one definition each).
_RUNNER = RunnerSettings()
_POLICY = Policy()


@dataclass(kw_only=True)
class Settings:
    """Every tunable, with its ``CONVEYOR_<NAME>`` environment variable.

    ``Settings(**values)``: each field not given as a keyword comes from its environment
    variable (case-insensitive; unknown ``CONVEYOR_*`` variables are ignored), else the default.
    Strings are converted and checked either way; :class:`SettingsError` names every bad value.
    ``dataclasses.replace(settings, lease=60)`` copies with changes (and checks them). Each
    field is declared once, with :func:`setting`; README's settings table has a row for each
    (tests/test_config.py checks).
    """

    database_url: str | None = setting(
        None,
        _url,
        "State store URL: postgresql://…, sqlite:///path or memory://. "
        "Empty: the embedded SQLite file in home.",
    )
    broker_url: str | None = setting(
        None,
        _url,
        "Dispatch URL: amqp://… (RabbitMQ), none:// (runners poll the store) or memory:// "
        "(in-process). Empty: none://.",
    )
    # RUF009: setting() returns a dataclasses.Field (of _UNSET), not a shared mutable default.
    home: Path = setting(  # noqa: RUF009
        default_home,
        _path,
        "Folder of the embedded database (~ is expanded on use). Empty: ~/.conveyor.",
    )
    amqp_namespace: str = setting(
        "conveyor", _text, "Prefix of exchange and queue names, so installations share a vhost."
    )
    amqp_queue_type: QueueType | None = setting(  # noqa: RUF009
        None,
        _queue_type,
        "RabbitMQ queue type for task queues. Empty: the broker adapter's default (quorum).",
    )
    amqp_consumer_timeout: float = setting(
        1800.0,
        _consumer_timeout,
        "The broker's consumer_timeout in seconds (it cannot be read over AMQP).",
    )
    startup_timeout: float = setting(
        5.0,
        _at_least_zero(_number),
        "Seconds a process waits for the database and the broker at start before giving up.",
    )
    lease: float = setting(_RUNNER.lease, _above_zero, "Seconds a task lease lasts unextended.")
    grace_period: float = setting(
        _RUNNER.grace_period,
        _at_least_zero(_number),
        "Seconds a running task may finish after SIGTERM before it is handed back.",
    )
    crash_limit: int = setting(
        _POLICY.crash_limit, _at_least_zero(_integer), "Lease expiries after which a task fails."
    )
    retry_backoff: float = setting(
        _POLICY.retry_backoff,
        _at_least_zero(_number),
        "Seconds before the first retry of a failed task may run (0: at once).",
    )
    retry_backoff_factor: float = setting(
        _POLICY.retry_backoff_factor,
        _at_least_one,
        "Multiplier of the retry back-off per further retry.",
    )
    retry_backoff_max: float = setting(
        _POLICY.retry_backoff_max,
        _at_least_zero(_number),
        "Longest retry back-off in seconds.",
    )
    sweep_interval: float = setting(
        _RUNNER.sweep_interval,
        _above_zero,
        "Seconds between the expiry/outbox sweeps every runner runs (and idle safety claims).",
    )
    heartbeat_interval: float = setting(
        _RUNNER.heartbeat_interval, _above_zero, "Seconds between runner heartbeats."
    )
    max_input_bytes: int = setting(
        _RUNNER.max_input_bytes,
        _at_least_zero(_integer),
        "Largest serialised task input accepted, in bytes.",
    )

    def __post_init__(self) -> None:
        """Resolve every field: the keyword given, else its variable, else its default."""
        environment = _environment(os.environ)
        errors: list[str] = []
        for declared in fields(self):
            name = declared.name
            value, label = getattr(self, name), name
            if value is _UNSET and name in environment:
                label, value = environment[name]
            if value is not _UNSET:
                try:
                    value = declared.metadata["parse"](value)
                except ValueError as exc:
                    errors.append(f"{label}: {exc}")
                    continue
            if value is _UNSET:  # not given, or a blank string: the default
                value = _default(declared)
            setattr(self, name, value)
        if errors:
            raise SettingsError("; ".join(errors))

    def __repr__(self) -> str:
        """Like the dataclass's own, with the URLs' passwords masked: settings get logged."""
        values = []
        for setting in fields(self):
            value = getattr(self, setting.name)
            if setting.name.endswith("_url") and isinstance(value, str):
                value = mask_url(value)
            values.append(f"{setting.name}={value!r}")
        return f"{type(self).__name__}({', '.join(values)})"

    @property
    def embedded_database_path(self) -> Path:
        return self.home.expanduser() / "conveyor.db"

    def resolved_database_url(self) -> str:
        """The configured store URL, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.embedded_database_path}"

    def resolved_broker_url(self) -> str:
        """The configured broker URL, or polling (no broker)."""
        return self.broker_url or "none://"

    @property
    def embedded(self) -> bool:
        return not self.database_url


def _environment(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Field name -> (variable as spelled, value) for every ``CONVEYOR_*`` variable of a field.

    Names match case-insensitively as with pydantic-settings; when two spellings of one name are
    set, the upper-case one wins (pydantic-settings took whichever came last).
    """
    names = {setting.name for setting in fields(Settings)}
    found: dict[str, tuple[str, str]] = {}
    for variable, value in environ.items():
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX):
            continue
        name = upper[len(ENV_PREFIX) :].lower()
        if name in names and (name not in found or variable == upper):
            found[name] = (variable, value)
    return found
