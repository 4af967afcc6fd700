"""The publisher's frame encoder writes exactly what py-amqp's ``basic_publish`` writes."""

from __future__ import annotations

from typing import Any

import pytest
from amqp import spec
from amqp.method_framing import frame_writer
from amqp.serialization import dumps

from conveyor.broker_amqp._codec import encode
from conveyor.broker_amqp._publisher import FrameEncoder, _message
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


def _py_amqp_frames(channel_id: int, message: Any, exchange: str, routing_key: str) -> bytes:
    transport = _Transport()
    write = frame_writer(_Connection(), transport)
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
            7, _message(body, headers, message_id), queue.exchange, queue.routing_key
        )
        assert ours == theirs


def test_a_body_over_one_frame_falls_back() -> None:
    topology = Topology("conveyor", "classic")
    queue = topology.queue_for("default", TaskIdentifier("Leaf", "v1.0"))
    encoder = FrameEncoder(1, 4096)
    assert encoder.frames(queue, {}, b"x" * 5000, "id") is None
