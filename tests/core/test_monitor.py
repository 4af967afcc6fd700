from __future__ import annotations

import threading

from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask, RunnerInfo, TaskState
from conveyor.core.monitor import Monitor, MonitorSettings
from conveyor.core.reads import ReadService
from conveyor.core.service import Orchestrator
from conveyor.memory.broker import InMemoryBroker
from conveyor.memory.store import InMemoryStore
from tests.core.test_leases_and_fencing import FakeClock


def reads_of(service: Orchestrator) -> ReadService:
    """The read service over ``service``'s store (reads are not the orchestrator's)."""
    return ReadService(service.store)


def test_one_sweep_requeues_publishes_and_marks_silent_runners() -> None:
    clock = FakeClock()
    broker = InMemoryBroker()
    service = Orchestrator(InMemoryStore(clock.now), broker)
    task_id = TaskId(uuid7())
    service.submit_job("m", [NewTask(task_id, "default", TaskIdentifier("A", "v1.0"), b"", "A")])
    assert isinstance(service.claim(task_id, "default", "dead-runner", 10), ClaimedTask)
    now = clock.now()
    service.register_runner(RunnerInfo("dead-runner", "default", "h", 1, (), now, now))
    clock.advance(120)
    report = Monitor(service, MonitorSettings(runner_silence=60)).run_once()
    assert report.requeued == 1 and report.runners_gone == 1
    task = reads_of(service).get_task(task_id)
    assert task is not None and task.state is TaskState.QUEUED and task.crash_count == 1
    assert broker.depth() == 2  # the original message and the requeue's
    assert reads_of(service).list_runners() == []


def test_run_forever_stops_on_request() -> None:
    service = Orchestrator(InMemoryStore(), InMemoryBroker())
    monitor = Monitor(service, MonitorSettings(interval=0.01))
    thread = threading.Thread(target=monitor.run_forever)
    thread.start()
    monitor.stop()
    thread.join(2)
    assert not thread.is_alive()


def test_sweeps_never_duplicate_messages_of_tasks_waiting_for_a_runner() -> None:
    clock = FakeClock()
    broker = InMemoryBroker()
    service = Orchestrator(InMemoryStore(clock.now), broker)
    service.submit_job(
        "waiting",
        [NewTask(TaskId(uuid7()), "default", TaskIdentifier("NoRunnerYet", "v1.0"), b"", "X")],
    )
    monitor = Monitor(service)
    for _ in range(10):
        clock.advance(60)
        monitor.run_once()
    assert broker.depth() == 1
