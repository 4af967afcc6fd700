"""The transactional outbox in SQL (``Outbox``): the task rows are the outbox.

A task to dispatch has ``publish_pending`` set and a publish lease (``publish_after``): the
writer publishes after commit and marks the rows published; the sweep takes the lease of rows
whose lease passed (``FOR UPDATE SKIP LOCKED``, so sweepers never wait for each other) and
publishes them again. :class:`PgOutbox` marks any number of rows in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, or_, select, true, update

from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import DispatchMessage
from conveyor.store_sql.executor import Executor, PgExecutor
from conveyor.store_sql.rows import chunks, messages_from
from conveyor.store_sql.schema import tasks
from conveyor.store_sql.statements import PG_MARK_PUBLISHED, QUEUED, ZERO

#: What a dispatch message is made of (:func:`.rows.messages_from`).
_MESSAGE_COLUMNS = (tasks.c.id, tasks.c.job_id, tasks.c.cluster, tasks.c.name, tasks.c.version)


class SqlOutbox:
    """The ``Outbox`` part of one transaction."""

    def __init__(self, ex: Executor) -> None:
        self._ex = ex

    def republish_ready(self, job_id: JobId, lease_seconds: float) -> list[DispatchMessage]:
        stmt = (
            update(tasks)
            .where(tasks.c.job_id == job_id, tasks.c.state == QUEUED, tasks.c.deps_open == ZERO)
            .values(publish_pending=True, publish_after=self._ex.later_expr("lease"))
            .returning(*_MESSAGE_COLUMNS)
        )
        result = self._ex.execute(stmt, self._ex.times(lease=lease_seconds))
        return messages_from(r._mapping for r in result)

    def mark_published(self, task_ids: Sequence[TaskId]) -> None:
        """An ``UPDATE … WHERE id IN (…)`` per chunk of ids."""
        ids = list(task_ids)
        if not ids:
            return
        stmt = (
            update(tasks)
            .where(
                tasks.c.id.in_(bindparam("ids", expanding=True)), tasks.c.publish_pending == true()
            )
            .values(publish_pending=False, published_at=self._ex.now_expr())
        )
        for chunk in chunks(ids):
            self._ex.execute(stmt, {"ids": list(chunk), **self._ex.times()})

    def claim_unpublished(self, lease_seconds: float, limit: int) -> list[DispatchMessage]:
        """Take the publish lease of due outbox rows (``FOR UPDATE SKIP LOCKED`` on PG)."""
        outbox = tasks.alias("outbox")
        due = (
            select(outbox.c.id)
            .where(
                outbox.c.publish_pending == true(),
                or_(
                    outbox.c.publish_after.is_(None),
                    outbox.c.publish_after <= self._ex.now_expr(),
                ),
            )
            .order_by(outbox.c.publish_after)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            update(tasks)
            .where(tasks.c.id.in_(due.scalar_subquery()), tasks.c.publish_pending == true())
            .values(publish_after=self._ex.later_expr("lease"))
            .returning(*_MESSAGE_COLUMNS)
        )
        result = self._ex.execute(stmt, self._ex.times(lease=lease_seconds))
        return messages_from(r._mapping for r in result)


class PgOutbox(SqlOutbox):
    """PostgreSQL: ``mark_published`` of any number of ids in one statement."""

    def __init__(self, ex: PgExecutor) -> None:
        super().__init__(ex)
        self._pgx = ex

    def mark_published(self, task_ids: Sequence[TaskId]) -> None:
        """One ``UPDATE … WHERE id = ANY(array)`` per call (:data:`.statements.PG_MARK_PUBLISHED`,
        which skips rows another transaction holds): an expanded IN list of thousands of ids
        cost more Python time to render than the update took (a 100k fan-out is marked in
        chunks of 5,000 right after each is confirmed)."""
        ids = list(task_ids)
        if ids:
            self._pgx.driver_rows(PG_MARK_PUBLISHED, {"p_ids": ids})
