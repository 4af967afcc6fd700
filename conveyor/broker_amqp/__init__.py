"""RabbitMQ dispatch adapter: the ``Broker`` port on kombu/py-amqp.

SQL is the truth, the broker is the doorbell (design §4): messages carry only ids and the task
identifier; a runner claims the task in the store on delivery and acks after the result
committed.

Topology
    One durable topic exchange per cluster (``{namespace}.{cluster}``) and one durable queue per
    exact (cluster, name, major, minor), named ``{namespace}.{cluster}.{routing key}`` and bound
    with exactly ``routing_key(name, major, minor)`` (a hash of the name: dots, ``*``, ``#``,
    unicode and 256-character names never reach a broker name). Publishers declare the exact
    queue before publishing (once per process), consumers on every (re)connect, so a message
    waits for a runner that does not exist yet. A runner at ``vA.B`` consumes the queues of
    minors ``0..B``; no queue is ever bound twice. Quorum queues get ``x-delivery-limit`` 10⁹.

Messages
    JSON only (never pickle), persistent, ``message_id`` = task id, identifier also in headers
    (``x-conveyor-name``/``x-conveyor-version``). A message without a usable task id goes to
    ``{namespace}.dead`` (with ``x-conveyor-dead-reason``) and is acked, never delivered.

Why kombu's connections with py-amqp channels (and not kombu's Producer/Consumer, nor pika)
    * kombu's ``confirm_publish`` waits for each confirm in turn (~1,250 msgs/s measured). A
      confirm-mode py-amqp channel with a window of unconfirmed messages, drained for
      ``basic.ack``/``nack``/``return``, reaches the ≥ 8k msgs/s goal (``bench/amqp_bench.py``)
      in ~60 lines, without a second AMQP client library in production; pika's async
      ``SelectConnection`` is faster still, but would mean two I/O models to maintain for a
      gain that only shows above 100k-message fan-outs.
    * kombu's ``Consumer`` runs message callbacks inside ``drain_events``; we need an I/O thread
      that owns the connection (heartbeats while user code blocks), gives hostages back at once
      and voids tags across reconnects, so the consumer talks to py-amqp channels directly and
      uses kombu for URLs, TLS, connection setup and error classes.

Consuming (``_consumer``)
    One connection and I/O thread per runner subscription, ``prefetch_count=1`` per consumer,
    no auto-ack; at most one unsettled delivery; hostages given back at once (cancel, then
    requeue; consumed again when idle); an early ack before RabbitMQ 3.10's ``consumer_timeout``;
    reconnects with back-off that void every old delivery tag.

Queue type
    Default ``quorum``. Measured on this 2-core machine (``bench/README.md``, "RabbitMQ
    adapter"): confirmed publishing and prefetch-1 consumption are fast enough on both types
    for an orchestrator whose per-task cost is a few SQL statements, and quorum queues are the
    ones that replicate, count deliveries and survive RabbitMQ 4 (classic mirroring is gone);
    since the type of an existing queue cannot be changed without deleting it, the default is
    the one production needs, so a deployment never has to migrate. ``queue_type="classic"``
    suits a single-node development broker that wants the highest throughput.
"""

from __future__ import annotations

from conveyor.broker_amqp._consumer import AmqpConsumer, AmqpDelivery, ConsumerStats
from conveyor.broker_amqp._topology import AmqpTopologyError, QueueType
from conveyor.broker_amqp.broker import DEFAULT_QUEUE_TYPE, AmqpBroker

__all__ = [
    "DEFAULT_QUEUE_TYPE",
    "AmqpBroker",
    "AmqpConsumer",
    "AmqpDelivery",
    "AmqpTopologyError",
    "ConsumerStats",
    "QueueType",
]
