"""Throughput over the last minutes and the Prometheus ``/metrics`` exposition.

Both keep a little state in the UI process so a scrape or a dashboard refresh reads only
what changed:

* :class:`ThroughputTracker` caches per-minute attempt counts of closed minutes; a refresh
  reads the attempts that ended in the last two minutes only.
* :class:`ConveyorCollector` is a prometheus-client custom collector over the read port: each
  scrape builds its metric families from a few aggregate reads. It keeps the task duration
  histogram as cumulative counters (as Prometheus expects): each scrape adds the attempts that
  ended since the previous one (a few seconds behind now, so transactions still committing
  are not missed). Counters start when the UI starts; ``rate()``/``histogram_quantile()``
  handle restarts. The tasks-per-state gauge is a full aggregate over the tasks table, so it
  is refreshed at most every ``task_counts_ttl`` seconds.
* :class:`MetricsCollector` owns one ``CollectorRegistry`` per app (no global registry, so
  two apps in one process, as in the tests, never share metrics) and renders it with
  prometheus-client's text exposition (format 0.0.4).

Queue depth (``conveyor_queue_depth``) counts dispatchable tasks per cluster, name and version:
the signal to scale runners on (e.g. a KEDA Prometheus scaler). A queue once seen keeps being
exported (as 0) after it drains, so a scaler sees it go to zero.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import Cluster, JobState, RunnerInfo
from conveyor.core.views import AttemptBucket, EndedAttempt, IdentifierStateCount, QueueStats

#: Upper bounds (seconds) of the duration histogram's buckets.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
#: Attempts whose ``ended_at`` is this recent are left for the next scrape (still committing).
SETTLE = dt.timedelta(seconds=2)
#: Outcomes counted as failures in throughput figures.
FAILED_OUTCOMES = frozenset({"failed", "timeout", "expired"})


class ThroughputReads(Protocol):
    """The one read :class:`ThroughputTracker` makes (a ``ReadService`` has it)."""

    def attempts_per_minute(self, since: dt.datetime) -> list[AttemptBucket]: ...


class MetricsReads(Protocol):
    """Exactly the reads a scrape makes: the collector needs nothing else of the read port."""

    def store_now(self) -> dt.datetime: ...

    def count_jobs_by_state(self) -> dict[JobState, int]: ...

    def queue_stats(self) -> list[QueueStats]: ...

    def list_runners(self, include_gone: bool = False) -> list[RunnerInfo]: ...

    def all_clusters(self) -> list[Cluster]: ...

    def ended_attempts(self, since: dt.datetime, until: dt.datetime) -> list[EndedAttempt]: ...

    def task_counts_by_identifier(self) -> list[IdentifierStateCount]: ...


def minute_of(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


class ThroughputTracker:
    """Attempts ended per minute over the last ``window`` minutes (closed minutes cached)."""

    def __init__(self, window: int = 60) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._buckets: dict[dt.datetime, dict[str, int]] = {}
        #: Minutes before this one are final in the cache.
        self._final_before: dt.datetime | None = None

    def refresh(
        self, reads: ThroughputReads, now: dt.datetime
    ) -> dict[dt.datetime, dict[str, int]]:
        current = minute_of(now)
        oldest = current - dt.timedelta(minutes=self.window - 1)
        with self._lock:
            since = oldest
            if self._final_before is not None and self._final_before > oldest:
                since = self._final_before
            fresh: dict[dt.datetime, dict[str, int]] = defaultdict(dict)
            for bucket in reads.attempts_per_minute(since):
                fresh[bucket.minute][bucket.outcome] = bucket.count
            for minute in [m for m in self._buckets if m >= since or m < oldest]:
                del self._buckets[minute]
            self._buckets.update(fresh)
            # A minute is final once the next one is over: late commits get a minute's grace.
            self._final_before = current - dt.timedelta(minutes=1)
            return dict(self._buckets)

    def points(
        self, reads: ThroughputReads, now: dt.datetime, minutes: int
    ) -> tuple[list[tuple[dt.datetime, int, int, int]], float]:
        """``minutes`` points (minute, computed, failed, other), oldest first, and the rate of
        attempts ended per second over the current and the previous minute."""
        buckets = self.refresh(reads, now)
        current = minute_of(now)
        points = []
        for i in range(minutes - 1, -1, -1):
            minute = current - dt.timedelta(minutes=i)
            counts = buckets.get(minute, {})
            computed = counts.get("computed", 0)
            failed = sum(n for o, n in counts.items() if o in FAILED_OUTCOMES)
            other = sum(counts.values()) - computed - failed
            points.append((minute, computed, failed, other))
        recent = sum(buckets.get(current, {}).values()) + sum(
            buckets.get(current - dt.timedelta(minutes=1), {}).values()
        )
        seconds = 60.0 + (now - current).total_seconds()
        return points, recent / seconds


def consumers_of(queue: QueueStats, runners: Sequence[RunnerInfo]) -> int:
    """Online runners of the queue's cluster that registered a version able to run it."""
    return sum(
        1
        for r in runners
        if r.state == "online"
        and r.cluster == queue.cluster
        and any(i.can_run(queue.identifier) for i in r.identifiers)
    )


class _Histogram:
    """Cumulative bucket counts of one (name, outcome) series."""

    def __init__(self) -> None:
        self.buckets = [0] * len(DURATION_BUCKETS)
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1

    def samples(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs, ``+Inf`` last, as HistogramMetricFamily wants."""
        pairs: list[tuple[str, float]] = [
            (_bound(b), n) for b, n in zip(DURATION_BUCKETS, self.buckets, strict=True)
        ]
        pairs.append(("+Inf", self.count))
        return pairs


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class _Families:
    """Empty families, one per metric: names, kinds and help texts in one place."""

    jobs: GaugeMetricFamily
    tasks: GaugeMetricFamily
    depth: GaugeMetricFamily
    running: GaugeMetricFamily
    consumers: GaugeMetricFamily
    online: GaugeMetricFamily
    durations: HistogramMetricFamily

    @classmethod
    def empty(cls, task_counts_ttl: float) -> _Families:
        queue = ["cluster", "name", "version"]
        return cls(
            jobs=GaugeMetricFamily("conveyor_jobs", "Jobs per state.", labels=["state"]),
            tasks=GaugeMetricFamily(
                "conveyor_tasks",
                f"Tasks per state and identifier (refreshed every {task_counts_ttl:g} s).",
                labels=["state", "name", "version"],
            ),
            depth=GaugeMetricFamily(
                "conveyor_queue_depth",
                "Dispatchable tasks (ready, job active) per cluster, name and version.",
                labels=queue,
            ),
            running=GaugeMetricFamily(
                "conveyor_tasks_running", "Running tasks per queue.", labels=queue
            ),
            consumers=GaugeMetricFamily(
                "conveyor_queue_consumers",
                "Online runners able to run a queue's tasks.",
                labels=queue,
            ),
            online=GaugeMetricFamily(
                "conveyor_runners_online", "Runners online per cluster.", labels=["cluster"]
            ),
            durations=HistogramMetricFamily(
                "conveyor_task_duration_seconds",
                "Duration of task attempts that ended since the UI started, by name and outcome.",
                labels=["name", "outcome"],
            ),
        )

    def all(self) -> list[Metric]:
        return [getattr(self, field.name) for field in fields(self)]


class ConveyorCollector(Collector):
    """A prometheus-client custom collector: every scrape reads the store through ``reads``."""

    def __init__(self, reads: MetricsReads, task_counts_ttl: float = 15.0) -> None:
        self.reads = reads
        self.task_counts_ttl = task_counts_ttl
        self._lock = threading.Lock()
        self._histograms: dict[tuple[str, str], _Histogram] = {}
        self._watermark: dt.datetime | None = None
        self._known_queues: set[tuple[str, TaskIdentifier]] = set()
        self._task_counts: list[IdentifierStateCount] = []
        self._task_counts_at = -math.inf

    def start(self) -> None:
        """Count attempts that end from now on."""
        with self._lock:
            if self._watermark is None:
                self._watermark = self.reads.store_now() - SETTLE

    def describe(self) -> Iterator[Metric]:
        """The families without samples: registering reads nothing from the store."""
        yield from _Families.empty(self.task_counts_ttl).all()

    def _observe_durations(self, now: dt.datetime) -> None:
        if self._watermark is None:
            self._watermark = now - SETTLE
            return
        until = now - SETTLE
        if until <= self._watermark:
            return
        for ended in self.reads.ended_attempts(self._watermark, until):
            key = (ended.identifier.name, ended.outcome)
            histogram = self._histograms.get(key)
            if histogram is None:
                histogram = self._histograms[key] = _Histogram()
            histogram.observe(ended.seconds)
        self._watermark = until

    def _counts(self) -> list[IdentifierStateCount]:
        if time.monotonic() - self._task_counts_at >= self.task_counts_ttl:
            self._task_counts = self.reads.task_counts_by_identifier()
            self._task_counts_at = time.monotonic()
        return self._task_counts

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = self._collect()
        yield from families

    def _collect(self) -> list[Metric]:
        reads = self.reads
        self._observe_durations(reads.store_now())
        jobs = reads.count_jobs_by_state()
        queues = reads.queue_stats()
        runners = reads.list_runners()
        clusters = [c.slug for c in reads.all_clusters()]
        counts = self._counts()
        f = _Families.empty(self.task_counts_ttl)
        for state in sorted(jobs, key=str):
            f.jobs.add_metric([state.value], jobs.get(state, 0))
        for c in counts:
            f.tasks.add_metric([c.state.value, c.identifier.name, c.identifier.version], c.count)
        by_queue = {(q.cluster, q.identifier): q for q in queues}
        self._known_queues.update(by_queue)
        for cluster, ident in sorted(self._known_queues):
            queue = by_queue.get((cluster, ident), QueueStats(cluster, ident, 0, 0))
            labels = [cluster, ident.name, ident.version]
            f.depth.add_metric(labels, queue.ready)
            f.running.add_metric(labels, queue.running)
            f.consumers.add_metric(labels, consumers_of(queue, runners))
        online: dict[str, int] = dict.fromkeys(clusters, 0)
        for r in runners:
            if r.state == "online":
                online[r.cluster] = online.get(r.cluster, 0) + 1
        for cluster, n in sorted(online.items()):
            f.online.add_metric([cluster], n)
        for (name, outcome), hist in sorted(self._histograms.items()):
            f.durations.add_metric([name, outcome], hist.samples(), hist.sum)
        return f.all()


class MetricsCollector:
    """The app's ``/metrics``: a :class:`ConveyorCollector` in a registry of its own."""

    def __init__(self, reads: MetricsReads, task_counts_ttl: float = 15.0) -> None:
        self.collector = ConveyorCollector(reads, task_counts_ttl)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)

    def start(self) -> None:
        """Count attempts that end from now on."""
        self.collector.start()

    def render(self) -> str:
        """The text exposition (format 0.0.4) of every conveyor metric."""
        return generate_latest(self.registry).decode("utf-8")
