"""Settings from flags and ``CONVEYOR_*`` environment variables (the edge only).

Read once by an entry point (CLI, ``Client``) and handed to :mod:`conveyor.bootstrap`; the core
only ever sees plain values. With no URL configured conveyor runs *embedded*: a SQLite file in
``CONVEYOR_HOME`` (default ``~/.conveyor``, shared by every terminal of the user) and runners
that claim tasks straight from it, so nothing has to be installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path.home() / ".conveyor"


class Settings(BaseSettings):
    """Every tunable, with its ``CONVEYOR_<NAME>`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    #: State store URL: ``postgresql://…``, ``sqlite:///path`` or ``memory://``.
    #: Empty: the embedded SQLite file in ``home``.
    database_url: str | None = None
    #: Dispatch URL: ``amqp://…`` (RabbitMQ), ``none://`` (runners poll the store) or
    #: ``memory://`` (in-process). Empty: ``none://``.
    broker_url: str | None = None
    #: Folder of the embedded database.
    home: Path = Field(default_factory=default_home)
    #: Prefix of exchange and queue names, so installations can share a RabbitMQ vhost.
    amqp_namespace: str = "conveyor"
    #: RabbitMQ queue type for task queues.
    amqp_queue_type: Literal["classic", "quorum"] | None = None
    #: The broker's ``consumer_timeout`` in seconds (it cannot be read over AMQP).
    amqp_consumer_timeout: float = 1800.0
    #: Seconds a process waits for the database at start before giving up with a clear error.
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

    @field_validator("database_url", "broker_url", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

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
