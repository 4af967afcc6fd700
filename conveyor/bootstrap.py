"""The composition root: builds adapters from URLs and wires the orchestrator.

The only module that knows every adapter. Adapters are imported lazily, so a user of the
in-memory mode never needs SQL or AMQP drivers installed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from conveyor.core.ports import Broker, Store
from conveyor.core.service import Orchestrator
from conveyor.core.usecases import Policy

#: Environment variables read when a URL is not passed explicitly.
DATABASE_URL_ENV = "CONVEYOR_DATABASE_URL"
BROKER_URL_ENV = "CONVEYOR_BROKER_URL"

STORE_SCHEMES = ("memory",)
BROKER_SCHEMES = ("memory", "none")


class ConfigurationError(ValueError):
    """A URL or setting that cannot work; the message says what and how to fix it."""


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and error messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    host = netloc[1] if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _scheme(url: str, what: str, supported: tuple[str, ...]) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"Invalid {what} {mask_url(str(url))!r}: expected a URL like "
            f"{supported[0]}://… (supported schemes: {', '.join(supported)})"
        )
    scheme = url.split("://", 1)[0].lower().split("+", 1)[0]
    if scheme not in supported:
        raise ConfigurationError(
            f"Unsupported {what} scheme {scheme!r} in {mask_url(url)!r}; "
            f"supported: {', '.join(s + '://' for s in supported)}"
        )
    return scheme


@dataclass(frozen=True)
class Urls:
    database_url: str
    broker_url: str


def resolve_urls(database_url: str | None, broker_url: str | None) -> Urls:
    """Explicit arguments win, then ``CONVEYOR_*`` environment variables, then the defaults."""
    db = database_url or os.environ.get(DATABASE_URL_ENV) or "memory://"
    broker = broker_url or os.environ.get(BROKER_URL_ENV) or "memory://"
    return Urls(db, broker)


def build_store(url: str) -> Store:
    _scheme(url, "database URL", STORE_SCHEMES)
    from conveyor.memory.store import InMemoryStore

    return InMemoryStore()


def build_broker(url: str) -> Broker:
    scheme = _scheme(url, "broker URL", BROKER_SCHEMES)
    if scheme == "none":
        from conveyor.core.polling import PollingDispatcher

        return PollingDispatcher()
    from conveyor.memory.broker import InMemoryBroker

    return InMemoryBroker()


def build_orchestrator(
    database_url: str | None = None,
    broker_url: str | None = None,
    policy: Policy | None = None,
) -> Orchestrator:
    """Build store and broker from URLs (or the environment) and wire them."""
    urls = resolve_urls(database_url, broker_url)
    store = build_store(urls.database_url)
    broker = build_broker(urls.broker_url)
    return Orchestrator(store, broker, policy)
