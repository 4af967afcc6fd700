"""Driver errors reach callers as conveyor's error kinds (the CLI and the web answer by kind)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from conveyor.core.errors import (
    AlreadyExistsError,
    ConveyorError,
    InfrastructureError,
    InvalidValueError,
)
from conveyor.store_sql import SqlStore


def test_a_rejected_value_is_an_invalid_value_error_and_a_value_error(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'kinds.db'}")
    try:
        rejected = store._translate(DataError("INSERT …", {}, Exception("value too long")))
        taken = store._translate(IntegrityError("INSERT …", {}, Exception("UNIQUE failed")))
        other = store._translate(OperationalError("SELECT …", {}, Exception("disk I/O error")))
    finally:
        store.close()
    assert isinstance(rejected, InvalidValueError) and isinstance(rejected, ValueError)
    assert "The database rejected a value" in str(rejected)
    assert isinstance(taken, AlreadyExistsError)
    assert isinstance(other, InfrastructureError)
    assert all(isinstance(e, ConveyorError) for e in (rejected, taken, other))
