from __future__ import annotations

import json
import logging

from conveyor.cli._logging import JsonFormatter, TextFormatter


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "conveyor.core.runner", logging.INFO, __file__, 1, "task %s done", ("t1",), None
    )
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_the_context() -> None:
    line = JsonFormatter().format(record(task_id="t1", job_id="j1"))
    payload = json.loads(line)
    assert payload["message"] == "task t1 done" and payload["level"] == "info"
    assert payload["task_id"] == "t1" and payload["job_id"] == "j1"


def test_text_lines_append_context_as_key_value_pairs() -> None:
    line = TextFormatter().format(record(task_id="t1"))
    assert "conveyor.core.runner: task t1 done" in line and line.endswith("task_id=t1")
