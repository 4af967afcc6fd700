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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from conveyor.core.errors import SettingsError as SettingsError  # defined with the tree
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


@dataclass(init=False)
class Settings:
    """Every tunable, with its ``CONVEYOR_<NAME>`` environment variable.

    ``Settings(**values)``: each field not given as a keyword comes from its environment
    variable (case-insensitive; unknown ``CONVEYOR_*`` variables are ignored), else the default.
    Strings are converted and checked either way; :class:`SettingsError` names every bad value.
    ``dataclasses.replace(settings, lease=60)`` copies with changes (and checks them).
    """

    #: State store URL: ``postgresql://…``, ``sqlite:///path`` or ``memory://``.
    #: Empty: the embedded SQLite file in ``home``.
    database_url: str | None = None
    #: Dispatch URL: ``amqp://…`` (RabbitMQ), ``none://`` (runners poll the store) or
    #: ``memory://`` (in-process). Empty: ``none://``.
    broker_url: str | None = None
    #: Folder of the embedded database (``~`` is expanded on use). Empty: ``~/.conveyor``.
    home: Path = field(default_factory=default_home)
    #: Prefix of exchange and queue names, so installations can share a RabbitMQ vhost.
    amqp_namespace: str = "conveyor"
    #: RabbitMQ queue type for task queues. Empty: the broker adapter's default (quorum).
    amqp_queue_type: QueueType | None = None
    #: The broker's ``consumer_timeout`` in seconds (it cannot be read over AMQP).
    amqp_consumer_timeout: float = 1800.0
    #: Seconds a process waits for the database and the broker at start before giving up with a
    #: clear error.
    startup_timeout: float = 5.0
    #: Seconds a task lease lasts without extension.
    lease: float = 30.0
    #: Seconds a running task may finish after SIGTERM before it is handed back.
    grace_period: float = 20.0
    #: Lease expiries after which a task fails.
    crash_limit: int = 10
    #: Seconds between the expiry/outbox sweeps every runner runs (and idle safety claims).
    sweep_interval: float = 5.0
    #: Seconds between runner heartbeats.
    heartbeat_interval: float = 5.0
    #: Largest serialised task input accepted, in bytes.
    max_input_bytes: int = 1024 * 1024

    def __init__(
        self,
        *,
        database_url: str | None = _UNSET,
        broker_url: str | None = _UNSET,
        home: Path | str = _UNSET,
        amqp_namespace: str = _UNSET,
        amqp_queue_type: QueueType | None = _UNSET,
        amqp_consumer_timeout: float = _UNSET,
        startup_timeout: float = _UNSET,
        lease: float = _UNSET,
        grace_period: float = _UNSET,
        crash_limit: int = _UNSET,
        sweep_interval: float = _UNSET,
        heartbeat_interval: float = _UNSET,
        max_input_bytes: int = _UNSET,
    ) -> None:
        # The parameters by name, taken before any other local exists (one list, not three).
        given = dict(locals())
        del given["self"]
        environment = _environment(os.environ)
        errors: list[str] = []
        for setting in fields(self):
            value = given[setting.name]
            label = setting.name
            if value is _UNSET and setting.name in environment:
                label, value = environment[setting.name]
            if value is _UNSET:
                value = _default(setting.name)
            else:
                try:
                    value = _PARSERS[setting.name](value)
                except ValueError as exc:
                    errors.append(f"{label}: {exc}")
                    continue
                if value is _UNSET:  # a blank string: the default
                    value = _default(setting.name)
            setattr(self, setting.name, value)
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


def _default(name: str) -> Any:
    setting = Settings.__dataclass_fields__[name]
    if callable(setting.default_factory):
        return setting.default_factory()
    return setting.default


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


_PARSERS: dict[str, Callable[[object], Any]] = {
    "database_url": _url,
    "broker_url": _url,
    "home": _path,
    "amqp_namespace": _text,
    "amqp_queue_type": _queue_type,
    "amqp_consumer_timeout": _consumer_timeout,
    "startup_timeout": _at_least_zero(_number),
    "lease": _above_zero,
    "grace_period": _at_least_zero(_number),
    "crash_limit": _at_least_zero(_integer),
    "sweep_interval": _above_zero,
    "heartbeat_interval": _above_zero,
    "max_input_bytes": _at_least_zero(_integer),
}
