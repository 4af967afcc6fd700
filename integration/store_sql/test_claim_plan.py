"""The claim is a primary-key lookup in every plan PostgreSQL may cache for it.

psycopg prepares the claim after a few executions and PostgreSQL may then keep a generic plan.
On a young database (statistics not gathered yet) that plan scanned the whole partial index
``ix_tasks_claimable`` for ``id = $3``: O(queued tasks) per claim, a 100,000-subtask fan-out at
210 tasks/s instead of ~830 (bench/fanout_rate.py, auto_explain).
"""

from __future__ import annotations

import re

import psycopg

from conveyor.core import usecases
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import JobState, NewTask
from conveyor.core.usecases import Policy
from conveyor.store_sql import SqlStore
from conveyor.store_sql.statements import pg_claim_task

LEAF = TaskIdentifier("Leaf", "v1.0")
TYPES = {
    "p_runner_id": "text",
    "lease": "float8",
    "p_task_id": "uuid",
    "p_cluster": "text",
    "p_job_state": "text",
}


def test_the_generic_plan_of_the_claim_uses_the_primary_key(postgres_empty_database: str) -> None:
    store = SqlStore(postgres_empty_database)  # a young database: never analyzed
    tasks = [NewTask(TaskId(uuid7()), "default", LEAF, b'"x"', "Leaf") for _ in range(3000)]
    try:
        store.run(lambda tx: usecases.submit_job(tx, "young", tasks, Policy(publish=False)))
    finally:
        store.close()
    sql = pg_claim_task(usecases.CLAIM_STARTS_JOB)
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
    prepared = re.sub(r"%\((\w+)\)s", lambda m: f"${names.index(m.group(1)) + 1}", sql)
    values = {
        "p_runner_id": "'r'",
        "lease": "30",
        "p_task_id": f"'{tasks[0].id}'",
        "p_cluster": "'default'",
        "p_job_state": f"'{JobState.RUNNING.value}'",
    }
    url = postgres_empty_database.replace("postgresql+psycopg:", "postgresql:")
    with psycopg.connect(url) as conn:
        conn.execute(f"PREPARE claim({', '.join(TYPES[n] for n in names)}) AS {prepared}")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = conn.execute(f"EXPLAIN EXECUTE claim({', '.join(values[n] for n in names)})")
        plan = "\n".join(row[0] for row in rows.fetchall())
        conn.rollback()
    assert "ix_tasks_claimable" not in plan, plan
    assert "Seq Scan on tasks" not in plan, plan
