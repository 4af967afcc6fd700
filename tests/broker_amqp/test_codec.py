"""Decoding a delivery: what is poison (dead-lettered with a reason) and what is delivered."""

from __future__ import annotations

import json
import uuid

import pytest

from conveyor.broker_amqp._codec import MAX_BODY_BYTES, NAME_HEADER, PoisonMessage, decode


def test_an_oversized_body_is_poison_before_it_is_parsed() -> None:
    body = json.dumps({"task_id": str(uuid.uuid4()), "pad": "x" * MAX_BODY_BYTES}).encode()
    with pytest.raises(PoisonMessage, match=r"the body is [\d,]+ bytes, more than"):
        decode(body, None)


@pytest.mark.parametrize("value", [b"\xff\xfe", 7])
def test_an_identifier_header_that_is_not_text_is_poison(value: object) -> None:
    body = json.dumps({"task_id": str(uuid.uuid4()), "name": "it.Quick", "version": "v1.0"})
    with pytest.raises(PoisonMessage, match=f"the {NAME_HEADER} header is not UTF-8 text"):
        decode(body.encode(), {NAME_HEADER: value, "x-conveyor-version": "v1.0"})


def test_utf8_headers_as_bytes_are_read() -> None:
    task_id = uuid.uuid4()
    decoded = decode(
        json.dumps({"task_id": str(task_id)}).encode(),
        {NAME_HEADER: "é.Task".encode(), "x-conveyor-version": b"v1.2"},
    )
    assert decoded.task_id == task_id
    assert decoded.identifier is not None and decoded.identifier.version == "v1.2"
