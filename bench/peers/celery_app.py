"""Celery side of the benchmark: the same tasks as ``conveyor_tasks`` (run in bench/.venv-celery).

Configuration under test (design §4 equivalents): ``task_acks_late=True``,
``worker_prefetch_multiplier=1``, JSON; ``BENCH_CELERY_BACKEND`` set → SQLAlchemy result
backend (``db+postgresql+psycopg://…``), else ``task_ignore_result=True``.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from celery import Celery
from marks import mark

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "celerybench")
app = Celery("celerybench", broker=os.environ.get("BENCH_AMQP", "amqp://guest:guest@127.0.0.1//"))
backend = os.environ.get("BENCH_CELERY_BACKEND")
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if backend:
    app.conf.update(result_backend=backend, task_ignore_result=False)
else:
    app.conf.update(task_ignore_result=True)


@app.task(name="bench.noop")
def noop(seq: int) -> None:
    mark(seq)


@app.task(name="bench.probe")
def probe(seq: int, sent: float) -> None:
    mark(f"{seq} {sent:.6f}")


@app.task(name="bench.fanout")
def fanout(n: int) -> None:
    mark("fanout-start")
    for i in range(n):
        noop.apply_async((i,))
    mark("fanout-end")


@app.task(name="bench.sleep")
def sleep(seq: int, seconds: float) -> None:
    mark(seq)
    time.sleep(seconds)
