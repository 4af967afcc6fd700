"""Timings of the web UI's reads on a job of 10^5 tasks, on PostgreSQL and SQLite.

integration/web/test_scale.py checks what makes these reads cheap from the database's plans
(index searches, buffers touched); this prints how long they take on this machine, which a
test must not assert. The job and the reads are the test's (integration/web/big_job.py).

    .venv/bin/python bench/ui_reads.py                       # both, PostgreSQL on 127.0.0.1
    .venv/bin/python bench/ui_reads.py --sqlite --repeat 5   # SQLite only
    .venv/bin/python bench/ui_reads.py --url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/ui_reads.py --postgresql --analyze  # with the planner's statistics

Each read runs ``--repeat`` times after one warm-up pass; the table gives the median and the
slowest, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, make_url, text

from conveyor import Client
from conveyor.config import Settings
from conveyor.web import create_app
from integration.web.big_job import FAN_OUT, build_big_job, read_the_pages

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def scratch_database(server: str | None, folder: Path) -> Iterator[str]:
    """A fresh database on the PostgreSQL ``server`` (dropped afterwards), or a SQLite file."""
    if server is None:
        yield f"sqlite:///{folder / 'ui-reads.db'}"
        return
    url = make_url(server).set(drivername="postgresql+psycopg")
    name = f"conveyor_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def analyze(url: str) -> None:
    """PostgreSQL's statistics now, as autovacuum gathers them a while after a big write."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()


def time_reads(
    url: str, home: Path, fan_out: int, repeat: int, with_stats: bool
) -> dict[str, list[float]]:
    """Seconds of each read of the pages, ``repeat`` times each, after one warm-up pass."""
    client = Client(database_url=url, settings=Settings(home=home))
    try:
        started = time.perf_counter()
        job_id = build_big_job(client, fan_out)
        print(f"  wrote {fan_out + 2:,} tasks in {time.perf_counter() - started:.1f} s")
        if with_stats and url.startswith("postgresql"):
            analyze(url)
        timings: dict[str, list[float]] = {}
        with TestClient(create_app(client.service), base_url="http://127.0.0.1:5555") as http:

            def get(label: str, path: str, params: dict[str, Any], record: bool = True) -> Any:
                began = time.perf_counter()
                response = http.get(path, params=params)
                if record:
                    timings.setdefault(label, []).append(time.perf_counter() - began)
                assert response.status_code == 200, response.text
                return response.json() if "json" in response.headers["content-type"] else None

            read_the_pages(lambda *a: get(*a, record=False), job_id, fan_out)
            for _ in range(repeat):
                read_the_pages(get, job_id, fan_out)
        return timings
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_SERVER, help="PostgreSQL server (scratch db)")
    parser.add_argument("--sqlite", action="store_true", help="SQLite only")
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL only")
    parser.add_argument("--fan-out", type=int, default=FAN_OUT, help="subtasks of the root")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the reads")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE (PostgreSQL) before timing, as autovacuum does a while after the write",
    )
    args = parser.parse_args()
    servers: list[tuple[str, str | None]] = []
    if not args.sqlite:
        servers.append(("postgresql", args.url))
    if not args.postgresql:
        servers.append(("sqlite", None))
    results: dict[str, dict[str, list[float]]] = {}
    for name, server in servers:
        print(f"{name}:")
        with tempfile.TemporaryDirectory() as folder, scratch_database(server, Path(folder)) as db:
            results[name] = time_reads(
                db, Path(folder) / "home", args.fan_out, args.repeat, args.analyze
            )
    labels = list(next(iter(results.values())))
    header = "".join(f" | {n} median | {n} max" for n in results)
    print(f"\n| read ({args.fan_out:,} subtasks, ms){header} |")
    print("|---" + "|---:" * 2 * len(results) + "|")
    for label in labels:
        cells = "".join(
            f" | {1000 * statistics.median(r[label]):.0f} | {1000 * max(r[label]):.0f}"
            for r in results.values()
        )
        print(f"| {label}{cells} |")


if __name__ == "__main__":
    main()
