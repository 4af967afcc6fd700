"""Rate of one big fan-out over time: how fast N runners work through the subtasks of one Fanout
task, every 5 s, beside PostgreSQL's update / HOT / dead-tuple counters of ``tasks``.

    .venv/bin/python bench/fanout_rate.py --n 100000 --runners 2
    .venv/bin/python bench/fanout_rate.py --n 100000 --auto-explain --seconds 25   # plans > 3 ms
                                                                                  # to the PG log

Uses a scratch database ``fanout_rate`` and RabbitMQ queues ``fanrate.*`` (both recreated). This
is how the claim's cached generic plan was found (bench/README.md): 210 subtasks/s at 100,000
and 820/s at 30,000, flat over each run, with ``Index Scan using ix_tasks_claimable ... Index
Cond: (id = $3)`` in auto_explain's output; ~830/s at 100,000 after the fix.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import psycopg  # noqa: E402

NAMESPACE = "fanrate"
DB = "fanout_rate"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--n", type=int, default=100_000, help="subtasks")
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=130.0, help="stop after this long")
    parser.add_argument("--auto-explain", action="store_true")
    args = parser.parse_args()

    with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True, check=False
    )
    for queue in listed.stdout.split():
        if queue.startswith(f"{NAMESPACE}."):
            subprocess.run(["rabbitmqctl", "-q", "delete_queue", queue], capture_output=True)
    url = f"{args.pg}/{DB}"
    marks = Path(f"/tmp/{DB}-marks")
    marks.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "CONVEYOR_DATABASE_URL": url,
        "CONVEYOR_BROKER_URL": args.amqp,
        "CONVEYOR_AMQP_NAMESPACE": NAMESPACE,
        "CONVEYOR_AMQP_QUEUE_TYPE": "classic",
        "PYTHONPATH": f"{BENCH}{os.pathsep}{ROOT}",
        "BENCH_MARK_DIR": str(marks),
    }
    os.environ.update(env)

    from conveyor_tasks import Fanout

    from conveyor import Client
    from conveyor.config import Settings
    from conveyor.core.context import new_task_spec

    with Client(settings=Settings()) as client:
        db = psycopg.connect(url, autocommit=True)
        if args.auto_explain:
            db.execute(f"ALTER DATABASE {DB} SET session_preload_libraries = 'auto_explain'")
            db.execute(f"ALTER DATABASE {DB} SET auto_explain.log_min_duration = '3ms'")
            db.execute(f"ALTER DATABASE {DB} SET auto_explain.log_nested_statements = on")
        client.service.submit_job("fan", [new_task_spec(Fanout(args.n), cluster="default")])
    worker = [str(ROOT / ".venv" / "bin" / "conveyor"), "worker", "conveyor_tasks"]
    procs = [
        subprocess.Popen(worker, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        for _ in range(args.runners)
    ]
    started, last = time.time(), 0
    try:
        while True:
            time.sleep(5)
            done = db.execute("SELECT count(*) FROM tasks WHERE state = 'COMPUTED'").fetchone()
            counters = db.execute(
                "SELECT n_tup_upd, n_tup_hot_upd, n_dead_tup FROM pg_stat_user_tables "
                "WHERE relname = 'tasks'"
            ).fetchone()
            assert done is not None and counters is not None
            print(
                f"{time.time() - started:6.1f}s computed={done[0]:7d} "
                f"rate={(done[0] - last) / 5:5.0f}/s updates={counters[0]} "
                f"hot={counters[1]} dead={counters[2]}",
                flush=True,
            )
            last = done[0]
            if done[0] > args.n or time.time() - started > args.seconds:
                break
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait()
        db.close()
        with psycopg.connect(f"{args.pg}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
