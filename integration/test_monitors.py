"""Several monitors at once on PostgreSQL: every expired lease is requeued exactly once."""

from __future__ import annotations

import threading

from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask, TaskState
from conveyor.core.monitor import Monitor
from conveyor.core.service import Orchestrator
from conveyor.memory.broker import InMemoryBroker
from conveyor.store_sql import SqlStore


def test_concurrent_monitors_requeue_each_expired_task_once(postgres_empty_database: str) -> None:
    broker = InMemoryBroker()
    service = Orchestrator(SqlStore(postgres_empty_database), broker)
    ident = TaskIdentifier("Leaf", "v1.0")
    ids = [TaskId(uuid7()) for _ in range(200)]
    service.submit_job("crashed", [NewTask(i, "default", ident, b"", "Leaf") for i in ids])
    for task_id in ids:
        claimed = service.claim(task_id, "default", "dead-runner", 0.0)  # expired at once
        assert isinstance(claimed, ClaimedTask)
    published_before = broker.published
    barrier = threading.Barrier(4)

    def sweep() -> None:
        barrier.wait()
        monitor = Monitor(service)
        for _ in range(3):
            monitor.run_once()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tasks = [service.get_task(i) for i in ids]
    assert all(t is not None and t.state is TaskState.QUEUED for t in tasks)
    assert {t.crash_count for t in tasks if t is not None} == {1}
    assert broker.published - published_before == len(ids), "one message per requeue"
    service.close()
