"""JSON (never pickle) encoding of task inputs, directed by the task's type hints.

Follows Tilebox's wire shape so inputs stay readable and portable: a task with no fields encodes to
``b""``, a task with one field to the JSON of that field's value, a task with several fields to a
JSON object keyed by field name. Values are converted by their declared types, so nested
dataclasses, enums, UUIDs, datetimes, decimals and paths round-trip to the same Python objects.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import types
import typing
import uuid
import weakref
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any, TypeVar

from conveyor.core.errors import InputDecodeError as InputDecodeError  # re-exported

T = TypeVar("T")

#: Field metadata key that keeps a field out of the serialised input (Tilebox's name).
SKIP_SERIALIZATION = "skip_serialization"


def serialized_fields(cls: type) -> list[dataclasses.Field[Any]]:
    """The dataclass fields that travel in a task's input."""
    return [
        f
        for f in dataclasses.fields(cls)
        if not f.metadata.get(SKIP_SERIALIZATION, False) and f.init
    ]


def serialize_task(task: object) -> bytes:
    """Encode a task instance's input as UTF-8 JSON bytes (Tilebox's single/multi field shape)."""
    fields = serialized_fields(type(task))
    if not fields:
        return b""
    hints = _type_hints(type(task))
    if len(fields) == 1:
        field = fields[0]
        payload = to_jsonable(getattr(task, field.name), hints.get(field.name, Any))
    else:
        payload = {
            f.name: to_jsonable(getattr(task, f.name), hints.get(f.name, Any)) for f in fields
        }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def deserialize_task(cls: type[T], data: bytes) -> T:
    """Rebuild a task instance from its input bytes.

    Raises:
        InputDecodeError: the bytes are not UTF-8 JSON, or do not match the task's fields.
    """
    fields = serialized_fields(cls)
    hints = _type_hints(cls)
    if not fields:
        if data.strip():
            raise InputDecodeError(f"{cls.__name__} takes no input, got {data[:80]!r}")
        return cls()
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDecodeError(f"{cls.__name__} input is not valid UTF-8 JSON: {exc}") from None
    try:
        if len(fields) == 1:
            field = fields[0]
            kwargs = {field.name: from_jsonable(payload, hints.get(field.name, Any))}
        else:
            if not isinstance(payload, dict):
                raise InputDecodeError(
                    f"{cls.__name__} input must be a JSON object with fields "
                    f"{[f.name for f in fields]}, got {type(payload).__name__}"
                )
            unknown = set(payload) - {f.name for f in fields}
            if unknown:
                raise InputDecodeError(f"{cls.__name__} input has unknown fields {sorted(unknown)}")
            kwargs = {
                f.name: from_jsonable(payload[f.name], hints.get(f.name, Any))
                for f in fields
                if f.name in payload
            }
        return cls(**kwargs)
    except InputDecodeError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise InputDecodeError(f"{cls.__name__} input does not fit its fields: {exc}") from None


#: Resolved type hints per class (``get_type_hints`` cost more than running a no-op task).
_HINTS: weakref.WeakKeyDictionary[type, dict[str, Any]] = weakref.WeakKeyDictionary()


def _type_hints(cls: type) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is not None:
        return found
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable forward references: fall back to untyped JSON
        return {}
    _HINTS[cls] = hints
    return hints


def to_jsonable(value: Any, hint: Any = Any) -> Any:
    """Convert a Python value into plain JSON types, guided by its declared type."""
    if value is None or isinstance(value, bool | int | str):
        return value.value if isinstance(value, enum.Enum) else value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} cannot be represented in JSON")
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        sub = _type_hints(type(value))
        return {
            f.name: to_jsonable(getattr(value, f.name), sub.get(f.name, Any))
            for f in dataclasses.fields(value)
            if not f.metadata.get(SKIP_SERIALIZATION, False)
        }
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal | PurePath):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        key_hint, value_hint = _args(hint, 2)
        return {str(to_jsonable(k, key_hint)): to_jsonable(v, value_hint) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset):
        args = typing.get_args(hint)
        if typing.get_origin(hint) is tuple and args and args[-1] is not Ellipsis:
            return [to_jsonable(v, h) for v, h in zip(value, args, strict=False)]
        (item_hint,) = _args(hint, 1)
        return [to_jsonable(v, item_hint) for v in value]
    raise TypeError(f"Cannot serialise a value of type {type(value).__name__} to JSON")


def _args(hint: Any, n: int) -> tuple[Any, ...]:
    args = typing.get_args(hint)
    if len(args) >= n:
        return tuple(args[:n]) if n > 1 else (args[0],)
    return (Any,) * n


def from_jsonable(value: Any, hint: Any) -> Any:
    """Convert plain JSON back into the Python type ``hint`` declares."""
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    if origin is typing.Annotated:
        return from_jsonable(value, typing.get_args(hint)[0])
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return from_jsonable(value, arg)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(str(exc))
        raise ValueError(f"{value!r} matches none of {hint}: {'; '.join(errors)}")
    if origin is typing.Literal:
        if value not in typing.get_args(hint):
            raise ValueError(f"{value!r} is not one of {typing.get_args(hint)}")
        return value
    if origin in (list, set, frozenset, tuple) or (
        isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
    ):
        if not isinstance(value, list):
            raise TypeError(f"expected a JSON array for {hint}, got {type(value).__name__}")
        args = typing.get_args(hint)
        if origin is tuple:
            if args and args[-1] is not Ellipsis:
                return tuple(from_jsonable(v, h) for v, h in zip(value, args, strict=True))
            return tuple(from_jsonable(v, args[0] if args else Any) for v in value)
        items = [from_jsonable(v, args[0] if args else Any) for v in value]
        if origin in (set, frozenset):
            return origin(items)
        return items
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object for {hint}, got {type(value).__name__}")
        key_hint, value_hint = _args(hint, 2)
        return {from_jsonable(k, key_hint): from_jsonable(v, value_hint) for k, v in value.items()}
    if not isinstance(hint, type):
        return value
    if hint is type(None):
        if value is not None:
            raise TypeError(f"expected null, got {value!r}")
        return None
    if issubclass(hint, enum.Enum):
        return hint(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected a boolean, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object for {hint.__name__}, got {value!r}")
        sub = _type_hints(hint)
        return hint(**{k: from_jsonable(v, sub.get(k, Any)) for k, v in value.items()})
    if issubclass(hint, dt.datetime):
        return dt.datetime.fromisoformat(value)
    if issubclass(hint, dt.date):
        return dt.date.fromisoformat(value)
    if issubclass(hint, dt.time):
        return dt.time.fromisoformat(value)
    if issubclass(hint, dt.timedelta):
        return dt.timedelta(seconds=value)
    if issubclass(hint, uuid.UUID):
        return uuid.UUID(value)
    if issubclass(hint, Decimal):
        return Decimal(value)
    if issubclass(hint, PurePath):
        return Path(value) if hint is PurePath else hint(value)
    if issubclass(hint, bytes):
        return base64.b64decode(value)
    if issubclass(hint, dict | list):
        return hint(value)
    return value
