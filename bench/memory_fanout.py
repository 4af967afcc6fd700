"""One fan-out in ``memory://``: a root task submits N leaves, one runner runs them all.

    .venv/bin/python bench/memory_fanout.py --n 20000
    .venv/bin/python bench/memory_fanout.py --n 2000 5000 10000 20000   # the growth

The in-memory store used to be quadratic here: every append copied a whole list, and every
completion read its job's facts by scanning all of the job's tasks. Measured on one machine
(a50928f -> after the memory store's split): N=2,000 10.9 s -> 2.7 s, 5,000 42.7 s -> 3.7 s,
10,000 280 s -> 9.1 s, 20,000 over 900 s -> 14.1 s. Prints wall time per N; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from conveyor import Client, ExecutionContext, Task  # noqa: E402
from conveyor.core.model import JobState  # noqa: E402


class Leaf(Task):
    i: int

    def execute(self, context: ExecutionContext) -> None:
        pass


class Fan(Task):
    n: int

    def execute(self, context: ExecutionContext) -> None:
        context.submit_subtasks([Leaf(i) for i in range(self.n)])


def run(n: int) -> float:
    client = Client("memory://", "none://")
    job = client.jobs().submit("fan", Fan(n))
    started = time.perf_counter()
    client.runner(tasks=[Fan, Leaf]).run_all()
    took = time.perf_counter() - started
    assert client.jobs().find(job).state is JobState.COMPLETED
    client.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[20_000], help="leaves per run")
    for n in parser.parse_args().n:
        took = run(n)
        print(f"N={n:>7,}: {took:7.2f} s  ({n / took:,.0f} tasks/s)", flush=True)


if __name__ == "__main__":
    main()
