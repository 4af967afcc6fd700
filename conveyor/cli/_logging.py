"""Log output of conveyor processes: quiet by default, structured either way.

``text`` (default) prints one line per record with its context as ``key=value`` pairs;
``json`` prints one JSON object per line for log collectors. Context such as ``task_id`` and
``job_id`` comes from ``extra=`` (``context.logger`` in tasks binds both).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

#: Attributes every LogRecord has; anything else was passed through ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%H:%M:%S.%f")[:-3]
        line = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        context = _context(record)
        if context:
            line += "  " + " ".join(f"{k}={v}" for k, v in context.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
            **_context(record),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure(verbose: int, fmt: str) -> None:
    """Configure the root logger once for a CLI process (library code never does this)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    if verbose < 2:  # third-party chatter stays out unless -vv
        for noisy in ("alembic", "amqp", "kombu", "sqlalchemy", "uvicorn.access"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
