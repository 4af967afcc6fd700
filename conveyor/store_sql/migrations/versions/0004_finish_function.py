"""``conveyor_finish_computed``: a successful attempt without subtasks in one round trip.

PostgreSQL only (SQLite composes the finer statements). The function runs, as separate
statements, what ``SqlTx.finish_computed`` needs: the task COMPUTED (fenced on attempt and
state), its attempt row closed, its dependents released, its parent decremented and the job
row locked (lock order task → dependents → parent → job); then the job's facts, read by a new
statement, so their snapshot is taken after the job lock was granted (a single statement would
read them with the snapshot it started with, and miss a concurrent completion that committed
while it waited for the lock). Rows: ``r_kind`` 'd' the task, 'r' each dependent that became
ready, 'p' the parent, 'f' the job's facts; task columns are prefixed ``r_``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The task table's columns at this revision, with their PostgreSQL types.
TASK_COLUMNS: list[tuple[str, str]] = [
    ("id", "uuid"),
    ("job_id", "uuid"),
    ("parent_id", "uuid"),
    ("cluster", "varchar"),
    ("name", "text"),
    ("version", "varchar"),
    ("major", "integer"),
    ("minor", "integer"),
    ("input", "bytea"),
    ("display", "text"),
    ("state", "varchar"),
    ("depends_on", "text"),
    ("max_retries", "integer"),
    ("optional", "boolean"),
    ("optional_path", "text"),
    ("timeout", "double precision"),
    ("retry_count", "integer"),
    ("crash_count", "integer"),
    ("system_requeues", "integer"),
    ("attempt", "integer"),
    ("deps_open", "integer"),
    ("open_children", "integer"),
    ("complete", "boolean"),
    ("subtree_failed", "boolean"),
    ("runner_id", "text"),
    ("lease_expires", "timestamptz"),
    ("not_before", "timestamptz"),
    ("created_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("stopped_at", "timestamptz"),
    ("error_type", "text"),
    ("error_message", "text"),
    ("error_traceback", "text"),
    ("publish_pending", "boolean"),
    ("publish_after", "timestamptz"),
    ("published_at", "timestamptz"),
]
FACTS: list[tuple[str, str]] = [
    ("job_state", "varchar"),
    ("any_running", "boolean"),
    ("any_failed", "boolean"),
    ("any_work_done", "boolean"),
    ("all_roots_complete", "boolean"),
]

_OUT = ",\n    ".join(
    f"r_{name} {type_}"
    for name, type_ in [("kind", "text"), ("tx_now", "timestamptz"), *TASK_COLUMNS, *FACTS]
)
_NO_FACTS = ", ".join(f"NULL::{type_}" for _, type_ in FACTS)
_NO_TASK = ", ".join(f"NULL::{type_}" for _, type_ in TASK_COLUMNS)


def _cols(alias: str) -> str:
    return ", ".join(f"{alias}.{name}" for name, _ in TASK_COLUMNS)


FUNCTION = f"""
CREATE OR REPLACE FUNCTION conveyor_finish_computed(
    p_task_id uuid, p_attempt integer, p_display text, p_publish boolean,
    p_lease double precision)
RETURNS TABLE (
    {_OUT}
)
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    v_rows bigint;
    v_job uuid;
BEGIN
    RETURN QUERY
    WITH done AS (
        UPDATE tasks SET
            state = 'COMPUTED', stopped_at = now(), lease_expires = NULL, error_type = NULL,
            error_message = NULL, error_traceback = NULL, open_children = 0, complete = true,
            display = COALESCE(p_display, tasks.display)
        WHERE tasks.id = p_task_id AND tasks.attempt = p_attempt AND tasks.state = 'RUNNING'
        RETURNING {_cols("tasks")}
    ), ended AS (
        UPDATE task_attempts SET ended_at = now(), outcome = 'computed', error_type = NULL,
            error_message = NULL, error_traceback = NULL
        FROM done
        WHERE task_attempts.task_id = done.id AND task_attempts.attempt = p_attempt
    ), released AS (
        UPDATE tasks SET
            deps_open = tasks.deps_open - e.n,
            publish_pending = CASE WHEN p_publish AND tasks.deps_open - e.n = 0
                AND tasks.state = 'QUEUED' THEN true ELSE tasks.publish_pending END,
            publish_after = CASE WHEN p_publish AND tasks.deps_open - e.n = 0
                AND tasks.state = 'QUEUED'
                THEN now() + interval '1 second' * p_lease ELSE tasks.publish_after END
        FROM task_dependencies e, done
        WHERE e.depends_on_id = done.id AND tasks.id = e.task_id
        RETURNING {_cols("tasks")}
    ), parent AS (
        UPDATE tasks SET open_children = tasks.open_children - 1 FROM done
        WHERE tasks.id = done.parent_id
        RETURNING {_cols("tasks")}
    ), job AS (
        SELECT jobs.id FROM jobs JOIN done ON jobs.id = done.job_id FOR NO KEY UPDATE OF jobs
    )
    SELECT 'd'::text, now(), {_cols("done")}, {_NO_FACTS} FROM done
    UNION ALL SELECT 'r', now(), {_cols("released")}, {_NO_FACTS}
        FROM released WHERE released.state = 'QUEUED' AND released.deps_open = 0
    UNION ALL SELECT 'p', now(), {_cols("parent")}, {_NO_FACTS} FROM parent
    UNION ALL SELECT 'j', now(), {_NO_TASK}, {_NO_FACTS} FROM job;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    IF v_rows = 0 THEN
        RETURN;
    END IF;
    SELECT tasks.job_id INTO v_job FROM tasks WHERE tasks.id = p_task_id;
    RETURN QUERY
    SELECT 'f'::text, now(), {_NO_TASK},
        jobs.state,
        EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = v_job AND tasks.state = 'RUNNING'),
        EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = v_job AND tasks.state = 'FAILED'),
        EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = v_job
                AND tasks.state IN ('COMPUTED', 'FAILED_OPTIONAL', 'SKIPPED'))
        OR EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = v_job
                   AND tasks.state IN ('RUNNING', 'FAILED')
                   AND (tasks.attempt > 0 OR tasks.retry_count > 0))
        OR EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = v_job
                   AND tasks.state = 'QUEUED' AND tasks.attempt > 0),
        NOT EXISTS (SELECT 1 FROM tasks WHERE tasks.job_id = v_job
                    AND tasks.parent_id IS NULL AND NOT tasks.complete)
    FROM jobs WHERE jobs.id = v_job;
END
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "DROP FUNCTION IF EXISTS conveyor_finish_computed("
            "uuid, integer, text, boolean, double precision)"
        )
