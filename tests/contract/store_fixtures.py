"""What every store contract suite shares: the ``store`` fixture an adapter provides, and
helpers that build jobs and tasks through the use cases (so rows are formed as in production).

One contract class per part of the store port (``tests/contract/*_contract.py``); an adapter's
test module subclasses each and overrides ``store`` with a fresh, empty store (only the
``default`` cluster). pyeventsourcing's recorder test cases are the model.
"""

from __future__ import annotations

from typing import Any

import pytest

from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import JobRecord, NewTask, RegisteredIdentifier, TaskRecord
from conveyor.core.ports import Store
from conveyor.core.usecases import Policy, submit_job

POLICY = Policy()
LEAF = TaskIdentifier("Leaf", "v1.2")


def spec(ident: TaskIdentifier = LEAF, cluster: str = "default", **kw: Any) -> NewTask:
    return NewTask(
        id=TaskId(uuid7()),
        cluster=cluster,
        identifier=ident,
        input=b'{"x":1}',
        display=ident.name,
        **kw,
    )


def new_job(store: Store, *roots: NewTask, name: str = "job", key: str | None = None) -> JobRecord:
    roots = roots or (spec(),)
    job, _ = store.run(lambda tx: submit_job(tx, name, list(roots), POLICY, key))
    return job


def child_record(parent: TaskRecord, **overrides: Any) -> TaskRecord:
    values: dict[str, Any] = dict(
        id=TaskId(uuid7()),
        job_id=parent.job_id,
        parent_id=parent.id,
        cluster=parent.cluster,
        identifier=LEAF,
        input=b"1",
        display="Child",
    )
    values.update(overrides)
    return TaskRecord(**values)


REG = [RegisteredIdentifier("Leaf", 1, 2)]


class StoreFixture:
    """Base of every store contract class: subclasses provide ``store``."""

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError
