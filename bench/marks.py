"""Execution markers shared by every system under test (standard library only).

Each task execution appends one line ``<time.time()> <tag>`` to a per-process file in
``BENCH_MARK_DIR`` with a single ``write()`` on an ``O_APPEND`` descriptor, so executions are
counted independently of the system's own bookkeeping (its result backend or SQL rows).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

_fd: int | None = None
_pid = 0


def mark(tag: object) -> None:
    """Record that an execution started now (called first thing by every benchmark task)."""
    global _fd, _pid
    now = time.time()
    pid = os.getpid()
    if _fd is None or _pid != pid:  # re-open after a fork (Celery prefork)
        folder = os.environ["BENCH_MARK_DIR"]
        _fd = os.open(
            os.path.join(folder, f"marks-{pid}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        _pid = pid
    os.write(_fd, f"{now:.6f} {pid} {tag}\n".encode())


@dataclass(frozen=True, slots=True)
class Mark:
    at: float
    pid: int
    tag: str


def read_marks(folder: str) -> list[Mark]:
    """Every marker in ``folder``, sorted by time."""
    out: list[Mark] = []
    for name in os.listdir(folder):
        if not name.startswith("marks-"):
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as handle:
            for line in handle:
                parts = line.split(" ", 2)
                if len(parts) == 3 and line.endswith("\n"):
                    out.append(Mark(float(parts[0]), int(parts[1]), parts[2].rstrip("\n")))
    out.sort(key=lambda m: m.at)
    return out


class Watcher:
    """Counts marker lines as they appear (cheap incremental reads)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._offsets: dict[str, int] = {}
        self.lines: list[str] = []

    def poll(self) -> int:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return len(self.lines)
        for name in names:
            if not name.startswith("marks-"):
                continue
            path = os.path.join(self.folder, name)
            offset = self._offsets.get(name, 0)
            try:
                size = os.path.getsize(path)
            except FileNotFoundError:
                continue
            if size <= offset:
                continue
            with open(path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(size - offset)
            end = data.rfind(b"\n") + 1
            if end:
                self.lines += data[:end].decode().splitlines()
                self._offsets[name] = offset + end
        return len(self.lines)

    def wait_for(self, count: int, timeout: float, interval: float = 0.0005) -> bool:
        deadline = time.monotonic() + timeout
        while self.poll() < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True
