"""Indexes for the monitoring queries (web UI, metrics) at 10^6 tasks.

* ``ix_tasks_parent_id_id`` (parent, id) replaces ``ix_tasks_parent_id``: the same walks down
  the tree, and keyset pages of a task's children in id order without sorting a fan-out.
* ``ix_tasks_roots``: a job's root tasks (partial: ``parent_id IS NULL``).
* ``ix_tasks_failed``: recent failures (partial: FAILED / FAILED_OPTIONAL rows only).
* ``ix_task_attempts_ended_at``: attempts ended since an instant (tasks/s, duration histogram).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (name, table, columns, partial-index predicate on both dialects)
INDEXES: list[tuple[str, str, list[str], str | None]] = [
    ("ix_tasks_parent_id_id", "tasks", ["parent_id", "id"], None),
    ("ix_tasks_roots", "tasks", ["job_id", "id"], "parent_id IS NULL"),
    ("ix_tasks_failed", "tasks", ["stopped_at"], "state IN ('FAILED', 'FAILED_OPTIONAL')"),
    ("ix_task_attempts_ended_at", "task_attempts", ["ended_at"], None),
]


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        op.create_index(
            name,
            table,
            columns,
            postgresql_where=sa.text(where) if where else None,
            sqlite_where=sa.text(where) if where else None,
        )
    op.drop_index("ix_tasks_parent_id", table_name="tasks")


def downgrade() -> None:
    op.create_index("ix_tasks_parent_id", "tasks", ["parent_id"])
    for name, table, *_ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
