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
    * kombu's ``confirm_publish`` waits for each confirm in turn: 1,650-1,750 msgs/s measured
      (``bench/amqp_bench.py``). A confirm-mode py-amqp channel with a window of 4,000
      unconfirmed messages, drained for ``basic.ack``/``nack``/``return`` (``_confirms``),
      measured 12k msgs/s on classic and 14-17k on quorum queues (100k messages in 6-8 s),
      above the 8k goal, without a second AMQP client library in production. pika's async
      ``SelectConnection`` would only pay off for much larger fan-outs, at the price of a
      second I/O model to maintain.
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
    Default ``quorum``, from the measurements in ``bench/README.md`` ("RabbitMQ adapter"):
    confirmed publishing is as fast on quorum queues (14-17k msgs/s) as on classic ones (12k),
    and a prefetch-1 consumer through this adapter takes ~1,300 msgs/s from a quorum queue
    (~2,700 from a classic one), far above a runner whose every task costs a claim and a
    completion in SQL. Quorum queues replicate across a RabbitMQ cluster, count deliveries and
    are where RabbitMQ is heading (classic mirroring is gone in 4.0); and the type of an
    existing queue cannot change without deleting it, so the default is the one production
    needs and no deployment has to migrate. ``queue_type="classic"`` suits a single-node
    development broker.
"""

from __future__ import annotations

from conveyor.broker_amqp._consumer import AmqpConsumer, AmqpDelivery, ConsumerStats
from conveyor.broker_amqp._topology import AmqpTopologyError, QueueType
from conveyor.broker_amqp.broker import DEFAULT_QUEUE_TYPE, AmqpBroker, server_version

__all__ = [
    "DEFAULT_QUEUE_TYPE",
    "AmqpBroker",
    "AmqpConsumer",
    "AmqpDelivery",
    "AmqpTopologyError",
    "ConsumerStats",
    "QueueType",
    "server_version",
]
