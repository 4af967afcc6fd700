"""The composition root: builds adapters from URLs and wires the orchestrator and runners.

The only module that knows every adapter. Adapters are imported lazily, so the in-memory mode
needs no SQL or AMQP driver, and a bad URL fails here, at start, with one clear message that
names it (password masked) instead of somewhere deep in a runner.

It is also the one place where settings become the core's tunables: :func:`build_policy` (the
state rules) and :func:`build_runner_settings` (a runner's), and where process concerns are
wired in: a runner's signal handling (:mod:`conveyor.process`) and the flush of the outbox
relays at interpreter exit. As in cosmicpython's ``bootstrap``, every dependency is a parameter
with the production default, so tests and embedders swap any of them.
"""

from __future__ import annotations

import atexit
import weakref

from conveyor.config import Settings
from conveyor.core.errors import ConfigurationError as ConfigurationError  # the tree's
from conveyor.core.ports import Broker, JobCache, Store
from conveyor.core.registry import Runner
from conveyor.core.relay import OutboxRelay
from conveyor.core.runner import ConsumerFactory, RunnerSettings, SignalScope, TaskRunner
from conveyor.core.service import Orchestrator
from conveyor.core.usecases import Policy
from conveyor.process import runner_signals
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


def build_policy(settings: Settings) -> Policy:
    """The state rules' tunables from the settings (``publish`` is the broker's to decide:
    the orchestrator sets it from ``Broker.requires_publish``)."""
    return Policy(
        crash_limit=settings.crash_limit,
        retry_backoff=settings.retry_backoff,
        retry_backoff_factor=settings.retry_backoff_factor,
        retry_backoff_max=settings.retry_backoff_max,
    )


def build_runner_settings(
    settings: Settings,
    *,
    default_timeout: float | None = None,
    max_input_bytes: int | None = None,
) -> RunnerSettings:
    """A runner's tunables from the settings; what only a flag or an argument sets (the
    default task timeout, a client's own input cap) is passed in."""
    return RunnerSettings(
        lease=settings.lease,
        grace_period=settings.grace_period,
        default_timeout=default_timeout,
        sweep_interval=settings.sweep_interval,
        heartbeat_interval=settings.heartbeat_interval,
        max_input_bytes=(
            max_input_bytes if max_input_bytes is not None else settings.max_input_bytes
        ),
    )


def build_orchestrator(
    settings: Settings,
    *,
    store: Store | None = None,
    broker: Broker | None = None,
    policy: Policy | None = None,
) -> Orchestrator:
    """Build store and broker from the settings (unless given) and wire them.

    ``memory://`` as the store implies an in-process broker unless one is named: a broker
    shared between processes cannot serve a store that is not. ``policy`` replaces the one
    built from the settings (:func:`build_policy`). Given adapters are used as they are, with
    no outbox relay (their publish cost is unknown here).
    """
    policy = policy if policy is not None else build_policy(settings)
    if store is not None or broker is not None:
        if store is None or broker is None:
            raise ValueError("Pass both store= and broker= to use custom adapters")
        return Orchestrator(store, broker, policy)
    db_url = settings.resolved_database_url()
    broker_url = settings.broker_url or ("memory://" if db_url == "memory://" else "none://")
    store = build_store(db_url, settings.startup_timeout)
    try:
        broker = build_broker(broker_url, settings)
    except BaseException:
        store.close()
        raise
    service = Orchestrator(
        store,
        broker,
        policy,
        relay=_scheme(broker_url, "broker URL", BROKER_SCHEMES) in ("amqp", "amqps"),
    )
    if service.relay is not None:
        _relays.add(service.relay)
    return service


def build_runner(
    service: Orchestrator,
    cluster: str,
    registry: Runner,
    cache: JobCache,
    settings: RunnerSettings,
    *,
    consumers: ConsumerFactory | None = None,
    signals: SignalScope | None = runner_signals,
) -> TaskRunner:
    """A task runner wired to the service's broker and to the process's signals (SIGTERM:
    finish, then stop; a second one: exit now). ``signals=None`` for a runner embedded in a
    program that handles its own."""
    return TaskRunner(
        service,
        cluster,
        registry,
        cache,
        settings,
        consumers=consumers if consumers is not None else service.broker.consumer,
        signals=signals,
    )


#: The relays of the orchestrators built here, flushed at interpreter exit (weakly held: a
#: closed client's orchestrator goes away with it).
_relays: weakref.WeakSet[OutboxRelay] = weakref.WeakSet()


@atexit.register
def _flush_relays_at_exit() -> None:
    """A script that submits and exits without closing its client still gets its messages out."""
    for relay in list(_relays):
        relay.flush(timeout=10.0)
