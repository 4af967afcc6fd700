"""The publisher's frame encoder writes exactly what py-amqp's ``basic_publish`` writes, and
the py-amqp internals it relies on (conveyor.broker_amqp._frames) are there and behave."""

from __future__ import annotations

import importlib.metadata
import inspect
import tomllib
from pathlib import Path
from typing import Any

import amqp
import pytest
from amqp import spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps
from packaging.requirements import Requirement

from conveyor.broker_amqp._codec import encode
from conveyor.broker_amqp._frames import (
    FrameEncoder,
    dispatch_message,
    properties_before_message_id,
    write_frames,
)
from conveyor.broker_amqp._topology import Topology
from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import DispatchMessage


class _Connection:
    frame_max = 131072
    bytes_sent = 0


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))


def _py_amqp_frames(
    channel_id: int, message: Any, exchange: str, routing_key: str, connection: Any = None
) -> bytes:
    transport = _Transport()
    write = frame_writer(connection or _Connection(), transport)
    args = dumps("Bssbb", (0, exchange, routing_key, True, False))
    write(1, channel_id, spec.Basic.Publish, args, message)
    return b"".join(transport.written)


@pytest.mark.parametrize("name", ["Leaf", "a.b*c#", "名前" * 20])
def test_frames_match_py_amqp(name: str) -> None:
    topology = Topology("conveyor", "quorum")
    ident = TaskIdentifier(name, "v1.2")
    queue = topology.queue_for("default", ident)
    encoder = FrameEncoder(7, _Connection.frame_max)
    for _ in range(3):  # the cached parts are reused
        message = DispatchMessage(TaskId(uuid7()), JobId(uuid7()), "default", ident)
        body, headers = encode(message)
        message_id = str(message.task_id)
        ours = encoder.frames(queue, headers, body, message_id)
        theirs = _py_amqp_frames(
            7, dispatch_message(body, headers, message_id), queue.exchange, queue.routing_key
        )
        assert ours == theirs


def test_a_body_over_one_frame_falls_back() -> None:
    topology = Topology("conveyor", "classic")
    queue = topology.queue_for("default", TaskIdentifier("Leaf", "v1.0"))
    encoder = FrameEncoder(1, 4096)
    assert encoder.frames(queue, {}, b"x" * 5000, "id") is None


# -- the py-amqp internals the encoder uses ------------------------------------------------------
def test_the_installed_amqp_is_in_the_declared_range() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    [declared] = [
        Requirement(r) for r in pyproject["project"]["dependencies"] if r.startswith("amqp")
    ]
    assert declared.specifier.contains(importlib.metadata.version("amqp"))


def test_message_serialises_its_properties_with_message_id_last() -> None:
    """``Message._serialize_properties`` (private) exists; message_id is its last field."""
    message = dispatch_message(b"{}", {"task": "x"}, "0192-id")
    serialised = message._serialize_properties()
    assert isinstance(serialised, bytes) and serialised.endswith(b"\x070192-id")
    assert properties_before_message_id({"task": "x"}) == serialised[: -len(b"\x070192-id")]
    # The flags say: content type, headers, delivery mode, message id, and nothing else.
    flags = int.from_bytes(serialised[:2], "big")
    assert flags == (1 << 15) | (1 << 13) | (1 << 12) | (1 << 7)


def test_py_amqp_counts_each_write_in_bytes_sent_and_its_heartbeats_read_it() -> None:
    """``write_frames`` bumps ``Connection.bytes_sent`` as py-amqp's own writer does, so a
    connection busy publishing is not taken for idle by ``heartbeat_tick``."""
    theirs = _Connection()
    _py_amqp_frames(1, dispatch_message(b"x", {}, "id"), "ex", "rk", connection=theirs)
    assert theirs.bytes_sent == 1
    assert isinstance(amqp.Connection.bytes_sent, int)
    assert "self.bytes_sent" in inspect.getsource(amqp.Connection.heartbeat_tick)

    ours = _Connection()
    ours.transport = _Transport()  # type: ignore[attr-defined]
    write_frames(ours, b"frames")
    assert ours.bytes_sent == 1 and ours.transport.written == [b"frames"]  # type: ignore[attr-defined]


def test_a_connection_writes_through_its_transport() -> None:
    """``Connection.transport`` is the socket wrapper py-amqp writes frames to."""
    assert "self.transport = self.Transport(" in inspect.getsource(amqp.Connection.connect)
    assert "transport.write(" in inspect.getsource(frame_writer)
    assert callable(getattr(amqp.transport.TCPTransport, "write", None))
