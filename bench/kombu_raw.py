"""Raw kombu consume+ack with prefetch 1: the ceiling for one consumer process on this broker.

kombu_raw.py publish URL QUEUE N    publish N persistent messages (body: the sequence number)
kombu_raw.py consume URL QUEUE      consume with prefetch 1, mark each message, then ack it
"""

from __future__ import annotations

import sys

from kombu import Connection, Consumer, Exchange, Producer, Queue
from marks import mark


def main() -> None:
    command, url, name, *rest = sys.argv[1:]
    queue = Queue(name, Exchange(""), routing_key=name, durable=True, auto_delete=False)
    with Connection(url) as conn:
        channel = conn.channel()
        queue.bind(channel).declare()
        if command == "publish":
            producer = Producer(channel)
            for i in range(int(rest[0])):
                producer.publish(
                    str(i).encode(), routing_key=name, delivery_mode=2, content_type="text/plain"
                )
            return

        def on_message(body: bytes, message: object) -> None:
            mark(body.decode() if isinstance(body, bytes) else body)
            message.ack()  # type: ignore[attr-defined]

        channel.basic_qos(0, 1, False)
        with Consumer(channel, [queue], callbacks=[on_message], accept=["text/plain"]):
            while True:
                try:
                    conn.drain_events(timeout=1.0)
                except TimeoutError:
                    continue


if __name__ == "__main__":
    main()
