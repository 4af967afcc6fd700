"""Runner rows in SQL (``RunnerRows``): registration, heartbeats, silence, listing."""

from __future__ import annotations

from sqlalchemy import case, select, update

from conveyor.core.identifiers import TaskId
from conveyor.core.model import RunnerInfo
from conveyor.store_sql.executor import Executor
from conveyor.store_sql.limits import MAX_STATE, check_text
from conveyor.store_sql.rows import runner_from, runner_row
from conveyor.store_sql.schema import runners
from conveyor.store_sql.statements import lit


class SqlRunners:
    """The ``RunnerRows`` part of one transaction."""

    def __init__(self, ex: Executor) -> None:
        self._ex = ex

    def upsert_runner(self, runner: RunnerInfo) -> None:
        values = runner_row(runner, self._ex.now())
        stmt = self._ex.insert(runners).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[runners.c.id],
            set_={k: v for k, v in values.items() if k != "id"},
        )
        self._ex.execute(stmt)

    def runner_heartbeat(
        self, runner_id: str, current_task: TaskId | None, computed: int, failed: int
    ) -> None:
        stmt = (
            update(runners)
            .where(runners.c.id == runner_id)
            .values(
                last_seen=self._ex.now_expr(),
                current_task=current_task,
                tasks_computed=computed,
                tasks_failed=failed,
                state=case((runners.c.state == lit("gone"), lit("online")), else_=runners.c.state),
            )
        )
        self._ex.execute(stmt, self._ex.times())

    def set_runner_state(self, runner_id: str, state: str) -> None:
        check_text(state, "The runner state", MAX_STATE)
        self._ex.execute(update(runners).where(runners.c.id == runner_id).values(state=state))

    def mark_silent_runners(self, silent_seconds: float) -> int:
        stmt = (
            update(runners)
            .where(
                runners.c.state == lit("online"),
                runners.c.last_seen < self._ex.later_expr("ago"),
            )
            .values(state="gone")
        )
        return int(self._ex.execute(stmt, self._ex.times(ago=-silent_seconds)).rowcount)

    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]:
        stmt = select(runners).order_by(runners.c.last_seen.desc(), runners.c.id)
        if not include_gone:
            stmt = stmt.where(runners.c.state == lit("online"))
        return [runner_from(r._mapping) for r in self._ex.execute(stmt)]
