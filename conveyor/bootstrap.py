"""The composition root: builds adapters from URLs and wires the orchestrator.

The only module that knows every adapter. Adapters are imported lazily, so the in-memory mode
needs no SQL or AMQP driver, and a bad URL fails here, at start, with one clear message that
names it (password masked) instead of somewhere deep in a runner.
"""

from __future__ import annotations

from conveyor.config import Settings
from conveyor.core.errors import ConfigurationError as ConfigurationError  # the tree's
from conveyor.core.ports import Broker, Store
from conveyor.core.service import Orchestrator
from conveyor.core.usecases import Policy
from conveyor.urls import mask_url as mask_url  # re-exported: `conveyor ui` and `demo` use it
from conveyor.urls import redact

STORE_SCHEMES = ("postgresql", "sqlite", "memory")
BROKER_SCHEMES = ("amqp", "amqps", "none", "memory")


def _scheme(url: str, what: str, supported: tuple[str, ...]) -> str:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"Invalid {what} {mask_url(str(url))!r}: expected a URL such as "
            f"{supported[0]}://… (supported: {', '.join(s + '://' for s in supported)})"
        )
    scheme = url.split("://", 1)[0].lower().split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    if scheme not in supported:
        raise ConfigurationError(
            f"Unsupported {what} scheme {scheme!r} in {mask_url(url)!r}; "
            f"supported: {', '.join(s + '://' for s in supported)}"
        )
    return scheme


def build_store(url: str, startup_timeout: float | None = None) -> Store:
    """A store for ``memory://``, ``sqlite:///path`` or ``postgresql://…``.

    Raises:
        ConfigurationError: an unsupported or malformed URL.
        StoreUnavailableError: the database cannot be reached.
        SchemaOutdatedError: the database is behind the code (run ``conveyor db upgrade``).
    """
    scheme = _scheme(url, "database URL", STORE_SCHEMES)
    if scheme == "memory":
        from conveyor.memory.store import InMemoryStore

        return InMemoryStore()
    from conveyor.store_sql import SqlStore

    if scheme == "postgresql" and url.split("://", 1)[0].lower() == "postgres":
        url = "postgresql" + url[len("postgres") :]
    try:
        return SqlStore(url, startup_timeout=startup_timeout)
    except ValueError as exc:
        raise ConfigurationError(
            f"Invalid database URL {mask_url(url)!r}: {redact(str(exc), url)}"
        ) from None


def build_broker(url: str, settings: Settings | None = None) -> Broker:
    """A broker for ``amqp(s)://…``, ``none://`` (poll the store) or ``memory://``."""
    scheme = _scheme(url, "broker URL", BROKER_SCHEMES)
    if scheme == "none":
        from conveyor.core.polling import PollingDispatcher

        return PollingDispatcher()
    if scheme == "memory":
        from conveyor.memory.broker import InMemoryBroker

        return InMemoryBroker()
    from conveyor.broker_amqp import DEFAULT_QUEUE_TYPE, AmqpBroker

    settings = settings or Settings()
    return AmqpBroker(
        url,
        namespace=settings.amqp_namespace,
        queue_type=settings.amqp_queue_type or DEFAULT_QUEUE_TYPE,
        consumer_timeout=settings.amqp_consumer_timeout,
    )


def check_broker(url: str, timeout: float = 5.0) -> str:
    """Reach the broker once and describe it; a start-up check for long-running processes.

    Raises:
        ConfigurationError: an unsupported or malformed URL.
        BrokerUnavailableError: the broker cannot be reached (URL masked).
    """
    scheme = _scheme(url, "broker URL", BROKER_SCHEMES)
    if scheme == "none":
        return "none:// (no broker: runners claim tasks from the database)"
    if scheme == "memory":
        return "memory:// (in-process)"
    from conveyor.broker_amqp import server_version

    return f"{mask_url(url)} (RabbitMQ {server_version(url, timeout)})"


def build_orchestrator(settings: Settings) -> Orchestrator:
    """Build store and broker from the settings and wire them.

    ``memory://`` as the store implies an in-process broker unless one is named: a broker
    shared between processes cannot serve a store that is not.
    """
    db_url = settings.resolved_database_url()
    broker_url = settings.broker_url or ("memory://" if db_url == "memory://" else "none://")
    store = build_store(db_url, settings.startup_timeout)
    try:
        broker = build_broker(broker_url, settings)
    except BaseException:
        store.close()
        raise
    return Orchestrator(
        store,
        broker,
        Policy(crash_limit=settings.crash_limit),
        relay=_scheme(broker_url, "broker URL", BROKER_SCHEMES) in ("amqp", "amqps"),
    )
