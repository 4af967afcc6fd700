"""Profile conveyor runners draining no-op tasks: where the CPU goes, per task.

Pre-fills N no-op tasks (one job), starts RUNNERS ``conveyor worker`` processes, and while they
drain: samples one runner with py-spy (flame graph SVG + collapsed stacks) and measures the CPU
seconds spent per task by the runners, PostgreSQL and RabbitMQ (psutil), which is what bounds
throughput on a 2-core machine where all of them share the cores::

    .venv/bin/python bench/profile_runner.py --n 20000 --runners 2 --svg bench/results/flame.svg
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import psutil  # noqa: E402
from compare import Env, Watcher, conveyor_submit, conveyor_workers, stop  # noqa: E402

PY_SPY = BENCH.parent / ".venv" / "bin" / "py-spy"


def cpu_of(names: tuple[str, ...]) -> float:
    total = 0.0
    for proc in psutil.process_iter(["name", "cpu_times"]):
        if proc.info["name"] in names and proc.info["cpu_times"] is not None:
            times = proc.info["cpu_times"]
            total += times.user + times.system
    return total


def top_frames(collapsed: Path, count: int) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        samples = int(n)
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1] for f in stack.split(";") if f]
        if not frames:
            continue
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    lines = ["| self % | inclusive % | function (file:line) |", "|---:|---:|---|"]
    for frame, n in own.most_common(count):
        share, incl = 100 * n / total, 100 * inclusive[frame] / total
        lines.append(f"| {share:.1f} | {incl:.1f} | `{frame}` |")
    lines += ["", "| inclusive % | function (file:line) |", "|---:|---|"]
    for frame, n in inclusive.most_common(2 * count):
        lines.append(f"| {100 * n / total:.1f} | `{frame}` |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--svg", default=str(BENCH / "results" / "flame.svg"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--wall", help="also write wall-clock stacks of every thread here")
    args = parser.parse_args()
    from conveyor_tasks import Noop

    work = Path(tempfile.mkdtemp(prefix="conveyor-profile-"))
    env = Env(args.pg, args.amqp, "classic", work)
    env.create()
    procs = []
    try:
        env.reset_conveyor()
        marks = env.marks_dir("profile")
        conveyor_submit(env, "profile", [Noop(i) for i in range(args.n)])
        procs = conveyor_workers(env, args.runners, marks)
        watcher = Watcher(marks)
        watcher.wait_for(500, 60, 0.01)  # warmed up
        runner_procs = [psutil.Process(p.pid) for p in procs]
        before = (
            sum(sum(p.cpu_times()[:2]) for p in runner_procs),
            cpu_of(("postgres",)),
            cpu_of(("beam.smp",)),
            watcher.poll(),
            time.monotonic(),
        )
        Path(args.svg).parent.mkdir(parents=True, exist_ok=True)
        collapsed = work / "stacks.txt"
        spy = [str(PY_SPY), "record", "--gil", "-p", str(procs[0].pid)]
        spy += ["-d", str(int(args.seconds))]
        subprocess.run([*spy, "-o", args.svg, "-r", "200"], check=True, capture_output=True)
        after = (
            sum(sum(p.cpu_times()[:2]) for p in runner_procs),
            cpu_of(("postgres",)),
            cpu_of(("beam.smp",)),
            watcher.poll(),
            time.monotonic(),
        )
        tasks = after[3] - before[3]
        elapsed = after[4] - before[4]
        for table, upd, hot, dead in env.conveyor_sql(
            "SELECT relname, n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables "
            "WHERE relname IN ('jobs', 'tasks') ORDER BY relname"
        ):
            print(f"  {table}: {upd} row updates ({hot} HOT), {dead} dead row versions so far")
        print(f"{tasks} tasks in {elapsed:.1f} s: {tasks / elapsed:,.0f} tasks/s")
        for name, i in (("runners (all)", 0), ("PostgreSQL", 1), ("RabbitMQ", 2)):
            used = after[i] - before[i]
            print(
                f"  {name:14s} {1000 * used / max(tasks, 1):.3f} ms CPU per task "
                f"({used / elapsed:.2f} cores)"
            )
        if watcher.poll() < args.n:
            subprocess.run(
                [*spy, "-o", str(collapsed), "-f", "raw", "-r", "200"],
                check=True,
                capture_output=True,
            )
            print(top_frames(collapsed, args.top))
        if args.wall and watcher.poll() < args.n:
            wall = [str(PY_SPY), "record", "--idle", "--threads", "-p", str(procs[0].pid)]
            wall += ["-d", str(int(args.seconds)), "-o", args.wall, "-f", "raw", "-r", "200"]
            subprocess.run(wall, check=True, capture_output=True)
        print(f"flame graph: {args.svg}")
    finally:
        stop(procs)
        env.drop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
