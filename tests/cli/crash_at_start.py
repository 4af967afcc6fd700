"""A task module that a supervised child (``CONVEYOR_SUPERVISED=1``) cannot import.

The supervisor imports it fine (it checks the task paths before forking children); every child
leaves a marker file named after its pid in ``$CRASH_MARKERS`` and then crashes at start, so the
supervisor keeps backing off its restarts.
"""

from __future__ import annotations

import os
from pathlib import Path

from conveyor import ExecutionContext, Task

if os.environ.get("CONVEYOR_SUPERVISED") == "1":
    Path(os.environ["CRASH_MARKERS"], str(os.getpid())).touch()
    raise RuntimeError("this runner process crashes at start (test)")


class Idle(Task):
    def execute(self, context: ExecutionContext) -> None:
        pass
