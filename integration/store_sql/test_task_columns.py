"""The task columns written down outside schema.py agree with it: the PL/pgSQL finish function
and the columns ``save_task`` writes.

``conveyor_finish_computed`` (migrations 0004/0005) returns every task column and declares them,
with their types, in its ``RETURNS TABLE``; the list was copied by hand into migration 0004, so a
column added to the tasks table would silently be missing from every task the fused completion
returns (or break it) until a migration re-creates the function.

A test rather than a generated list, because a migration must stay what it was when it shipped:
a function built from schema.py at upgrade time would, on a fresh database, name columns that
a later migration has not added yet (migrations run in order, schema.py describes the head).
So the migrations keep their frozen lists, and this test reads the function actually installed
on a database migrated to head (``pg_proc``) and fails, naming the columns, when it disagrees
with schema.py's tasks table: then write a migration that re-creates the function.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import text

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import TaskRecord, TaskState
from conveyor.store_sql import SqlStore
from conveyor.store_sql.rows import mutable_values
from conveyor.store_sql.schema import MUTABLE_TASK_COLUMNS, tasks

FUNCTION = "conveyor_finish_computed"
#: What the function returns besides the task columns: before them, after them.
LEADING = ["r_kind", "r_tx_now"]
FACTS = ["r_job_state", "r_any_running", "r_any_failed", "r_any_work_done", "r_all_roots_complete"]


def schema_columns() -> list[str]:
    return [column.name for column in tasks.c]


def installed_function(store: SqlStore) -> tuple[list[tuple[str, str]], str]:
    """The function's result columns (name, type) and its body, from ``pg_proc``."""

    def read(tx: Any) -> tuple[list[tuple[str, str]], str]:
        row = (
            tx.connection.execute(
                text(
                    "SELECT p.proargnames, p.proargmodes, p.prosrc,"
                    " array(SELECT format_type(t, NULL) FROM unnest(p.proallargtypes) t)"
                    " FROM pg_proc p WHERE p.proname = :name"
                ),
                {"name": FUNCTION},
            )
            .mappings()
            .one()
        )
        names, modes, types = row["proargnames"], row["proargmodes"], row["array"]
        columns = [(n, t) for n, m, t in zip(names, modes, types, strict=True) if m == "t"]
        return columns, row["prosrc"]

    return store.run(read)


def table_types(store: SqlStore) -> dict[str, str]:
    """The tasks table's column types in the migrated database."""

    def read(tx: Any) -> dict[str, str]:
        rows = tx.connection.execute(
            text(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = 'tasks'::regclass AND attnum > 0 AND NOT attisdropped"
            )
        )
        return {name: type_ for name, type_ in rows}

    return store.run(read)


def test_the_finish_function_returns_every_task_column_of_schema_py(pg_store: SqlStore) -> None:
    declared, _ = installed_function(pg_store)
    names = [name for name, _ in declared]
    assert names[: len(LEADING)] == LEADING and names[-len(FACTS) :] == FACTS, names
    returned = [name.removeprefix("r_") for name in names[len(LEADING) : -len(FACTS)]]
    wanted = schema_columns()
    assert returned == wanted, (
        f"{FUNCTION} and schema.py's tasks table disagree: missing "
        f"{sorted(set(wanted) - set(returned))}, extra {sorted(set(returned) - set(wanted))}, "
        "or in another order. Write a migration that re-creates the function."
    )


def test_the_finish_function_declares_the_tables_column_types(pg_store: SqlStore) -> None:
    declared, _ = installed_function(pg_store)
    types = table_types(pg_store)
    columns = dict(declared[len(LEADING) : -len(FACTS)])
    differ = {
        name: (columns[f"r_{name}"], types[name])
        for name in schema_columns()
        if columns[f"r_{name}"] != types[name]
    }
    assert not differ, f"{FUNCTION} declares other types than the tasks table: {differ}"


def test_every_task_the_finish_function_returns_has_every_column(pg_store: SqlStore) -> None:
    """The task ('d'), released ('r') and parent ('p') rows come from three RETURNING lists."""
    _, body = installed_function(pg_store)
    lists = re.findall(r"RETURNING ([^\n]+)", body)
    assert len(lists) == 3, lists
    for listed in lists:
        returned = [name.strip().removeprefix("tasks.") for name in listed.split(",")]
        assert returned == schema_columns(), listed


def test_save_task_writes_exactly_the_mutable_columns() -> None:
    """``rows.mutable_values`` and the prebuilt UPDATE (built from ``MUTABLE_TASK_COLUMNS``)
    name the same columns, in the same order, and all of them exist."""
    task = TaskRecord(
        id=TaskId(uuid7()),
        job_id=JobId(uuid7()),
        parent_id=None,
        cluster="default",
        identifier=TaskIdentifier("Leaf", "v1.0"),
        input=b"",
        display="Leaf",
        state=TaskState.QUEUED,
    )
    assert tuple(mutable_values(task)) == MUTABLE_TASK_COLUMNS
    assert set(MUTABLE_TASK_COLUMNS) <= set(schema_columns())
