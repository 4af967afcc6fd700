"""Indexes that keep claims, sweeps, job facts and listings O(changed rows) at 10^6 tasks.

Partial-index predicates are written per dialect the way SQLAlchemy renders the queries'
conditions (see ``conveyor/store_sql/schema.py``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (name, table, columns, PostgreSQL predicate, SQLite predicate)
INDEXES: list[tuple[str, str, list[str], str | None, str | None]] = [
    ("ix_jobs_state_id", "jobs", ["state", "id"], None, None),
    (
        "ix_tasks_claimable",
        "tasks",
        ["cluster", "name", "major", "id", "minor"],
        "state = 'QUEUED' AND deps_open = 0",
        "state = 'QUEUED' AND deps_open = 0",
    ),
    ("ix_tasks_job_id_id", "tasks", ["job_id", "id"], None, None),
    ("ix_tasks_job_id_state", "tasks", ["job_id", "state"], None, None),
    ("ix_tasks_parent_id", "tasks", ["parent_id"], None, None),
    (
        "ix_tasks_lease_expires",
        "tasks",
        ["lease_expires"],
        "state = 'RUNNING'",
        "state = 'RUNNING'",
    ),
    ("ix_tasks_outbox", "tasks", ["publish_after"], "publish_pending", "publish_pending = 1"),
    (
        "ix_tasks_open_roots",
        "tasks",
        ["job_id"],
        "parent_id IS NULL AND NOT complete",
        "parent_id IS NULL AND complete = 0",
    ),
    (
        "ix_tasks_requeued",
        "tasks",
        ["job_id"],
        "state = 'QUEUED' AND attempt > 0",
        "state = 'QUEUED' AND attempt > 0",
    ),
    ("ix_runners_state_last_seen", "runners", ["state", "last_seen"], None, None),
]


def upgrade() -> None:
    for name, table, columns, pg_where, sqlite_where in INDEXES:
        op.create_index(
            name,
            table,
            columns,
            postgresql_where=sa.text(pg_where) if pg_where else None,
            sqlite_where=sa.text(sqlite_where) if sqlite_where else None,
        )


def downgrade() -> None:
    for name, table, *_ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
