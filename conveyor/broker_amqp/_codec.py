"""The dispatch message on the wire: a small JSON body plus headers, never pickle.

Body (``application/json``)::

    {"task_id": "…uuid…", "job_id": "…uuid…", "cluster": "default",
     "name": "Leaf", "version": "v1.0"}

Headers ``x-conveyor-name`` and ``x-conveyor-version`` repeat the identifier so it can be read (and
checked against the queue) without parsing the body; the routing key only carries a hash of the
name. ``message_id`` is the task id.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import DispatchMessage

CONTENT_TYPE: Final = "application/json"
NAME_HEADER: Final = "x-conveyor-name"
VERSION_HEADER: Final = "x-conveyor-version"
#: Set on dead letters: why the message was taken out of circulation.
REASON_HEADER: Final = "x-conveyor-dead-reason"
#: Set on dead letters: the queue the message was consumed from.
SOURCE_HEADER: Final = "x-conveyor-dead-source"
#: AMQP ``delivery_mode`` of persistent messages.
PERSISTENT: Final = 2
#: A dispatch message is about 200 bytes; anything past this is not one of ours and is
#: dead-lettered unparsed (a multi-megabyte JSON body would cost every runner that meets it).
MAX_BODY_BYTES: Final = 64 * 1024


def encode(message: DispatchMessage) -> tuple[bytes, dict[str, Any]]:
    """The JSON body and headers of a dispatch message."""
    ident = message.identifier
    body = json.dumps(
        {
            "task_id": str(message.task_id),
            "job_id": str(message.job_id),
            "cluster": message.cluster,
            "name": ident.name,
            "version": ident.version,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")
    return body, {NAME_HEADER: ident.name, VERSION_HEADER: ident.version}


class PoisonMessage(ValueError):
    """A message that cannot name a task to claim: it is dead-lettered, never delivered."""


@dataclass(frozen=True, slots=True)
class Decoded:
    """What a consumer hands to the runner."""

    task_id: TaskId
    job_id: JobId | None
    identifier: TaskIdentifier | None


def _text(value: object) -> str | None:
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def _header(headers: Mapping[str, Any], key: str) -> str | None:
    """A text header, None when absent; a present one that is not UTF-8 text is poison."""
    value = headers.get(key)
    if value is None:
        return None
    text = _text(value)
    if text is None:
        shown = bytes(value[:40]) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise PoisonMessage(f"the {key} header is not UTF-8 text ({shown!r})")
    return text


def _uuid(value: object) -> uuid.UUID | None:
    text = _text(value)
    if text is None:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def decode(body: bytes | str, headers: Mapping[str, Any] | None) -> Decoded:
    """Parse a delivery.

    The identifier comes from the headers when they carry one, else from the body; the runner
    checks it (a mismatch with the queue is the runner's to drop, not a poison message).

    Raises:
        PoisonMessage: larger than :data:`MAX_BODY_BYTES`, not JSON, not an object, no valid
            task id, or an identifier that is present but invalid (not UTF-8 text included).
    """
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if len(raw) > MAX_BODY_BYTES:
        raise PoisonMessage(
            f"the body is {len(raw):,} bytes, more than a dispatch message's {MAX_BODY_BYTES:,}"
        )
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PoisonMessage(f"the body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PoisonMessage(f"the body is JSON but not an object ({type(data).__name__})")
    if "task_id" not in data:
        raise PoisonMessage("the body names no task (no task_id)")
    task_id = _uuid(data["task_id"])
    if task_id is None:
        raise PoisonMessage(f"the task_id {str(data['task_id'])[:80]!r} is not a UUID")
    job_id = _uuid(data.get("job_id"))
    headers = headers or {}
    name = _header(headers, NAME_HEADER)
    version = _header(headers, VERSION_HEADER)
    if name is None and version is None:
        name, version = _text(data.get("name")), _text(data.get("version"))
    identifier: TaskIdentifier | None = None
    if name is not None or version is not None:
        try:
            identifier = TaskIdentifier(name or "", version or "")
        except ValueError as exc:
            raise PoisonMessage(f"the message's task identifier is invalid: {exc}") from None
    return Decoded(TaskId(task_id), JobId(job_id) if job_id else None, identifier)
