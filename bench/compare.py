"""Conveyor vs Celery, side by side, alternating, on the same RabbitMQ and PostgreSQL.

Run with ``make bench`` (installs Celery into ``bench/.venv-celery``), or directly::

    .venv/bin/python bench/compare.py                 # full run (~20 min)
    .venv/bin/python bench/compare.py --quick         # scaled-down counts (~4 min)
    .venv/bin/python bench/compare.py --only latency,memory --rounds 1

Every figure is taken from execution markers the tasks write themselves (``bench/marks.py``:
one line per execution start, per process), never from the systems' own bookkeeping; each run
checks that every submitted task ran (and, for conveyor, that PostgreSQL recorded it). Systems
alternate within each round, so machine noise hits both alike. Results: a table on stdout and
``bench/results/last.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import psycopg  # noqa: E402
from marks import Mark, Watcher, read_marks  # noqa: E402

CONVEYOR_BIN = ROOT / ".venv" / "bin" / "conveyor"
PYTHON = ROOT / ".venv" / "bin" / "python"
CELERY_VENV = BENCH / ".venv-celery"
CELERY_BIN = CELERY_VENV / "bin" / "celery"
CELERY_PYTHON = CELERY_VENV / "bin" / "python"
NAMESPACE = "convbench"
CELERY_QUEUE = "celerybench"
KOMBU_QUEUE = "kombubench"
WARMUP = 20


# -- small helpers -----------------------------------------------------------------------------
def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "load": [round(x, 2) for x in load],
        "mem_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


def gaps(marks: Sequence[Mark]) -> tuple[float, int]:
    """Longest gap between consecutive execution starts, and how many gaps exceed 1 s."""
    longest, stalls = 0.0, 0
    for before, after in itertools.pairwise(marks):
        gap = after.at - before.at
        longest = max(longest, gap)
        stalls += gap > 1.0
    return longest, stalls


def stop(procs: Sequence[subprocess.Popen[bytes]], grace: float = 5.0, kill: bool = False) -> None:
    """Stop processes we started (by pid: their process groups)."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mib(proc: subprocess.Popen[bytes]) -> tuple[float, float]:
    """RSS of the process we started, and summed over it and its children (MiB)."""
    main = psutil.Process(proc.pid)
    total = main.memory_info().rss
    for child in main.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += child.memory_info().rss
    return main.memory_info().rss / 2**20, total / 2**20


# -- environment -------------------------------------------------------------------------------
@dataclass
class Env:
    pg_server: str  # postgresql://user@host:port (no database)
    amqp: str
    queue_type: str
    work: Path
    conveyor_db: str = ""
    celery_db: str = ""
    _client: Any = None

    @property
    def conveyor_url(self) -> str:
        return f"{self.pg_server}/{self.conveyor_db}"

    @property
    def celery_backend(self) -> str:
        server = self.pg_server.replace("postgresql://", "db+postgresql+psycopg://", 1)
        return f"{server}/{self.celery_db}"

    def admin(self) -> psycopg.Connection[Any]:
        return psycopg.connect(f"{self.pg_server}/postgres", autocommit=True)

    def create(self) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.conveyor_db = f"convbench_{suffix}"
        self.celery_db = f"celerybench_{suffix}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.conveyor_db}"')
            conn.execute(f'CREATE DATABASE "{self.celery_db}"')

    def drop(self) -> None:
        if self._client is not None:
            self._client.close()
        with self.admin() as conn:
            for name in (self.conveyor_db, self.celery_db):
                if name:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.purge(delete=True)

    def client(self) -> Any:
        if self._client is None:
            from conveyor import Client
            from conveyor.config import Settings

            settings = Settings(
                database_url=self.conveyor_url,
                broker_url=self.amqp,
                amqp_namespace=NAMESPACE,
                amqp_queue_type=self.queue_type,  # type: ignore[arg-type]
            )
            self._client = Client(settings=settings)
        return self._client

    def conveyor_sql(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.conveyor_url, autocommit=True) as conn:
            cur = conn.execute(sql, params or None)
            return cur.fetchall() if cur.description else []

    def reset_conveyor(self) -> None:
        self.client()  # migrates the scratch database on first use
        self.conveyor_sql(
            "TRUNCATE jobs, tasks, task_attempts, task_dependencies, task_progress, runners"
        )

    def reset_celery(self) -> None:
        with psycopg.connect(f"{self.pg_server}/{self.celery_db}", autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS celery_taskmeta, celery_tasksetmeta")

    def celery_rows(self) -> int:
        with psycopg.connect(f"{self.pg_server}/{self.celery_db}", autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM celery_taskmeta").fetchone()
            return int(row[0]) if row else 0

    def purge(self, delete: bool = False) -> None:
        """Empty (or delete) every queue this benchmark uses."""
        from kombu import Connection

        with Connection(self.amqp) as conn:
            channel = conn.channel()
            for name in self.queue_names():
                with contextlib.suppress(Exception):
                    if delete:
                        channel.queue_delete(name)
                    else:
                        channel.queue_purge(name)
                    continue
                channel = conn.channel()  # a missing queue closes the channel

    def queue_names(self) -> list[str]:
        names = [CELERY_QUEUE, KOMBU_QUEUE]
        with contextlib.suppress(Exception):
            out = subprocess.run(
                ["rabbitmqctl", "list_queues", "-q", "--no-table-headers", "name"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            names += [n.strip() for n in out.splitlines() if n.strip().startswith(NAMESPACE)]
        return names

    def marks_dir(self, label: str) -> str:
        folder = self.work / f"{label}-{uuid.uuid4().hex[:6]}"
        folder.mkdir(parents=True)
        return str(folder)


# -- process launchers -------------------------------------------------------------------------
def conveyor_workers(
    env: Env, count: int, marks: str, lease: float = 30.0, sweep: float = 5.0
) -> list[subprocess.Popen[bytes]]:
    environ = {
        **os.environ,
        "PYTHONPATH": f"{BENCH}{os.pathsep}{ROOT}",  # this checkout, not another install
        "BENCH_MARK_DIR": marks,
        "CONVEYOR_DATABASE_URL": env.conveyor_url,
        "CONVEYOR_BROKER_URL": env.amqp,
        "CONVEYOR_AMQP_NAMESPACE": NAMESPACE,
        "CONVEYOR_AMQP_QUEUE_TYPE": env.queue_type,
        "CONVEYOR_LEASE": str(lease),
        "CONVEYOR_SWEEP_INTERVAL": str(sweep),
    }
    procs = []
    for i in range(count):
        with open(Path(marks) / f"worker-{i}.log", "wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(CONVEYOR_BIN), "worker", "conveyor_tasks"],
                    cwd=ROOT,
                    env=environ,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return procs


def celery_env(env: Env, marks: str, backend: bool) -> dict[str, str]:
    environ = {
        **os.environ,
        "BENCH_MARK_DIR": marks,
        "BENCH_AMQP": env.amqp,
        "BENCH_CELERY_QUEUE": CELERY_QUEUE,
    }
    environ.pop("BENCH_CELERY_BACKEND", None)
    if backend:
        environ["BENCH_CELERY_BACKEND"] = env.celery_backend
    return environ


def celery_worker(
    env: Env, pool: str, backend: bool, marks: str, name: str = "w1"
) -> subprocess.Popen[bytes]:
    concurrency = "1" if pool == "solo" else "2"
    with open(Path(marks) / f"celery-{name}.log", "wb") as out:
        return subprocess.Popen(
            [
                str(CELERY_BIN),
                "-A",
                "celery_app",
                "worker",
                "-P",
                pool,
                "-c",
                concurrency,
                "-n",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "WARNING",
                "-Q",
                CELERY_QUEUE,
            ],
            cwd=BENCH / "peers",
            env=celery_env(env, marks, backend),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def celery_driver(env: Env, marks: str, backend: bool, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(CELERY_PYTHON), str(BENCH / "peers" / "celery_driver.py"), *args],
        cwd=BENCH / "peers",
        env=celery_env(env, marks, backend),
        stdout=subprocess.PIPE,
        start_new_session=True,
    )


def driver_result(proc: subprocess.Popen[bytes], timeout: float = 600) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    lines = out.decode().strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def kombu_consumers(env: Env, count: int, marks: str) -> list[subprocess.Popen[bytes]]:
    environ = {**os.environ, "BENCH_MARK_DIR": marks}
    return [
        subprocess.Popen(
            [str(PYTHON), str(BENCH / "kombu_raw.py"), "consume", env.amqp, KOMBU_QUEUE],
            env=environ,
            start_new_session=True,
        )
        for _ in range(count)
    ]


# -- conveyor producer side --------------------------------------------------------------------
def conveyor_spec(task: Any) -> Any:
    from conveyor.core.context import new_task_spec

    return new_task_spec(task, cluster="default")


def conveyor_submit(env: Env, name: str, tasks: Sequence[Any]) -> Any:
    """Submit one job through the orchestrator (as ``client.jobs().submit`` does, without its
    extra read of the job's progress and statistics)."""
    return env.client().service.submit_job(name, [conveyor_spec(t) for t in tasks])


def conveyor_flush(env: Env) -> None:
    """Wait until the client's outbox relay published (with confirms) what was submitted."""
    relay = env.client().service.relay
    if relay is not None and not relay.flush(120):
        raise RuntimeError("conveyor's outbox relay did not publish within 120 s")


# -- results -----------------------------------------------------------------------------------
@dataclass
class Results:
    figures: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    notes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)

    def add(self, figure: str, config: str, value: float, unit: str, note: str = "") -> None:
        self.figures.setdefault((figure, config), []).append(value)
        self.units[figure] = unit
        if note:
            self.notes.setdefault((figure, config), []).append(note)
        log(f"  {figure} | {config}: {value:,.4g} {unit} {note}")


@dataclass
class RunMarks:
    marks: list[Mark]
    expected: int
    capped: bool

    @property
    def tags(self) -> list[str]:
        return [m.tag for m in self.marks]

    def check(self, seqs: Iterator[int] | range) -> str:
        """'ok' or what went wrong: lost or duplicated executions."""
        want = {str(s) for s in seqs}
        seen = [t for t in self.tags if t in want]
        missing = len(want - set(seen))
        dupes = len(seen) - len(set(seen))
        if self.capped:
            return f"capped: {len(set(seen))}/{len(want)} ran in the time cap"
        if missing or dupes:
            return f"LOST {missing}, duplicated {dupes}"
        return ""


def wait_marks(marks: str, count: int, cap: float, procs: Sequence[Any] = ()) -> RunMarks:
    watcher = Watcher(marks)
    deadline = time.monotonic() + cap
    while watcher.poll() < count and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a worker exited early; see logs in {marks}")
        time.sleep(0.05)
    capped = watcher.poll() < count
    time.sleep(0.3)  # late duplicates show up too
    return RunMarks(read_marks(marks), count, capped)


def throughput_figures(
    res: Results, config: str, mode: str, run: RunMarks, n: int, since: float | None
) -> None:
    work = [m for m in run.marks if m.tag.isdigit() and int(m.tag) < n]
    if len(work) < 2:
        res.add(f"{mode} throughput", config, 0.0, "tasks/s", "no executions")
        return
    first, last = work[0].at, work[-1].at
    if since is None:  # drain: first → last execution (start-up excluded)
        rate = (len(work) - 1) / max(last - first, 1e-9)
    else:  # produce+consume: first publish → last execution
        rate = len(work) / max(last - since, 1e-9)
    longest, stalls = gaps(work)
    note = run.check(range(n))
    res.add(f"{mode} throughput", config, rate, "tasks/s", note)
    res.add(f"{mode} longest gap between starts", config, longest * 1000, "ms")
    if stalls:
        res.add(f"{mode} stalls > 1 s", config, stalls, "count")


# -- the benchmarks ----------------------------------------------------------------------------
def conveyor_throughput(
    env: Env, res: Results, runners: int, mode: str, n: int, cap: float
) -> None:
    from conveyor_tasks import Noop

    config = f"conveyor {runners} runner{'s' if runners > 1 else ''}"
    env.reset_conveyor()
    marks = env.marks_dir(f"conveyor-{mode}-{runners}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if mode == "drain":
            t0 = time.time()
            conveyor_submit(env, "drain", [Noop(i) for i in range(n)])
            conveyor_flush(env)  # committed and published (confirmed), as Celery's enqueue
            res.add("enqueue rate (pre-fill)", config, n / (time.time() - t0), "msg/s")
            procs = conveyor_workers(env, runners, marks)
            run = wait_marks(marks, n, cap, procs)
            throughput_figures(res, config, mode, run, n, None)
        else:
            procs = conveyor_workers(env, runners, marks)
            for i in range(WARMUP):
                conveyor_submit(env, "warmup", [Noop(-1 - i)])
            if not Watcher(marks).wait_for(WARMUP, 60, 0.01):
                raise RuntimeError(f"conveyor workers did not warm up; see {marks}")
            t0 = time.time()
            for i in range(n):
                conveyor_submit(env, "e2e", [Noop(i)])
            conveyor_flush(env)
            res.add("producer rate during e2e", config, n / (time.time() - t0), "msg/s")
            run = wait_marks(marks, n + WARMUP, cap, procs)
            throughput_figures(res, config, mode, run, n, t0)
        done = env.conveyor_sql(
            "SELECT count(*) FROM tasks WHERE state = 'COMPUTED' AND display = 'Noop'"
        )[0][0]
        if not run.capped and done < n:
            log(f"  !! PostgreSQL recorded {done} COMPUTED of {n}")
    finally:
        stop(procs)


def celery_throughput(
    env: Env, res: Results, pool: str, backend: bool, mode: str, n: int, cap: float
) -> None:
    kind = "solo" if pool == "solo" else "prefork 2"
    config = f"celery {kind}, {'db' if backend else 'no'} backend"
    env.purge()
    if backend:
        env.reset_celery()
    marks = env.marks_dir(f"celery-{mode}-{pool}-{backend}")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if mode == "drain":
            out = driver_result(celery_driver(env, marks, backend, "enqueue", str(n)))
            res.add("enqueue rate (pre-fill)", config, n / out["elapsed"], "msg/s")
            procs = [celery_worker(env, pool, backend, marks)]
            run = wait_marks(marks, n, cap, procs)
            throughput_figures(res, config, mode, run, n, None)
        else:
            procs = [celery_worker(env, pool, backend, marks)]
            driver_result(celery_driver(env, marks, backend, "enqueue", str(WARMUP), "1000000"))
            if not Watcher(marks).wait_for(WARMUP, 120, 0.01):
                log("  celery did not warm up within 120 s (stalls); measuring anyway")
            prod = celery_driver(env, marks, backend, "enqueue", str(n))
            out = driver_result(prod)
            res.add("producer rate during e2e", config, n / out["elapsed"], "msg/s")
            run = wait_marks(marks, n + WARMUP, cap, procs)
            throughput_figures(res, config, mode, run, n, out["first_publish"])
        if backend and not run.capped:
            rows = env.celery_rows()
            if rows < n:
                log(f"  !! celery_taskmeta holds {rows} rows for {n} tasks")
    finally:
        stop(procs, kill=True)  # acks_late: nothing is lost by a kill; the queue is purged next
        env.purge()


def kombu_throughput(env: Env, res: Results, consumers: int, n: int, cap: float) -> None:
    config = f"raw kombu prefetch 1, {consumers} consumer{'s' if consumers > 1 else ''}"
    env.purge()
    marks = env.marks_dir(f"kombu-{consumers}")
    t0 = time.time()
    subprocess.run(
        [str(PYTHON), str(BENCH / "kombu_raw.py"), "publish", env.amqp, KOMBU_QUEUE, str(n)],
        check=True,
    )
    res.add("enqueue rate (pre-fill)", config, n / (time.time() - t0), "msg/s")
    procs = kombu_consumers(env, consumers, marks)
    try:
        run = wait_marks(marks, n, cap, procs)
        throughput_figures(res, config, "drain", run, n, None)
    finally:
        stop(procs, kill=True)
        env.purge()


def latency_of(run_marks: Sequence[Mark]) -> list[float]:
    out = []
    for m in run_marks:
        parts = m.tag.split(" ")
        if len(parts) == 2:
            out.append((m.at - float(parts[1])) * 1000)
    return sorted(out)


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    k = (len(values) - 1) * p
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def record_latency(res: Results, config: str, lat: list[float], expected: int) -> None:
    note = "" if len(lat) == expected else f"{len(lat)}/{expected} probes"
    res.add("submit→start p50", config, percentile(lat, 0.5), "ms", note)
    res.add("submit→start p95", config, percentile(lat, 0.95), "ms")
    res.add("submit→start p99", config, percentile(lat, 0.99), "ms")
    res.add("submit→start max", config, lat[-1] if lat else float("nan"), "ms")


def conveyor_latency_memory(env: Env, res: Results, samples: int) -> None:
    from conveyor_tasks import Noop, Probe

    config = "conveyor 1 runner"
    env.reset_conveyor()
    marks = env.marks_dir("conveyor-latency")
    procs = conveyor_workers(env, 1, marks)
    try:
        for i in range(WARMUP):
            conveyor_submit(env, "warmup", [Noop(-1 - i)])
        watcher = Watcher(marks)
        if not watcher.wait_for(WARMUP, 60, 0.01):
            raise RuntimeError(f"conveyor worker did not warm up; see {marks}")
        time.sleep(2.0)
        main, _total = rss_mib(procs[0])
        res.add("idle runner RSS", config, main, "MiB")
        seen = watcher.poll()
        for i in range(samples):
            conveyor_submit(env, "latency", [Probe(i, time.time())])
            if not watcher.wait_for(seen + 1, 30):
                break
            seen += 1
            time.sleep(0.005)
        record_latency(res, config, latency_of(read_marks(marks)), samples)
    finally:
        stop(procs)


def celery_latency_memory(env: Env, res: Results, samples: int) -> None:
    config = "celery solo, no backend"
    env.purge()
    marks = env.marks_dir("celery-latency")
    procs = [celery_worker(env, "solo", False, marks)]
    try:
        driver_result(celery_driver(env, marks, False, "enqueue", str(WARMUP), "1000000"))
        if not Watcher(marks).wait_for(WARMUP, 120, 0.01):
            log("  celery did not warm up within 120 s (stalls)")
        time.sleep(2.0)
        main, _total = rss_mib(procs[0])
        res.add("idle runner RSS", config, main, "MiB")
        out = driver_result(celery_driver(env, marks, False, "latency", str(samples)))
        if out.get("error"):
            log(f"  {out['error']}")
        record_latency(res, config, latency_of(read_marks(marks)), samples)
    finally:
        stop(procs, kill=True)
        env.purge()


def fanout_figures(res: Results, config: str, marks: list[Mark], width: int) -> float:
    start = next(m.at for m in marks if m.tag == "fanout-start")
    children = [m for m in marks if m.tag.isdigit()]
    note = RunMarks(marks, width, len(children) < width).check(range(width))
    res.add(f"fan-out {width:,}: start → all done", config, children[-1].at - start, "s", note)
    return start


def conveyor_fanout(env: Env, res: Results, width: int, cap: float) -> None:
    from conveyor_tasks import Fanout

    config = "conveyor 2 runners"
    env.reset_conveyor()
    marks = env.marks_dir(f"conveyor-fanout-{width}")
    procs = conveyor_workers(env, 2, marks)
    try:
        time.sleep(1.5)  # both runners consuming
        conveyor_submit(env, "fanout", [Fanout(width)])
        run = wait_marks(marks, width + 2, cap, procs)
        start = next(m.at for m in run.marks if m.tag == "fanout-start")
        published = env.conveyor_sql(
            "SELECT extract(epoch FROM max(published_at)), count(*) FROM tasks "
            "WHERE parent_id IS NOT NULL"
        )[0]
        res.add(
            f"fan-out {width:,}: committed + published",
            config,
            float(published[0]) - start,
            "s",
        )
        fanout_figures(res, config, run.marks, width)
    finally:
        stop(procs)


def celery_fanout(env: Env, res: Results, width: int, cap: float) -> None:
    config = "celery prefork 2, no backend"
    env.purge()
    marks = env.marks_dir(f"celery-fanout-{width}")
    procs = [celery_worker(env, "prefork", False, marks)]
    try:
        time.sleep(2.0)
        driver_result(celery_driver(env, marks, False, "fanout", str(width)))
        run = wait_marks(marks, width + 2, cap, procs)
        start = next(m.at for m in run.marks if m.tag == "fanout-start")
        end = next((m.at for m in run.marks if m.tag == "fanout-end"), float("nan"))
        res.add(
            f"fan-out {width:,}: committed + published",
            config,
            end - start,
            "s",
            "enqueued, no confirms, nothing committed",
        )
        fanout_figures(res, config, run.marks, width)
    finally:
        stop(procs, kill=True)
        env.purge()


def recovery(
    res: Results,
    config: str,
    marks: str,
    start_workers: Callable[[], list[subprocess.Popen[bytes]]],
    submit: Callable[[], None],
    note: str,
) -> None:
    procs = start_workers()
    try:
        time.sleep(3.0)
        submit()
        watcher = Watcher(marks)
        if not watcher.wait_for(1, 60, 0.001):
            raise RuntimeError(f"the sleeping task never started; see {marks}")
        victim_pid = int(watcher.lines[0].split(" ")[1])
        victim = next(
            (p for p in procs if victim_pid in {p.pid, *_descendants(p.pid)}),
            None,
        )
        if victim is None:
            raise RuntimeError("could not find the process running the task")
        time.sleep(0.5)
        killed_at = time.time()
        os.killpg(victim.pid, signal.SIGKILL)
        if not watcher.wait_for(2, 120, 0.005):
            res.add("recovery after kill -9", config, float("nan"), "s", "never ran again")
            return
        again = read_marks(marks)[1]
        res.add("recovery after kill -9", config, again.at - killed_at, "s", note)
    finally:
        stop(procs, kill=True)


def _descendants(pid: int) -> set[int]:
    with contextlib.suppress(psutil.Error):
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    return set()


def conveyor_recovery(env: Env, res: Results, lease: float, sweep: float) -> None:
    from conveyor_tasks import Sleep

    env.reset_conveyor()
    marks = env.marks_dir("conveyor-recovery")
    recovery(
        res,
        "conveyor 2 runners",
        marks,
        lambda: conveyor_workers(env, 2, marks, lease=lease, sweep=sweep),
        lambda: conveyor_submit(env, "recovery", [Sleep(1, 30.0)]) and None,
        f"lease {lease:g} s, sweep every {sweep:g} s",
    )


def celery_recovery(env: Env, res: Results) -> None:
    env.purge()
    marks = env.marks_dir("celery-recovery")
    recovery(
        res,
        "celery 2 solo workers",
        marks,
        lambda: [
            celery_worker(env, "solo", False, marks, "w1"),
            celery_worker(env, "solo", False, marks, "w2"),
        ],
        lambda: driver_result(celery_driver(env, marks, False, "sleep", "1", "30")) and None,
        "acks_late: redelivered when the connection drops",
    )
    env.purge()


# -- report ------------------------------------------------------------------------------------
PAIRS = [
    # (figure prefix, conveyor config, peer config)
    ("drain throughput", "conveyor 1 runner", "celery solo, no backend"),
    ("drain throughput", "conveyor 1 runner", "celery solo, db backend"),
    ("drain throughput", "conveyor 1 runner", "raw kombu prefetch 1, 1 consumer"),
    ("drain throughput", "conveyor 2 runners", "celery prefork 2, no backend"),
    ("drain throughput", "conveyor 2 runners", "celery prefork 2, db backend"),
    ("drain throughput", "conveyor 2 runners", "raw kombu prefetch 1, 2 consumers"),
    ("drain throughput", "conveyor 2 runners", "raw kombu prefetch 1, 1 consumer"),
    ("e2e throughput", "conveyor 1 runner", "celery solo, no backend"),
    ("e2e throughput", "conveyor 1 runner", "celery solo, db backend"),
    ("e2e throughput", "conveyor 2 runners", "celery prefork 2, no backend"),
    ("e2e throughput", "conveyor 2 runners", "celery prefork 2, db backend"),
    ("submit→start p50", "conveyor 1 runner", "celery solo, no backend"),
    ("submit→start p95", "conveyor 1 runner", "celery solo, no backend"),
    ("submit→start p99", "conveyor 1 runner", "celery solo, no backend"),
    ("idle runner RSS", "conveyor 1 runner", "celery solo, no backend"),
    ("recovery after kill -9", "conveyor 2 runners", "celery 2 solo workers"),
]


def fmt(value: float) -> str:
    if value != value:  # nan
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def summary(values: list[float]) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return f"**{fmt(med)}**"
    return f"**{fmt(med)}** [{fmt(min(values))} - {fmt(max(values))}]"


def report(res: Results, info: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"Machine: {info['machine_start']['cores']} cores ({info['machine_start']['cpu']}), "
        f"{info['machine_start']['mem_gib']} GiB; load average at start "
        f"{info['machine_start']['load']}, at end {info['machine_end']['load']}. "
        f"N = {args.n:,} pre-filled, {args.e2e_n:,} produce+consume (Celery db backend: at "
        f"most {args.db_n:,}); rounds = {args.rounds}; time cap {args.cap:g} s "
        f"({args.solo_cap:g} s for Celery's solo pool); "
        f"latency samples = {args.samples}, conveyor queues: {args.queue_type}.",
        "",
        "| figure | system / config | median [min - max] | unit | runs | notes |",
        "|---|---|---:|---|---:|---|",
    ]
    for (figure, config), values in res.figures.items():
        notes = "; ".join(sorted(set(res.notes.get((figure, config), []))))
        lines.append(
            f"| {figure} | {config} | {summary(values)} | {res.units[figure]} | "
            f"{len(values)} | {notes} |"
        )
    lines += [
        "",
        "| ratio conveyor / peer (medians) | conveyor | peer | ratio |",
        "|---|---|---|---:|",
    ]
    for figure, mine, peer in PAIRS:
        a, b = res.figures.get((figure, mine)), res.figures.get((figure, peer))
        if a and b and statistics.median(b):
            ratio = statistics.median(a) / statistics.median(b)
            lines.append(f"| {figure} | {mine} | {peer} | **{ratio:.2f}x** |")
    for width in args.fanout:
        for part in ("committed + published", "start → all done"):
            figure = f"fan-out {width:,}: {part}"
            a = res.figures.get((figure, "conveyor 2 runners"))
            b = res.figures.get((figure, "celery prefork 2, no backend"))
            if a and b and statistics.median(b):
                ratio = statistics.median(a) / statistics.median(b)
                lines.append(
                    f"| {figure} | conveyor 2 runners | celery prefork 2, no backend | "
                    f"**{ratio:.2f}x** |"
                )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------
SECTIONS = ("throughput", "latency", "fanout", "recovery")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672//")
    parser.add_argument("--n", type=int, default=20_000, help="tasks per throughput run")
    parser.add_argument("--db-n", type=int, help="tasks per Celery db-backend run [N/4]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=500, help="latency probes")
    parser.add_argument("--fanout", default="10000,100000", help="fan-out widths")
    parser.add_argument("--e2e-n", type=int, help="tasks per produce+consume run [N/4]")
    parser.add_argument("--cap", type=float, default=120.0, help="time cap of one run (s)")
    parser.add_argument(
        "--solo-cap",
        type=float,
        default=30.0,
        help="time cap of Celery solo-pool runs (s): stock solo stalls 10 s at a time",
    )
    parser.add_argument("--lease", type=float, default=5.0, help="conveyor lease for recovery")
    parser.add_argument("--sweep", type=float, default=1.0, help="sweep interval for recovery")
    parser.add_argument("--queue-type", default="classic", choices=["classic", "quorum"])
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--keep", action="store_true", help="keep worker logs and markers")
    parser.add_argument("--skip", default="", help="configs to skip (substring match)")
    parser.add_argument("--quick", action="store_true", help="N=4000, 1 round, 200 probes")
    parser.add_argument("--json", default=str(BENCH / "results" / "last.json"))
    args = parser.parse_args()
    if args.quick:  # only what was not given explicitly
        given = {a.split("=")[0] for a in sys.argv[1:]}
        for flag, value in (
            ("--n", 4000),
            ("--rounds", 1),
            ("--samples", 200),
            ("--fanout", "10000"),
            ("--cap", 60.0),
            ("--solo-cap", 20.0),
        ):
            if flag not in given:
                setattr(args, flag[2:].replace("-", "_"), value)
    args.fanout = [int(x) for x in str(args.fanout).split(",") if x]
    args.db_n = args.db_n or max(args.n // 4, 100)
    args.e2e_n = args.e2e_n or max(args.n // 4, 100)
    only = set(args.only.split(","))
    skip = [s for s in args.skip.split(",") if s]

    if not CELERY_BIN.exists():
        sys.exit(f"Celery is not installed in {CELERY_VENV}: run `make bench`")
    work = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
    env = Env(args.pg, args.amqp, args.queue_type, work)
    env.create()
    res = Results()
    info: dict[str, Any] = {"machine_start": machine(), "started": time.time()}
    log(f"machine: {info['machine_start']}; work folder {work}")

    def want(config: str) -> bool:
        return not any(s in config for s in skip)

    failed = True
    try:
        if "throughput" in only:
            runs: list[tuple[str, Callable[[], None]]] = []
            for mode in ("drain", "e2e"):
                n = args.n if mode == "drain" else args.e2e_n
                db_n = min(args.db_n, n)
                cap, solo_cap = args.cap, args.solo_cap
                runs += [
                    ("conveyor 1", partial(conveyor_throughput, env, res, 1, mode, n, cap)),
                    (
                        "celery solo none",
                        partial(celery_throughput, env, res, "solo", False, mode, n, solo_cap),
                    ),
                    ("conveyor 2", partial(conveyor_throughput, env, res, 2, mode, n, cap)),
                    (
                        "celery prefork none",
                        partial(celery_throughput, env, res, "prefork", False, mode, n, cap),
                    ),
                    (
                        "celery solo db",
                        partial(celery_throughput, env, res, "solo", True, mode, db_n, solo_cap),
                    ),
                    (
                        "celery prefork db",
                        partial(celery_throughput, env, res, "prefork", True, mode, db_n, cap),
                    ),
                ]
            runs += [
                ("kombu 1", partial(kombu_throughput, env, res, 1, args.n, args.cap)),
                ("kombu 2", partial(kombu_throughput, env, res, 2, args.n, args.cap)),
            ]
            for r in range(args.rounds):
                for name, fn in runs:
                    if want(name):
                        log(f"round {r + 1}/{args.rounds}: {name}")
                        fn()
        if "latency" in only:
            for r in range(args.rounds):
                log(f"latency + memory, round {r + 1}/{args.rounds}")
                conveyor_latency_memory(env, res, args.samples)
                celery_latency_memory(env, res, args.samples)
        if "fanout" in only:
            for width in args.fanout:
                log(f"fan-out {width:,}")
                conveyor_fanout(env, res, width, max(args.cap, width / 100))
                celery_fanout(env, res, width, max(args.cap, width / 100))
        if "recovery" in only:
            log("recovery")
            conveyor_recovery(env, res, args.lease, args.sweep)
            celery_recovery(env, res)
        failed = False
    finally:
        info["machine_end"] = machine()
        info["elapsed"] = time.time() - info["started"]
        env.drop()
        if failed or args.keep:
            log(f"kept {work} (worker logs and markers) for a look")
        else:
            shutil.rmtree(work, ignore_errors=True)
    table = report(res, info, args)
    print(table)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "info": info,
                "args": {k: v for k, v in vars(args).items()},
                "figures": [
                    {"figure": f, "config": c, "values": v, "unit": res.units[f]}
                    for (f, c), v in res.figures.items()
                ],
                "table": table,
            },
            indent=1,
        )
    )
    log(f"done in {info['elapsed'] / 60:.1f} min; results in {out}")


if __name__ == "__main__":
    main()
