"""Initial tables of the state store, with the ``default`` cluster.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from conveyor.store_sql.schema import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    clusters = op.create_table(
        "clusters",
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("deletable", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("slug", name="pk_clusters"),
    )
    op.bulk_insert(clusters, [{"slug": "default", "display_name": "Default", "deletable": False}])
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cluster", sa.String(63), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("root_count", sa.Integer(), nullable=False),
        sa.Column("submitted_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
    )
    op.create_index("uq_jobs_idempotency_key", "jobs", ["idempotency_key"], unique=True)
    op.create_table(
        "tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("cluster", sa.String(63), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("major", sa.Integer(), nullable=False),
        sa.Column("minor", sa.Integer(), nullable=False),
        sa.Column("input", sa.LargeBinary(), nullable=False),
        sa.Column("display", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("depends_on", sa.Text(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("optional", sa.Boolean(), nullable=False),
        sa.Column("optional_path", sa.Text(), nullable=False),
        sa.Column("timeout", sa.Float(), nullable=True),
        sa.Column("retry_count", sa.Integer(), nullable=False),
        sa.Column("crash_count", sa.Integer(), nullable=False),
        sa.Column("system_requeues", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("deps_open", sa.Integer(), nullable=False),
        sa.Column("open_children", sa.Integer(), nullable=False),
        sa.Column("complete", sa.Boolean(), nullable=False),
        sa.Column("subtree_failed", sa.Boolean(), nullable=False),
        sa.Column("runner_id", sa.Text(), nullable=True),
        sa.Column("lease_expires", UtcDateTime(), nullable=True),
        sa.Column("not_before", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("stopped_at", UtcDateTime(), nullable=True),
        sa.Column("error_type", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_traceback", sa.Text(), nullable=True),
        sa.Column("publish_pending", sa.Boolean(), nullable=False),
        sa.Column("publish_after", UtcDateTime(), nullable=True),
        sa.Column("published_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tasks"),
    )
    op.create_table(
        "task_dependencies",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("depends_on_id", sa.Uuid(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "depends_on_id", name="pk_task_dependencies"),
    )
    op.create_index("ix_task_dependencies_depends_on_id", "task_dependencies", ["depends_on_id"])
    op.create_table(
        "task_attempts",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("runner_id", sa.Text(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("error_type", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_traceback", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("task_id", "attempt", name="pk_task_attempts"),
    )
    op.create_table(
        "task_progress",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("unlabeled", sa.Boolean(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "task_id", "attempt", "unlabeled", "label", name="pk_task_progress"
        ),
    )
    op.create_table(
        "runners",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("cluster", sa.String(63), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("identifiers", sa.Text(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("last_seen", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("current_task", sa.Uuid(), nullable=True),
        sa.Column("tasks_computed", sa.Integer(), nullable=False),
        sa.Column("tasks_failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runners"),
    )


def downgrade() -> None:
    for table in (
        "runners",
        "task_progress",
        "task_attempts",
        "task_dependencies",
        "tasks",
        "jobs",
        "clusters",
    ):
        op.drop_table(table)
