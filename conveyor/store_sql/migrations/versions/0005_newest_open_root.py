"""Job facts: find an open root from the newest end, and drop ``ix_tasks_open_roots``.

``all_roots_complete`` was ``NOT EXISTS`` (an incomplete root of the job). Measured on a drain
of 8,000 root tasks in one job (bench/README.md, "The open-roots probe"): PostgreSQL served it
from ``ix_tasks_roots`` and filtered ``NOT complete`` in the heap, or by a sequential scan,
depending on the statistics of the moment; either way it stepped over every root completed so
far (2,900 buffers per completion after 7,000 tasks), so each completion cost O(tasks done) and
a long drain slowed down by half. Now the probe takes the newest incomplete root,
``ORDER BY id DESC LIMIT 1``: a backward scan of ``ix_tasks_roots`` that stops at the first open
root, which is at the newest end whenever roots run in submission (queue) order. Out-of-order
completions cost at most what the old probe always cost.

``ix_tasks_open_roots`` served the old probe only (when the planner chose it): dropped, one
index entry less per update of an incomplete root.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PREVIOUS = importlib.import_module("conveyor.store_sql.migrations.versions.0004_finish_function")
_OLD_PROBE = """NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = v_job
                    AND tasks.parent_id IS NULL AND NOT tasks.complete)"""
_NEW_PROBE = """(SELECT tasks.id FROM tasks WHERE tasks.job_id = v_job
         AND tasks.parent_id IS NULL AND NOT tasks.complete
         ORDER BY tasks.id DESC LIMIT 1) IS NULL"""
assert _OLD_PROBE in _PREVIOUS.FUNCTION
FUNCTION = _PREVIOUS.FUNCTION.replace(_OLD_PROBE, _NEW_PROBE)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)
    op.drop_index("ix_tasks_open_roots", table_name="tasks")


def downgrade() -> None:
    op.create_index(
        "ix_tasks_open_roots",
        "tasks",
        ["job_id"],
        postgresql_where=sa.text("parent_id IS NULL AND NOT complete"),
        sqlite_where=sa.text("parent_id IS NULL AND complete = 0"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PREVIOUS.FUNCTION)
