from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from conveyor import ExecutionContext, Task
from conveyor.core.serialization import InputDecodeError, deserialize_task, serialize_task


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: float
    y: float


@dataclass
class Region:
    name: str
    corners: list[Point]
    tags: dict[str, int] = field(default_factory=dict)


class NoFields(Task):
    def execute(self, context: ExecutionContext) -> None: ...


class OneString(Task):
    message: str

    def execute(self, context: ExecutionContext) -> None: ...


class Everything(Task):
    region: Region
    color: Color
    ident: uuid.UUID
    when: dt.datetime
    day: dt.date
    amount: Decimal
    path: Path
    pair: tuple[int, str]
    maybe: int | None
    numbers: set[int]
    raw: bytes
    scratch: str = field(default="local", metadata={"skip_serialization": True})

    def execute(self, context: ExecutionContext) -> None: ...


def test_no_fields_encode_to_empty_bytes() -> None:
    assert serialize_task(NoFields()) == b""
    assert deserialize_task(NoFields, b"") == NoFields()


def test_one_field_encodes_to_the_value_itself() -> None:
    assert serialize_task(OneString("Hello")) == b'"Hello"'
    assert deserialize_task(OneString, b'"Hello"') == OneString("Hello")


def test_rich_types_round_trip() -> None:
    task = Everything(
        region=Region("eu", [Point(1.5, 2.0), Point(-1, 0)], {"a": 1}),
        color=Color.BLUE,
        ident=uuid.uuid4(),
        when=dt.datetime(2026, 11, 28, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        day=dt.date(2026, 1, 2),
        amount=Decimal("12.50"),
        path=Path("/data/x.tif"),
        pair=(1, "one"),
        maybe=None,
        numbers={3, 1},
        raw=b"\x00\xff",
        scratch="not sent",
    )
    data = serialize_task(task)
    assert b"not sent" not in data
    back = deserialize_task(Everything, data)
    assert back.scratch == "local"
    back.scratch = "not sent"
    assert back == task
    assert back.when.utcoffset() == dt.timedelta(hours=2)


@pytest.mark.parametrize(
    ("cls", "data", "match"),
    [
        (OneString, b"\xff\xfe", "not valid UTF-8 JSON"),
        (OneString, b"{not json", "not valid UTF-8 JSON"),
        (OneString, b"42", "expected a string"),
        (Everything, b"[1, 2]", "must be a JSON object"),
        (Everything, b'{"bogus": 1}', "unknown fields"),
        (NoFields, b'"x"', "takes no input"),
    ],
)
def test_undecodable_input_raises_a_clear_error(cls: type[Task], data: bytes, match: str) -> None:
    with pytest.raises(InputDecodeError, match=match):
        deserialize_task(cls, data)


def test_values_that_are_not_json_are_refused() -> None:
    class Holder(Task):
        value: object

        def execute(self, context: ExecutionContext) -> None: ...

    with pytest.raises(TypeError, match="Cannot serialise"):
        serialize_task(Holder(object()))
    with pytest.raises(ValueError, match="JSON"):
        serialize_task(Holder(float("nan")))


def test_type_directed_decoding_of_unions_literals_and_collections() -> None:
    from typing import Annotated, Literal

    from conveyor.core.serialization import from_jsonable, to_jsonable

    assert from_jsonable(None, int | None) is None
    assert from_jsonable("x", int | str) == "x"
    with pytest.raises(ValueError, match="matches none"):
        from_jsonable([1], int | str)
    assert from_jsonable("a", Literal["a", "b"]) == "a"
    with pytest.raises(ValueError, match="is not one of"):
        from_jsonable("c", Literal["a", "b"])
    assert from_jsonable(3, Annotated[int, "meta"]) == 3
    assert from_jsonable({"1": [1, 2]}, dict[str, frozenset[int]]) == {"1": frozenset({1, 2})}
    assert from_jsonable([1, 2, 3], tuple[int, ...]) == (1, 2, 3)
    assert from_jsonable(1.5, dt.timedelta) == dt.timedelta(seconds=1.5)
    assert from_jsonable("12:30:00", dt.time) == dt.time(12, 30)
    assert from_jsonable(2, float) == 2.0
    for value, hint in [
        (True, int),
        ("1", int),
        (1, bool),
        ("x", float),
        (1, str),
        ({}, list[int]),
    ]:
        with pytest.raises(TypeError):
            from_jsonable(value, hint)
    assert to_jsonable(dt.timedelta(seconds=2)) == 2.0
    assert to_jsonable((1, "a"), tuple[int, str]) == [1, "a"]
    assert to_jsonable({1: Color.RED}) == {"1": "red"}
