"""Registered runners in memory (:class:`conveyor.core.ports.RunnerRows`)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from conveyor.core.identifiers import TaskId
from conveyor.core.model import RunnerInfo
from conveyor.memory.journal import Journal


class MemoryRunners:
    def __init__(self, journal: Journal) -> None:
        self._j = journal
        self._t = journal.t

    def upsert_runner(self, runner: RunnerInfo) -> None:
        self._j.set(self._t.runners, runner.id, dataclasses.replace(runner, last_seen=self._j.now))

    def runner_heartbeat(
        self, runner_id: str, current_task: TaskId | None, computed: int, failed: int
    ) -> None:
        runner = self._t.runners.get(runner_id)
        if runner is None:
            return
        self._j.set(
            self._t.runners,
            runner_id,
            dataclasses.replace(
                runner,
                last_seen=self._j.now,
                current_task=current_task,
                tasks_computed=computed,
                tasks_failed=failed,
                state="online" if runner.state == "gone" else runner.state,
            ),
        )

    def set_runner_state(self, runner_id: str, state: str) -> None:
        runner = self._t.runners.get(runner_id)
        if runner is not None:
            self._j.set(self._t.runners, runner_id, dataclasses.replace(runner, state=state))

    def mark_silent_runners(self, silent_seconds: float) -> int:
        cutoff = self._j.now - dt.timedelta(seconds=silent_seconds)
        count = 0
        for runner in list(self._t.runners.values()):
            if runner.state == "online" and runner.last_seen < cutoff:
                gone = dataclasses.replace(runner, state="gone")
                self._j.set(self._t.runners, runner.id, gone)
                count += 1
        return count

    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]:
        runners = [r for r in self._t.runners.values() if include_gone or r.state == "online"]
        return sorted(runners, key=lambda r: r.last_seen, reverse=True)
