"""Names, arguments and declarations of conveyor's RabbitMQ topology.

* one durable topic exchange per cluster: ``{namespace}.{cluster}`` (cluster slugs are already
  safe: lowercase letters, digits and dashes);
* one durable queue per exact (cluster, name, major, minor):
  ``{namespace}.{cluster}.{routing_key}``, bound with exactly ``routing_key(name, major, minor)``
  (a hash of the name: user names never reach a broker name or key);
* one durable dead-letter queue ``{namespace}.dead`` (reached through the default exchange).

Every name and key is checked against AMQP's 255-byte ``shortstr`` limit before it is sent:
py-amqp would otherwise fail with a ``struct.error`` deep inside frame encoding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from amqp.exceptions import PreconditionFailed

from conveyor.core.errors import BrokerUnavailableError
from conveyor.core.identifiers import TaskIdentifier, routing_key

QueueType = Literal["classic", "quorum"]

#: AMQP 0-9-1 ``shortstr``: exchange names, queue names and routing keys.
MAX_SHORTSTR_BYTES: Final = 255
#: Quorum queues' ``x-delivery-limit``: effectively unlimited. Poison detection lives in SQL, and
#: every hostage give-back or channel loss counts as a delivery on 3.10 (RabbitMQ 4 would
#: otherwise dead-letter a healthy task after 20 of them).
QUORUM_DELIVERY_LIMIT: Final = 1_000_000_000
#: Namespaces: a readable prefix, no separators that would look like our own structure.
NAMESPACE_PATTERN: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']*)' for queue '(?P<queue>[^']*)' in vhost '(?P<vhost>[^']*)': "
    r"received '(?P<received>[^']*)' but current is '(?P<current>[^']*)'"
)


class AmqpTopologyError(BrokerUnavailableError):
    """An existing queue or exchange differs from what this installation declares (another
    queue type, other arguments). Not transient: the message says what differs and the fix."""


def check_name(kind: str, name: str) -> str:
    """Raise ValueError when ``name`` does not fit an AMQP shortstr."""
    size = len(name.encode("utf-8"))
    if size > MAX_SHORTSTR_BYTES:
        raise ValueError(
            f"The RabbitMQ {kind} {name[:80]!r}… is {size} bytes long (at most "
            f"{MAX_SHORTSTR_BYTES}): use a shorter namespace, or smaller version numbers"
        )
    return name


def validate_namespace(namespace: str) -> str:
    """Check a namespace: 1-64 ASCII letters, digits, ``_`` or ``-``.

    Raises:
        ValueError: anything else.
    """
    if not isinstance(namespace, str) or NAMESPACE_PATTERN.match(namespace) is None:
        raise ValueError(
            f"Invalid AMQP namespace {namespace!r}: use 1-64 letters, digits, '_' or '-'"
        )
    return namespace


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One exact-version queue: its name, exchange, binding key and the identifier it carries."""

    cluster: str
    name: str
    exchange: str
    routing_key: str
    identifier: TaskIdentifier


class Topology:
    """Computes names and declares entities for one namespace and queue type."""

    def __init__(self, namespace: str, queue_type: QueueType) -> None:
        if queue_type not in ("classic", "quorum"):
            raise ValueError(f"Invalid queue_type {queue_type!r}: use 'classic' or 'quorum'")
        self.namespace = validate_namespace(namespace)
        self.queue_type: QueueType = queue_type
        self.dead_letter_queue = f"{namespace}.dead"
        #: Names of every exchange and queue declared through this topology (tests clean up
        #: with it; declarations are idempotent, so the set only grows).
        self.declared_exchanges: set[str] = set()
        self.declared_queues: set[str] = set()

    def exchange(self, cluster: str) -> str:
        return check_name("exchange name", f"{self.namespace}.{cluster}")

    def queue(self, cluster: str, name: str, major: int, minor: int) -> QueueSpec:
        key = check_name("routing key", routing_key(name, major, minor))
        return QueueSpec(
            cluster=cluster,
            name=check_name("queue name", f"{self.namespace}.{cluster}.{key}"),
            exchange=self.exchange(cluster),
            routing_key=key,
            identifier=TaskIdentifier(name, f"v{major}.{minor}"),
        )

    def queue_for(self, cluster: str, identifier: TaskIdentifier) -> QueueSpec:
        return self.queue(cluster, identifier.name, identifier.major, identifier.minor)

    def queue_arguments(self, *, dead_letter: bool = False) -> dict[str, Any]:
        """Arguments every declaration of our queues uses (RabbitMQ refuses a redeclaration
        with other ones, which is how a queue-type mismatch is detected)."""
        arguments: dict[str, Any] = {"x-queue-type": self.queue_type}
        if self.queue_type == "quorum" and not dead_letter:
            arguments["x-delivery-limit"] = QUORUM_DELIVERY_LIMIT
        return arguments

    # -- declarations (on a py-amqp channel) ----------------------------------------------------
    def declare_exchange(self, channel: Any, cluster: str) -> str:
        name = self.exchange(cluster)
        channel.exchange_declare(name, "topic", durable=True, auto_delete=False)
        self.declared_exchanges.add(name)
        return name

    def declare_queue(self, channel: Any, spec: QueueSpec) -> None:
        """Declare the queue and its one binding (idempotent; the exchange must exist)."""
        try:
            channel.queue_declare(
                spec.name,
                durable=True,
                exclusive=False,
                auto_delete=False,
                arguments=self.queue_arguments(),
            )
        except PreconditionFailed as exc:
            raise self.mismatch_error(exc, spec.name) from exc
        self.declared_queues.add(spec.name)
        channel.queue_bind(spec.name, spec.exchange, spec.routing_key)

    def declare_dead_letter_queue(self, channel: Any) -> str:
        name = self.dead_letter_queue
        try:
            channel.queue_declare(
                name,
                durable=True,
                exclusive=False,
                auto_delete=False,
                arguments=self.queue_arguments(dead_letter=True),
            )
        except PreconditionFailed as exc:
            raise self.mismatch_error(exc, name) from exc
        self.declared_queues.add(name)
        return name

    def mismatch_error(self, exc: PreconditionFailed, queue: str) -> AmqpTopologyError:
        """Translate RabbitMQ's PRECONDITION_FAILED on a queue declaration into what differs and
        how to fix it."""
        text = str(getattr(exc, "reply_text", "") or exc)
        match = _INEQUIVALENT.search(text)
        if match is None:
            return AmqpTopologyError(
                f"RabbitMQ refused to declare queue {queue!r} as a durable {self.queue_type} "
                f"queue: {text}"
            )
        arg, received, current = match["arg"], match["received"], match["current"]
        if arg == "x-queue-type":
            return AmqpTopologyError(
                f"RabbitMQ queue {queue!r} (vhost {match['vhost']!r}) already exists as a "
                f"{current} queue, but this conveyor is configured for {received} queues. Either "
                f"configure queue_type={current!r} to match the existing queues, or move to "
                f"{received} queues: stop every runner, let the queues drain, delete them "
                f"(`rabbitmqctl delete_queue {queue}`; the tasks are safe in the store and get "
                f"republished), then restart; or use another namespace."
            )
        return AmqpTopologyError(
            f"RabbitMQ queue {queue!r} (vhost {match['vhost']!r}) exists with {arg}={current}, "
            f"but this conveyor declares {arg}={received}: it was created by another version "
            f"or configuration of conveyor. Delete the queue (`rabbitmqctl delete_queue "
            f"{queue}`) once it is drained, or use another namespace."
        )
