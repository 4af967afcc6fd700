"""AMQP 0-9-1 frames of a dispatch message, encoded here and written past py-amqp.

Why: py-amqp's ``channel.basic_publish`` serialises the properties and makes one socket write
per message, which was most of the CPU time of a 100k fan-out. The publisher instead writes
the frames of :data:`WRITE_BATCH` messages in one write, encoded by :class:`FrameEncoder`,
which caches what a batch shares (the method frame of each queue, the properties before the
message id).

The frames must stay byte for byte what py-amqp would write (tests/broker_amqp/test_frames.py
compares them), and three things used here are py-amqp internals, not API. They are pinned by
those tests for the ``amqp`` versions pyproject.toml allows (kombu's range, below 6):

* ``amqp.Message._serialize_properties()``: the content-header property list (the encoder
  calls it once per distinct header set and keeps the bytes before the message id);
* ``amqp.Connection.transport.write(data)``: the socket under the connection;
* ``amqp.Connection.bytes_sent``: a counter py-amqp's ``frame_writer`` increments per write
  and ``heartbeat_tick`` reads to decide whether the connection was idle;
  :func:`write_frames` increments it likewise, so heartbeats are not sent while we publish.
"""

from __future__ import annotations

import struct
from typing import Any

import amqp

from conveyor.broker_amqp._codec import CONTENT_TYPE, PERSISTENT
from conveyor.broker_amqp._topology import QueueSpec

#: Messages encoded per socket write when publishing a batch.
WRITE_BATCH = 200
#: Frame types of AMQP 0-9-1 (section 4.2.3) and the end octet.
METHOD, HEADER, BODY = 1, 2, 3
FRAME_END = b"\xce"
#: A frame's type, channel and size, before its payload and FRAME_END.
FRAME_OVERHEAD = 8
#: basic.publish (class 60, method 40) and its reserved-1 (the old ticket).
BASIC_PUBLISH = struct.pack(">HHH", 60, 40, 0)
#: The ``mandatory`` bit set, ``immediate`` clear: unroutable messages come back.
MANDATORY = b"\x01"


def dispatch_message(body: bytes, headers: dict[str, Any], message_id: str) -> amqp.Message:
    """The message py-amqp would publish for a dispatch (also the fallback for big bodies)."""
    return amqp.Message(
        body,
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        application_headers=headers,
        message_id=message_id,
    )


def shortstr(value: str) -> bytes:
    """An AMQP short string: one length octet and at most 255 bytes of UTF-8."""
    raw = value.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"AMQP short string over 255 bytes: {value[:40]!r}…")
    return bytes((len(raw),)) + raw


class FrameEncoder:
    """The three AMQP frames of a ``basic.publish`` (mandatory) of a dispatch message.

    Byte for byte what py-amqp writes for ``channel.basic_publish(dispatch_message(...),
    exchange, routing_key, mandatory=True)``: a method frame, a content header whose properties
    are content type, headers, delivery mode and message id (in that order), and one body frame.
    The parts that depend only on the queue and the headers are encoded once per encoder.
    """

    def __init__(self, channel_id: int, frame_max: int) -> None:
        self._channel = channel_id
        self._max_payload = frame_max - FRAME_OVERHEAD
        self._methods: dict[tuple[str, str], bytes] = {}
        self._properties: dict[tuple[tuple[str, Any], ...], bytes] = {}

    def _frame(self, kind: int, payload: bytes) -> bytes:
        return struct.pack(">BHI", kind, self._channel, len(payload)) + payload + FRAME_END

    def frames(
        self, spec: QueueSpec, headers: dict[str, Any], body: bytes, message_id: str
    ) -> bytes | None:
        """The frames to write, or None if the message needs more than one body frame."""
        key = (spec.exchange, spec.routing_key)
        method = self._methods.get(key)
        if method is None:
            payload = BASIC_PUBLISH + shortstr(key[0]) + shortstr(key[1]) + MANDATORY
            method = self._methods[key] = self._frame(METHOD, payload)
        header_key = tuple(sorted(headers.items()))
        prefix = self._properties.get(header_key)
        if prefix is None:
            prefix = self._properties[header_key] = properties_before_message_id(headers)
        header = struct.pack(">HHQ", 60, 0, len(body)) + prefix + shortstr(message_id)
        if len(header) > self._max_payload or len(body) > self._max_payload:
            return None
        return method + self._frame(HEADER, header) + self._frame(BODY, body)


def properties_before_message_id(headers: dict[str, Any]) -> bytes:
    """The serialised properties of a dispatch message up to its message id.

    py-amqp serialises the properties (a private method); message_id comes last (its flag bit
    is the lowest set), so everything before its short string is shared by every message
    with these headers.
    """
    serialised: bytes = dispatch_message(b"", headers, "-")._serialize_properties()
    if not serialised.endswith(b"\x01-"):
        raise RuntimeError(
            "py-amqp no longer serialises message_id last: the publisher's frame encoder "
            f"needs updating for amqp {getattr(amqp, '__version__', '?')}"
        )
    return serialised[:-2]


def write_frames(connection: Any, frames: bytes) -> None:
    """Write encoded frames on a py-amqp connection's socket, counted for its heartbeats."""
    connection.transport.write(frames)
    connection.bytes_sent += 1
