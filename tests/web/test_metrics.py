"""/metrics: prometheus-client's exposition of a custom collector over the read port.

The text must parse with prometheus-client's own parser, keep every metric name and label,
and each app has its own registry (nothing leaks between two apps in one process).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import Cluster, JobState, RunnerInfo, TaskState
from conveyor.core.views import EndedAttempt, IdentifierStateCount, QueueStats
from conveyor.web import metrics
from conveyor.web.metrics import DURATION_BUCKETS, MetricsCollector
from tests.web.conftest import World, run_all

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """Family types by name, and every sample's value by (sample name, labels)."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return types, samples


def key(sample: str, /, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return sample, frozenset(labels.items())


def register(world: World, runner_id: str, state: str) -> None:
    now = dt.datetime.now(dt.UTC)
    world.client.service.register_runner(
        RunnerInfo(
            id=runner_id,
            cluster="default",
            host="web-test",
            pid=4242,
            identifiers=(TaskIdentifier("Chunk", "v0.3"), TaskIdentifier("Report", "v1.2")),
            started_at=now,
            last_seen=now,
            state=state,
        )
    )


def test_prometheus_metrics(fresh: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.web.flows import Report

    fresh.client.jobs().submit("queued", Report(str(fresh.flag), chunks=1))
    register(fresh, "runner-a", "online")
    first = fresh.http.get("/metrics")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/plain; version=0.0.4")
    types, samples = parse(first.text)
    assert types == {
        "conveyor_jobs": "gauge",
        "conveyor_tasks": "gauge",
        "conveyor_queue_depth": "gauge",
        "conveyor_tasks_running": "gauge",
        "conveyor_queue_consumers": "gauge",
        "conveyor_runners_online": "gauge",
        "conveyor_task_duration_seconds": "histogram",
    }
    report = {"cluster": "default", "name": "Report", "version": "v1.2"}
    assert samples[key("conveyor_jobs", state="FAILED")] == 1
    assert samples[key("conveyor_tasks", state="COMPUTED", name="Chunk", version="v0.0")] == 23
    assert samples[key("conveyor_queue_depth", **report)] == 1
    assert samples[key("conveyor_tasks_running", **report)] == 0
    assert samples[key("conveyor_queue_consumers", **report)] == 1
    assert samples[key("conveyor_runners_online", cluster="default")] == 1
    # Attempts that end after the UI started show up in the histogram.
    fresh.flag.touch()
    fresh.http.post(f"/api/jobs/{fresh.failed.id}/retry")
    run_all(fresh.client)
    monkeypatch.setattr(metrics, "SETTLE", dt.timedelta(0))
    _, samples = parse(fresh.http.get("/metrics").text)
    count = "conveyor_task_duration_seconds_count"
    summarize = samples[key(count, name="Summarize", outcome="computed")]
    assert summarize >= 1 and samples[key(count, name="Publish", outcome="computed")] >= 1
    bucket = "conveyor_task_duration_seconds_bucket"
    assert samples[key(bucket, name="Summarize", outcome="computed", le="+Inf")] == summarize
    # The drained queue stays exported, at zero.
    assert samples[key("conveyor_queue_depth", **report)] == 0


# -- the collector on its own, over a stand-in read port ----------------------------------------
REPORT = TaskIdentifier("Report", "v1.2")
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@dataclass
class Reads:
    """Just the reads ``MetricsReads`` lists, with values a test sets."""

    now: dt.datetime = NOW
    queues: list[QueueStats] = field(default_factory=list)
    ended: list[EndedAttempt] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def store_now(self) -> dt.datetime:
        return self.now

    def count_jobs_by_state(self) -> dict[JobState, int]:
        return {JobState.RUNNING: 2, JobState.FAILED: 1}

    def queue_stats(self) -> list[QueueStats]:
        return self.queues

    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]:
        return []

    def all_clusters(self) -> list[Cluster]:
        return [Cluster("default", "Default"), Cluster("gpu", "GPU")]

    def ended_attempts(self, since: dt.datetime, until: dt.datetime) -> list[EndedAttempt]:
        return [e for e in self.ended if since <= e.ended_at < until]

    def task_counts_by_identifier(self) -> list[IdentifierStateCount]:
        self.calls.append("task_counts_by_identifier")
        return [IdentifierStateCount(REPORT, TaskState.QUEUED, 3)]


def ended(seconds: float, at: dt.datetime, outcome: str = "computed") -> EndedAttempt:
    return EndedAttempt(REPORT, outcome, seconds, at)


def test_every_app_has_a_registry_of_its_own() -> None:
    busy = Reads(queues=[QueueStats("default", REPORT, 5, 1)])
    one, other = MetricsCollector(busy), MetricsCollector(Reads())
    _, a = parse(one.render())
    _, b = parse(other.render())
    depth = key("conveyor_queue_depth", cluster="default", name="Report", version="v1.2")
    assert a[depth] == 5 and depth not in b
    assert one.registry is not other.registry
    assert b[key("conveyor_runners_online", cluster="gpu")] == 0


def test_registering_reads_nothing_and_task_counts_are_cached() -> None:
    reads = Reads()
    collector = MetricsCollector(reads, task_counts_ttl=3600)
    assert reads.calls == []
    collector.render()
    collector.render()
    assert reads.calls == ["task_counts_by_identifier"]


def test_the_duration_histogram_is_cumulative_over_scrapes() -> None:
    reads = Reads()
    collector = MetricsCollector(reads)
    collector.start()  # counts from NOW - SETTLE on
    settle = metrics.SETTLE
    reads.ended = [ended(0.2, NOW), ended(7.0, NOW), ended(0.02, NOW, "failed")]
    reads.now = NOW + settle + dt.timedelta(seconds=1)
    _, first = parse(collector.render())
    reads.ended.append(ended(4000.0, reads.now - settle))  # ends after this scrape's window
    reads.now += dt.timedelta(seconds=10)
    _, second = parse(collector.render())
    labels = {"name": "Report", "outcome": "computed"}
    bucket = "conveyor_task_duration_seconds_bucket"
    assert first[key("conveyor_task_duration_seconds_count", **labels)] == 2
    assert second[key("conveyor_task_duration_seconds_count", **labels)] == 3
    assert second[key("conveyor_task_duration_seconds_sum", **labels)] == pytest.approx(4007.2)
    assert second[key(bucket, le="0.25", **labels)] == 1
    assert second[key(bucket, le="10", **labels)] == 2
    assert second[key(bucket, le="3600", **labels)] == 2
    assert second[key(bucket, le="+Inf", **labels)] == 3
    assert len([k for k in second if k[0] == bucket and ("outcome", "computed") in k[1]]) == (
        len(DURATION_BUCKETS) + 1
    )
    failed = {"name": "Report", "outcome": "failed"}
    assert second[key("conveyor_task_duration_seconds_count", **failed)] == 1
