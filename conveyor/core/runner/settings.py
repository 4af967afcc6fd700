"""``RunnerSettings``: the tunables of one task runner, with the one definition of their
defaults (``conveyor.config`` reads its defaults from here)."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.core.context import DEFAULT_MAX_INPUT_BYTES


@dataclass(frozen=True, slots=True)
class RunnerSettings:
    """Tunables of one task runner; built from the settings by ``conveyor.bootstrap``."""

    #: Seconds a claim stays valid without extension; extended every third of it.
    lease: float = 30.0
    #: Seconds a running task may still finish after SIGTERM before it is handed back.
    grace_period: float = 20.0
    #: Timeout for tasks that set none themselves (None: no timeout).
    default_timeout: float | None = None
    #: Seconds between lease-expiry and outbox sweeps (every runner runs them).
    sweep_interval: float = 5.0
    #: Seconds between runner heartbeats in the registry.
    heartbeat_interval: float = 5.0
    #: Seconds between live progress/display writes of a running task.
    progress_interval: float = 1.0
    #: Longest wait for a delivery before housekeeping runs.
    receive_timeout: float = 1.0
    #: Cap on a subtask's serialised input.
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
