"""Fixtures for the RabbitMQ adapter's integration tests.

The session gets its own vhost (``rabbitmqctl add_vhost`` + ``set_permissions``, deleted at the
end), and every test its own namespace inside it, with every exchange and queue it declared
deleted afterwards. RabbitMQ unreachable: ``pytest.fail`` when ``CI`` is set, else skip.

Environment: ``CONVEYOR_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672``, without
a vhost), ``CONVEYOR_TEST_AMQP_USER`` (the user granted the test vhost, default ``guest``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import kombu
import pika
import pytest

from conveyor.broker_amqp import AmqpBroker

BASE_URL = os.environ.get("CONVEYOR_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672").rstrip("/")
USER = os.environ.get("CONVEYOR_TEST_AMQP_USER", "guest")


def unavailable(reason: str) -> None:
    """Skip locally, fail in CI (where the broker must be there)."""
    if os.environ.get("CI"):
        pytest.fail(f"RabbitMQ is required in CI: {reason}")
    pytest.skip(reason)


class RabbitCtl:
    """``rabbitmqctl`` for this test session's vhost."""

    def __init__(self, executable: str, vhost: str) -> None:
        self.executable = executable
        self.vhost = vhost

    def __call__(self, *args: str, timeout: float = 60) -> str:
        result = subprocess.run(
            [self.executable, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def eval(self, expression: str) -> str:
        return self("eval", expression).strip()

    def rows(self, *args: str) -> list[list[str]]:
        """A ``list_*`` command's rows (tab-separated, no headers)."""
        out = self(*args, "--no-table-headers", "--quiet")
        return [line.split("\t") for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def rabbitmqctl() -> Iterator[RabbitCtl]:
    executable = shutil.which("rabbitmqctl")
    if executable is None:
        unavailable("rabbitmqctl not found (install rabbitmq-server)")
        raise AssertionError("unreachable")
    conn = kombu.Connection(f"{BASE_URL}//", connect_timeout=3)
    try:
        conn.ensure_connection(max_retries=0)
    except Exception as exc:
        unavailable(f"RabbitMQ unreachable at {conn.as_uri()}: {exc}")
    finally:
        conn.release()
    vhost = f"conveyor-test-{uuid.uuid4().hex[:10]}"
    ctl = RabbitCtl(executable, vhost)
    try:
        ctl("add_vhost", vhost)
        ctl("set_permissions", "-p", vhost, USER, ".*", ".*", ".*")
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        unavailable(f"cannot create a test vhost: {exc}")
    try:
        yield ctl
    finally:
        with contextlib.suppress(Exception):
            ctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def amqp_url(rabbitmqctl: RabbitCtl) -> str:
    return f"{BASE_URL}/{quote(rabbitmqctl.vhost, safe='')}"


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_broker(amqp_url: str, namespace: str) -> Iterator[Callable[..., AmqpBroker]]:
    """Build brokers for this test's namespace; closes them and deletes what they declared."""
    made: list[AmqpBroker] = []

    def make(**kwargs: Any) -> AmqpBroker:
        kwargs.setdefault("namespace", namespace)
        broker = AmqpBroker(amqp_url, **kwargs)
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.close()
    queues = set().union(*(b.topology.declared_queues for b in made)) if made else set()
    exchanges = set().union(*(b.topology.declared_exchanges for b in made)) if made else set()
    if queues or exchanges:
        conn = kombu.Connection(amqp_url, connect_timeout=3)
        try:
            channel = conn.channel()
            for queue in queues:
                channel.queue_delete(queue)
            for exchange in exchanges:
                channel.exchange_delete(exchange)
        except Exception:  # the vhost is deleted at the end of the session anyway
            pass
        finally:
            conn.release()


@pytest.fixture
def pika_channel(amqp_url: str) -> Iterator[Any]:
    """A pika channel on the test vhost (for publishing raw messages and reading depths)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        yield connection.channel()
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def queue_depth(channel: Any, queue: str) -> int:
    """Messages ready in ``queue`` (a passive declare through pika)."""
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def close_connections(rabbitmqctl: RabbitCtl, name_part: str) -> int:
    """Force-close this vhost's connections whose client-given name contains ``name_part``."""
    closed = 0
    for pid, vhost, properties in rabbitmqctl.rows(
        "list_connections", "pid", "vhost", "client_properties"
    ):
        if vhost == rabbitmqctl.vhost and name_part in properties:
            rabbitmqctl("close_connection", pid, "closed by a conveyor test")
            closed += 1
    return closed
