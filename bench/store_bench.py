"""State store benchmark: bulk fan-out and claim+complete throughput of the SQL store.

Drives the real use cases (``conveyor.core.usecases``) against ``SqlStore``:

* **fan-out**: one completion transaction that creates N subtasks (default 100,000);
* **cycles**: claim + complete of independent tasks, by id (as a runner does on a broker
  delivery) and with ``claim_next`` (the serverless dispatcher), from 1 and 2 processes.

Run (PostgreSQL server from the URL; a scratch database is created and dropped)::

    .venv/bin/python bench/store_bench.py --url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/store_bench.py --sqlite
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text

from conveyor.core import usecases
from conveyor.core.identifiers import TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import ClaimedTask, NewTask, RegisteredIdentifier
from conveyor.core.usecases import Policy
from conveyor.store_sql import SqlStore
from conveyor.store_sql.engine import mask_url, normalize_url

IDENT = TaskIdentifier("Bench", "v1.0")
REG = [RegisteredIdentifier("Bench", 1, 0)]
POLICY = Policy(publish=True)


def new_spec() -> NewTask:
    return NewTask(
        id=TaskId(uuid7()),
        cluster="default",
        identifier=IDENT,
        input=b'{"n": 1}',
        display="Bench",
    )


@contextmanager
def scratch_database(url: str | None) -> Iterator[str]:
    """A fresh database: on the PostgreSQL server of ``url``, or a SQLite file."""
    if url is None:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    server = normalize_url(url)
    name = f"conveyor_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_fanout(url: str, width: int) -> float:
    """Seconds for the one completion transaction that creates ``width`` subtasks."""
    store = SqlStore(url)
    try:
        root = new_spec()
        store.run(lambda tx: usecases.submit_job(tx, "fanout", [root], POLICY))
        claimed = store.run(lambda tx: usecases.claim(tx, root.id, "default", "bench", 600))
        assert isinstance(claimed, ClaimedTask), claimed
        subtasks = [new_spec() for _ in range(width)]
        started = time.perf_counter()
        outcome = store.run(
            lambda tx: usecases.complete(
                tx, claimed.id, claimed.attempt, subtasks, None, {}, POLICY
            )
        )
        elapsed = time.perf_counter() - started
        assert outcome.recorded and len(outcome.to_publish) == width
        return elapsed
    finally:
        store.close()


def submit_flat_jobs(url: str, jobs: int, per_job: int) -> list[TaskId]:
    """``jobs`` jobs of ``per_job`` independent root tasks each; their ids, job after job."""
    store = SqlStore(url)
    try:
        ids: list[TaskId] = []
        for _ in range(jobs):
            roots = [new_spec() for _ in range(per_job)]
            store.run(lambda tx, roots=roots: usecases.submit_job(tx, "cycles", roots, POLICY))
            ids += [r.id for r in roots]
        return ids
    finally:
        store.close()


def _cycle_worker(
    url: str,
    mode: str,
    ids: Sequence[TaskId],
    count: int,
    start: mp.synchronize.Event,  # type: ignore[name-defined]
    results: mp.Queue,  # type: ignore[type-arg]
) -> None:
    store = SqlStore(url)
    runner = f"bench-{os.getpid()}"
    latencies: list[float] = []
    start.wait()
    began = time.perf_counter()
    done = 0
    for i in range(count):
        t0 = time.perf_counter()
        if mode == "claim":
            task_id = ids[i]
            won = store.run(
                lambda tx, task_id=task_id: usecases.claim(tx, task_id, "default", runner, 60)
            )
            claimed = won if isinstance(won, ClaimedTask) else None
        else:

            def claim_next(tx: object) -> object:
                found = tx.claims.claim_next("default", REG, runner, 60)  # type: ignore[attr-defined]
                if found is not None:
                    usecases.refresh_job_state(tx, found.job_id)  # type: ignore[arg-type]
                return found

            claimed = store.run(claim_next)  # type: ignore[assignment]
        if claimed is None:
            break
        store.run(
            lambda tx, c=claimed: usecases.complete(tx, c.id, c.attempt, [], None, {}, POLICY)
        )
        latencies.append(time.perf_counter() - t0)
        done += 1
    elapsed = time.perf_counter() - began
    store.close()
    results.put((done, elapsed, latencies))


def bench_cycles(
    url: str, mode: str, processes: int, per_process: int, job_per_process: bool
) -> dict[str, float]:
    if job_per_process:
        ids = submit_flat_jobs(url, processes, per_process)
    else:
        ids = submit_flat_jobs(url, 1, processes * per_process)
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    workers = [
        ctx.Process(
            target=_cycle_worker,
            args=(
                url,
                mode,
                ids[p * per_process : (p + 1) * per_process],
                per_process,
                start,
                results,
            ),
        )
        for p in range(processes)
    ]
    for w in workers:
        w.start()
    time.sleep(2.0)  # let every process import and connect
    start.set()
    collected = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    total = sum(r[0] for r in collected)
    wall = max(r[1] for r in collected)
    latencies = sorted(x for r in collected for x in r[2])
    return {
        "cycles": total,
        "per_second": total / wall if wall else 0.0,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--url",
        default=os.environ.get(
            "CONVEYOR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL server (a scratch database is created on it)",
    )
    where.add_argument("--sqlite", action="store_true", help="benchmark a SQLite file instead")
    parser.add_argument("--fanout", type=int, default=100_000, help="subtasks in the fan-out")
    parser.add_argument("--cycles", type=int, default=3000, help="claim+complete per process")
    parser.add_argument(
        "--processes", default="1,2", help="comma-separated process counts (default 1,2)"
    )
    parser.add_argument(
        "--job-per-process",
        action="store_true",
        help="give each process its own job (default: all processes work on one job)",
    )
    args = parser.parse_args()
    url = None if args.sqlite else args.url
    print(f"store: {'SQLite file' if url is None else mask_url(url)}")
    with scratch_database(url) as db:
        seconds = bench_fanout(db, args.fanout)
        print(f"fan-out: one completion creating {args.fanout:,} subtasks: {seconds:.2f} s")
    jobs = "one job per process" if args.job_per_process else "one shared job"
    for mode in ("claim", "claim_next"):
        for processes in [int(p) for p in args.processes.split(",")]:
            with scratch_database(url) as db:
                r = bench_cycles(db, mode, processes, args.cycles, args.job_per_process)
            print(
                f"cycles ({mode} + complete, {jobs}), {processes} process(es): "
                f"{r['per_second']:,.0f}/s over {r['cycles']:,.0f} "
                f"(p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms per cycle)"
            )


if __name__ == "__main__":
    main()
