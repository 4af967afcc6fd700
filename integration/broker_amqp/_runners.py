"""Runner harness for the adapter's integration tests: in-memory store, real RabbitMQ, task
runners in threads (the SQL store is tested separately), and task classes that record their
executions as a side effect (never the orchestrator's own bookkeeping)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.broker_amqp import AmqpBroker
from conveyor.caches import NoCache
from conveyor.core.context import ExecutionContext, new_task_spec
from conveyor.core.identifiers import JobId, TaskId
from conveyor.core.model import JobState, TaskState
from conveyor.core.reads import ReadService
from conveyor.core.registry import Runner
from conveyor.core.runner import RunnerSettings, TaskRunner
from conveyor.core.service import Orchestrator
from conveyor.core.task import Task
from conveyor.core.usecases import Policy
from conveyor.memory.store import InMemoryStore


@dataclass
class Execution:
    label: str
    thread: str
    started: float
    ended: float | None = None


@dataclass
class Journal:
    """Side effects of task executions, shared by every runner thread of a test."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    executions: list[Execution] = field(default_factory=list)

    def start(self, label: str) -> Execution:
        execution = Execution(label, threading.current_thread().name, time.monotonic())
        with self.lock:
            self.executions.append(execution)
        return execution

    def labels(self) -> list[str]:
        with self.lock:
            return [e.label for e in self.executions]

    def started(self, label: str) -> Execution | None:
        with self.lock:
            return next((e for e in self.executions if e.label == label), None)

    def count(self, label: str) -> int:
        return self.labels().count(label)


#: The journal tasks write to; reset by each test through ``journal()``.
JOURNAL = Journal()


def journal() -> Journal:
    global JOURNAL
    JOURNAL = Journal()
    return JOURNAL


class Sleep(Task):
    """Sleeps (blocking, GIL released) for ``seconds``."""

    label: str
    seconds: float

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "it.Sleep", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        execution = JOURNAL.start(self.label)
        time.sleep(self.seconds)
        execution.ended = time.monotonic()


class Spin(Task):
    """Burns CPU in pure Python for ``seconds`` (holds the GIL between switch intervals)."""

    label: str
    seconds: float

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "it.Spin", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        execution = JOURNAL.start(self.label)
        deadline = time.monotonic() + self.seconds
        total = 0
        while time.monotonic() < deadline:
            total += sum(i * i for i in range(1000))
        execution.ended = time.monotonic()


class Quick(Task):
    label: str

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "it.Quick", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        JOURNAL.start(self.label).ended = time.monotonic()


class Parent(Task):
    """Sleeps for ``seconds``, then submits one ``Quick`` child (published at completion)."""

    label: str
    seconds: float

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "it.Parent", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        execution = JOURNAL.start(self.label)
        time.sleep(self.seconds)
        context.submit_subtask(Quick(f"child-of-{self.label}"))
        execution.ended = time.monotonic()


class FanOut(Task):
    """Submits ``count`` ``Parent`` subtasks sleeping ``seconds`` each."""

    count: int
    seconds: float

    @staticmethod
    def identifier() -> tuple[str, str]:
        return "it.FanOut", "v1.0"

    def execute(self, context: ExecutionContext) -> None:
        JOURNAL.start("fanout")
        context.submit_subtasks([Parent(f"leaf-{i}", self.seconds) for i in range(self.count)])


def fast_settings(**overrides: Any) -> RunnerSettings:
    values: dict[str, Any] = {
        "lease": 30.0,
        "sweep_interval": 2.0,
        "heartbeat_interval": 2.0,
        "receive_timeout": 0.2,
    }
    values.update(overrides)
    return RunnerSettings(**values)


@dataclass
class RunnerThread:
    runner: TaskRunner
    thread: threading.Thread
    errors: list[BaseException]

    def stop(self, timeout: float = 30.0) -> None:
        self.runner.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"runner {self.runner.id} did not stop"

    @property
    def id(self) -> str:
        return self.runner.id


class Harness:
    """One orchestrator (in-memory store, a real AmqpBroker) and its runner threads."""

    def __init__(self, broker: AmqpBroker, policy: Policy | None = None) -> None:
        self.store = InMemoryStore()
        self.broker = broker
        self.service = Orchestrator(self.store, broker, policy)
        self.reads = ReadService(self.store)
        self.runners: list[RunnerThread] = []

    def start_runner(
        self,
        tasks: Sequence[type[Task]],
        settings: RunnerSettings | None = None,
        name: str | None = None,
    ) -> RunnerThread:
        runner = TaskRunner(
            self.service,
            "default",
            Runner(tasks),
            NoCache(),  # type: ignore[arg-type]
            settings or fast_settings(),
            runner_id=name,
        )
        errors: list[BaseException] = []

        def run() -> None:
            try:
                runner.run_forever()
            except BaseException as exc:  # surfaced by the test through .errors
                errors.append(exc)
                raise

        thread = threading.Thread(target=run, name=f"runner-{runner.id}", daemon=True)
        handle = RunnerThread(runner, thread, errors)
        self.runners.append(handle)
        thread.start()
        return handle

    def submit(self, *tasks: Task, name: str = "job") -> tuple[JobId, list[TaskId]]:
        specs = [new_task_spec(task, cluster="default") for task in tasks]
        job = self.service.submit_job(name, specs)
        return job.id, [spec.id for spec in specs]

    def wait_job(self, job_id: JobId, timeout: float) -> JobState:
        deadline = time.monotonic() + timeout
        while True:
            state = self.reads.job_record(job_id).state
            if state in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED):
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} still {state} after {timeout}s")
            time.sleep(0.1)

    def task_state(self, task_id: TaskId) -> TaskState:
        task = self.reads.get_task(task_id)
        assert task is not None
        return task.state

    def stop(self) -> None:
        for handle in self.runners:
            if handle.thread.is_alive():
                handle.stop()
        for handle in self.runners:
            assert not handle.errors, handle.errors


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
