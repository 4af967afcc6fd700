"""RabbitMQ adapter benchmark: confirmed publishing and prefetch-1 consumption, both queue types.

Measures, on one broker in one run:

* publish: ``AmqpBroker.publish`` of 10k and 100k dispatch messages (batched publisher confirms,
  ``mandatory``, persistent), next to kombu's own ``confirm_publish`` (one confirm per message);
* consume: receive + ack of one consumer with ``prefetch_count=1`` through the adapter (its I/O
  thread and hand-over to the runner's thread), next to a raw kombu ``Consumer`` on the same
  broker; plus the adapter reading 3 version queues at once (hostage give-backs included), the
  longest gap between two deliveries, and the idle publish→receive latency.

Usage::

    .venv/bin/python bench/amqp_bench.py [--url amqp://guest:guest@127.0.0.1:5672//]
        [--publish 10000,100000] [--consume 5000] [--queue-types classic,quorum]

It uses a fresh namespace per measurement and deletes every queue and exchange it declared.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import kombu

from conveyor.broker_amqp import AmqpBroker
from conveyor.broker_amqp._codec import CONTENT_TYPE, encode
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import DispatchMessage, RegisteredIdentifier


@dataclass
class Row:
    what: str
    queue_type: str
    count: int
    seconds: float
    note: str = ""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else float("inf")


def messages(count: int, version: str = "v1.0", name: str = "Bench") -> list[DispatchMessage]:
    ident = TaskIdentifier(name, version)
    job = JobId(uuid7())
    return [DispatchMessage(TaskId(uuid7()), job, "default", ident) for _ in range(count)]


@contextmanager
def fresh_broker(url: str, queue_type: str) -> Iterator[AmqpBroker]:
    broker = AmqpBroker(url, namespace=f"bench-{uuid.uuid4().hex[:8]}", queue_type=queue_type)  # type: ignore[arg-type]
    try:
        yield broker
    finally:
        broker.close()
        conn = kombu.Connection(url)
        try:
            channel = conn.channel()
            for queue in broker.topology.declared_queues:
                channel.queue_delete(queue)
            for exchange in broker.topology.declared_exchanges:
                channel.exchange_delete(exchange)
        finally:
            conn.release()


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_publish(url: str, queue_type: str, count: int) -> Row:
    with fresh_broker(url, queue_type) as broker:
        batch = messages(count)
        broker.publish(messages(1))  # connect and declare outside the measurement
        seconds = timed(lambda: broker.publish(batch))
        depth = broker.queue_depths("default", [TaskIdentifier("Bench", "v1.0")])
        assert sum(depth.values()) == count + 1, depth
    return Row("publish, adapter (batched confirms)", queue_type, count, seconds)


def bench_publish_kombu_one_by_one(url: str, queue_type: str, count: int) -> Row:
    with fresh_broker(url, queue_type) as broker:
        batch = messages(count)
        broker.publish(messages(1))  # declares exchange, queue and binding
        spec = broker.topology.queue_for("default", batch[0].identifier)
        conn = kombu.Connection(url, transport_options={"confirm_publish": True})
        try:
            producer = kombu.Producer(conn.channel(), on_return=lambda *a: None)

            def publish() -> None:
                for message in batch:
                    body, headers = encode(message)
                    producer.publish(
                        body,
                        exchange=spec.exchange,
                        routing_key=spec.routing_key,
                        content_type=CONTENT_TYPE,
                        content_encoding="utf-8",
                        headers=headers,
                        delivery_mode=2,
                        mandatory=True,
                        declare=[],
                    )

            seconds = timed(publish)
        finally:
            conn.release()
    return Row("publish, kombu confirm_publish (1 by 1)", queue_type, count, seconds)


def bench_consume_adapter(url: str, queue_type: str, count: int, minors: int = 1) -> Row:
    with fresh_broker(url, queue_type) as broker:
        per = count // minors
        for minor in range(minors):
            broker.publish(messages(per, f"v1.{minor}"))
        consumer = broker.consumer("default", [RegisteredIdentifier("Bench", 1, minors - 1)])
        got = 0
        gaps: list[float] = []
        try:
            first = consumer.receive(10)
            assert first is not None
            first.ack()
            got = 1
            started = last = time.perf_counter()
            while got < per * minors:
                delivery = consumer.receive(10)
                if delivery is None:
                    raise RuntimeError(f"only {got} of {per * minors} messages arrived")
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
                delivery.ack()
                got += 1
            seconds = time.perf_counter() - started
        finally:
            consumer.close()
        note = f"longest gap {max(gaps) * 1000:.1f} ms"
        if minors > 1:
            note += f", {broker.stats.given_back} given back"
    label = "consume+ack, adapter, prefetch 1"
    if minors > 1:
        label += f", {minors} queues"
    return Row(label, queue_type, got - 1, seconds, note)


def bench_consume_kombu(url: str, queue_type: str, count: int) -> Row:
    with fresh_broker(url, queue_type) as broker:
        broker.publish(messages(count))
        spec = broker.topology.queue("default", "Bench", 1, 0)
        conn = kombu.Connection(url)
        got = 0
        stamps: list[float] = []

        def on_message(message: kombu.Message) -> None:
            nonlocal got
            stamps.append(time.perf_counter())
            message.ack()
            got += 1

        try:
            channel = conn.channel()
            queue = kombu.Queue(spec.name, channel=channel, no_declare=True)
            with kombu.Consumer(channel, [queue], on_message=on_message, prefetch_count=1):
                while got < 1:
                    conn.drain_events(timeout=10)
                started = time.perf_counter()
                while got < count:
                    conn.drain_events(timeout=10)
                seconds = time.perf_counter() - started
        finally:
            conn.release()
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return Row(
        "consume+ack, raw kombu Consumer, prefetch 1",
        queue_type,
        got - 1,
        seconds,
        f"longest gap {max(gaps) * 1000:.1f} ms",
    )


def bench_idle_latency(url: str, queue_type: str, samples: int = 200) -> Row:
    with fresh_broker(url, queue_type) as broker:
        consumer = broker.consumer("default", [RegisteredIdentifier("Bench", 1, 0)])
        latencies = []
        try:
            broker.publish(messages(1))
            delivery = consumer.receive(10)
            assert delivery is not None
            delivery.ack()
            for _ in range(samples):
                sent = time.perf_counter()
                broker.publish(messages(1))
                delivery = consumer.receive(10)
                assert delivery is not None
                latencies.append(time.perf_counter() - sent)
                delivery.ack()
        finally:
            consumer.close()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    return Row(
        "publish→receive, idle consumer",
        queue_type,
        samples,
        sum(latencies),
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (confirm included)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--publish", default="10000,100000")
    parser.add_argument("--kombu-publish", type=int, default=3000)
    parser.add_argument("--consume", type=int, default=5000)
    parser.add_argument("--queue-types", default="classic,quorum")
    args = parser.parse_args()
    sizes = [int(s) for s in args.publish.split(",") if s]
    rows: list[Row] = []
    for queue_type in args.queue_types.split(","):
        for size in sizes:
            rows.append(bench_publish(args.url, queue_type, size))
            print(_format(rows[-1]), flush=True)
        rows.append(bench_publish_kombu_one_by_one(args.url, queue_type, args.kombu_publish))
        print(_format(rows[-1]), flush=True)
        rows.append(bench_consume_adapter(args.url, queue_type, args.consume))
        print(_format(rows[-1]), flush=True)
        rows.append(bench_consume_kombu(args.url, queue_type, args.consume))
        print(_format(rows[-1]), flush=True)
        rows.append(bench_consume_adapter(args.url, queue_type, args.consume, minors=3))
        print(_format(rows[-1]), flush=True)
        rows.append(bench_idle_latency(args.url, queue_type))
        print(_format(rows[-1]), flush=True)
    print()
    print(_table(rows))


def _format(row: Row) -> str:
    return (
        f"{row.what:<46} {row.queue_type:<8} {row.count:>8,} {row.seconds:>8.2f}s "
        f"{row.rate:>10,.0f}/s  {row.note}"
    )


def _table(rows: list[Row]) -> str:
    lines = [
        "| measurement | queue type | messages | seconds | msgs/s | notes |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.what} | {row.queue_type} | {row.count:,} | {row.seconds:.2f} | "
            f"{row.rate:,.0f} | {row.note} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
