"""The job-facts read of every completion stays O(1) as a job's roots complete.

Its ``all_roots_complete`` probe was ``NOT EXISTS (open root)``; PostgreSQL served it by
filtering ``NOT complete`` over every root completed so far, so a drain of one big job slowed
down as it went (bench/README.md, migration 0005). Buffers read are counted with EXPLAIN.
"""

from __future__ import annotations

import json
from typing import Any

from conveyor.core import usecases
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask
from conveyor.core.usecases import Policy
from conveyor.store_sql import SqlStore

LEAF = TaskIdentifier("Leaf", "v1.0")
POLICY = Policy(publish=False)


def leaf() -> NewTask:
    return NewTask(TaskId(uuid7()), "default", LEAF, b'"x"', "Leaf")


def test_the_job_facts_read_few_buffers_after_thousands_of_roots_completed(
    pg_store: SqlStore,
) -> None:
    roots = [leaf() for _ in range(3000)]
    job, _ = pg_store.run(lambda tx: usecases.submit_job(tx, "drain", roots, POLICY))

    def one(tx: Any, task_id: TaskId) -> None:
        claimed = usecases.claim(tx, task_id, "default", "r", 30.0)
        assert isinstance(claimed, ClaimedTask)
        usecases.complete(tx, task_id, claimed.attempt, [], None, {}, POLICY)

    for root in roots[:2500]:  # in queue order, as a drain runs them
        pg_store.run(lambda tx, task_id=root.id: one(tx, task_id))  # type: ignore[misc]

    def explain(tx: Any) -> dict[str, Any]:
        ex = tx.executor
        sql, defaults = ex.sql.driver_sql(ex.sql.job_facts, ex.conn.dialect)
        rows, _ = ex.driver_rows(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, {**defaults, "p_job_id": job.id}
        )
        plan = next(iter(rows[0].values()))
        return (json.loads(plan) if isinstance(plan, str) else plan)[0]  # type: ignore[no-any-return]

    plan = pg_store.run(explain)
    buffers = plan["Plan"].get("Shared Hit Blocks", 0) + plan["Plan"].get("Shared Read Blocks", 0)
    assert buffers < 60, f"job facts read {buffers} buffers after 2,500 completed roots"
