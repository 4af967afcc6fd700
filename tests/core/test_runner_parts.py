"""The runner's parts on their own, and the lines between the core and the process.

The runner is composed of small start/stop parts (conveyor/core/runner/); signals, process
exit and exit-time flushing belong to the entry points (conveyor/process.py,
conveyor/bootstrap.py), so the core must not touch them.
"""

from __future__ import annotations

import ast
import datetime as dt
import os
import signal
import threading
from pathlib import Path

import pytest

from conveyor import Client, ExecutionContext, Task
from conveyor.caches import NoCache
from conveyor.core.identifiers import TaskId
from conveyor.core.ids import uuid7
from conveyor.core.model import RunnerInfo
from conveyor.core.registry import Runner
from conveyor.core.runner import RunnerSettings, RunnerStats, TaskRunner
from conveyor.core.runner.housekeeping import Housekeeping
from conveyor.process import monitor_signals, stop_on_signals

CORE = Path(__file__).resolve().parents[2] / "conveyor" / "core"


def test_the_core_installs_no_signal_handler_and_never_exits_the_process() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if {"signal", "atexit", "conveyor.process"} & set(names):
                    offenders.append(f"{path.name}:{node.lineno} imports {names}")
            if isinstance(node, ast.Attribute) and node.attr == "_exit":
                offenders.append(f"{path.name}:{node.lineno} calls os._exit")
    assert offenders == []


class Recorder:
    def __init__(self) -> None:
        self.stopped = threading.Semaphore(0)
        self.stops = 0

    def stop(self) -> None:
        self.stops += 1
        self.stopped.release()


def test_the_first_signal_stops_and_the_second_exits_at_once() -> None:
    target, exits = Recorder(), list[int]()
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(target, exit_now=exits.append):
        os.kill(os.getpid(), signal.SIGTERM)
        assert target.stopped.acquire(timeout=30) and exits == []
        os.kill(os.getpid(), signal.SIGINT)
        assert exits == [128 + signal.SIGINT] and target.stops == 1
    assert signal.getsignal(signal.SIGTERM) is before  # restored


def test_the_monitor_only_ever_stops() -> None:
    target = Recorder()
    with monitor_signals(target):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
    assert target.stopped.acquire(timeout=30) and target.stopped.acquire(timeout=30)
    assert target.stops == 2


def test_a_signal_while_the_main_thread_waits_on_the_stop_event_stops_it() -> None:
    """The handler must not set the Event itself (its lock may be held by the interrupted
    wait); the runner's and the monitor's main threads wait on theirs."""
    stopping = threading.Event()

    class Target:
        def stop(self) -> None:
            stopping.set()

    with stop_on_signals(Target()):
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM)).start()
        assert stopping.wait(30)


def test_off_the_main_thread_no_handler_is_installed() -> None:
    seen: list[object] = []

    def install() -> None:
        with stop_on_signals(Recorder()):
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert seen == [before]


def test_a_runner_built_directly_installs_no_handler_but_the_client_s_does() -> None:
    client = Client("memory://", "memory://")
    installed: list[object] = []

    class Peek(Task):
        def execute(self, context: ExecutionContext) -> None:
            pass

    direct = TaskRunner(client.service, "default", Runner([Peek]), NoCache())
    assert direct._signals is None
    built = client.runner(tasks=[Peek])
    assert built._signals is not None
    before = signal.getsignal(signal.SIGTERM)
    with built._signals(built):
        installed.append(signal.getsignal(signal.SIGTERM))
        built.stop()
    assert installed[0] is not before and signal.getsignal(signal.SIGTERM) is before


class FakeService:
    def __init__(self) -> None:
        self.heartbeats: list[TaskId | None] = []
        self.sweeps = 0

    def runner_heartbeat(self, runner_id: str, current: TaskId | None, *counts: int) -> None:
        self.heartbeats.append(current)

    def expire_leases(self) -> int:
        self.sweeps += 1
        return 0

    def publish_outbox(self) -> int:
        return 0

    def register_runner(self, info: object) -> None:
        pass

    def set_runner_state(self, runner_id: str, state: str) -> None:
        pass


def test_housekeeping_is_one_cadence_whether_a_task_runs_or_not() -> None:
    """The loop's tick and the lease keeper's heartbeat share one next-heartbeat time."""
    service = FakeService()
    housekeeping = Housekeeping(
        service,  # type: ignore[arg-type]
        RunnerSettings(heartbeat_interval=3600, sweep_interval=3600),
        RunnerStats(),
    )
    housekeeping.tick(None)
    assert service.heartbeats == [] and service.sweeps == 1  # not registered: no heartbeat
    now = dt.datetime.now(dt.UTC)
    housekeeping.start(RunnerInfo("r1", "default", "host", 1, (), now, now))
    running = TaskId(uuid7())
    housekeeping.heartbeat(running)  # while a task runs (the lease keeper)
    housekeeping.tick(None)  # between tasks: not due again
    housekeeping.heartbeat(running)
    assert service.heartbeats == [running] and service.sweeps == 1
    housekeeping.stop()
    assert not housekeeping.registered


class Idle(Task):
    def execute(self, context: ExecutionContext) -> None:
        pass


def test_the_context_gives_the_runner_a_snapshot_of_the_outcome() -> None:
    client = Client("memory://", "memory://")
    taken: list[object] = []

    class Parent(Task):
        def execute(self, context: ExecutionContext) -> None:
            context.progress("a").add(3)
            context.progress("a").done(1)
            context.submit_subtask(Idle())
            context.current_task.display = "shown"
            outcome = context.outcome()
            taken.append(outcome)
            assert context.outcome(with_subtasks=False).subtasks == []
            assert context.progress_snapshot() == {"a": (3, 1)}

    client.jobs().submit("parent", Parent())
    client.runner(tasks=[Parent, Idle]).run_all()
    (outcome,) = taken
    assert outcome.display == "shown" and outcome.progress == {"a": (3, 1)}  # type: ignore[attr-defined]
    assert len(outcome.subtasks) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("with_delivery", [True, False], ids=["broker", "polling"])
def test_the_runner_uses_the_consumer_factory_it_is_given(with_delivery: bool) -> None:
    client = Client("memory://", "memory://" if with_delivery else "none://")
    opened: list[str] = []

    def consumers(cluster: str, identifiers: object) -> object:
        opened.append(cluster)
        return client.service.broker.consumer(cluster, identifiers)  # type: ignore[arg-type]

    client.jobs().submit("idle", Idle())
    base = client.runner(tasks=[Idle])
    runner = TaskRunner(
        client.service,
        "default",
        base.registry,
        base.cache,
        consumers=consumers,  # type: ignore[arg-type]
    )
    runner.run_all()
    assert opened == ["default"] and runner.computed == 1
