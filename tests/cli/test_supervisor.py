"""`conveyor worker --concurrency N`: the supervisor, with real processes.

A SIGTERM that arrived while a crashed child's restart was backing off used to start the child
anyway after the back-off: that child never got the signal and the supervisor waited for it
until a second one. The order of the supervisor's own log lines (one logger, one stream) and
the children's pid markers tell what happened; nothing here measures time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
STARTED = re.compile(r"started runner process (\d+) \(pid (\d+)\)")


def test_a_sigterm_during_a_restart_back_off_starts_no_child_and_exits_0(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CONVEYOR_")}
    env.update(CONVEYOR_HOME=str(tmp_path), CRASH_MARKERS=str(markers))
    err_path = tmp_path / "supervisor.err"
    command = [
        "-m",
        "conveyor",
        "-v",
        "worker",
        "--concurrency",
        "2",
        "tests.cli.crash_at_start:Idle",
    ]
    with err_path.open("wb") as err:
        supervisor = subprocess.Popen(
            [sys.executable, *command],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        # The third crash of a slot backs its restart off by 4 s: signal inside that window.
        while "restarting in 4.0s" not in err_path.read_text(errors="replace"):
            assert supervisor.poll() is None, err_path.read_text()
            time.sleep(0.05)
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=60)  # a hang guard only: it used to wait forever
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    output = err_path.read_text(errors="replace")
    assert code == 0, output
    lines = output.splitlines()
    (signalled,) = [i for i, line in enumerate(lines) if "signal 15: stopping" in line]
    started_after = [line for line in lines[signalled:] if STARTED.search(line)]
    assert started_after == [], output
    started = {int(m.group(2)) for m in map(STARTED.search, lines) if m}
    crashed = {int(p.name) for p in markers.iterdir()}
    assert len(started) >= 6 and crashed <= started, (started, crashed)


def _online_pids(env: dict[str, str]) -> set[int]:
    listed = subprocess.run(
        [sys.executable, "-m", "conveyor", "--json", "runners", "list"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(r["pid"]) for r in json.loads(listed.stdout) if r["state"] == "online"}


def test_a_sigterm_reaches_every_running_child_which_stops_gracefully(tmp_path: Path) -> None:
    """The children were started by a supervisor that blocks signals around their start: they
    must not inherit that mask (they would never see SIGTERM, nor PR_SET_PDEATHSIG's)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CONVEYOR_")}
    env["CONVEYOR_HOME"] = str(tmp_path)
    err_path = tmp_path / "supervisor.err"
    command = ["-m", "conveyor", "-v", "worker", "--concurrency", "2", "tests.cli.flows:Say"]
    with err_path.open("wb") as err:
        supervisor = subprocess.Popen(
            [sys.executable, *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        while len(_online_pids(env)) < 2:  # registered: inside run_forever, handlers installed
            assert supervisor.poll() is None, err_path.read_text()
            time.sleep(0.1)
        children = _online_pids(env)
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=60)  # a hang guard only
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    output = err_path.read_text(errors="replace")
    assert code == 0, output
    assert output.count("stopped: 0 computed, 0 failed") == 2, output  # each child, gracefully
    assert _online_pids(env) == set() and len(children) == 2
