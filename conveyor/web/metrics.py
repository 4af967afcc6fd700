"""Throughput over the last minutes and the Prometheus ``/metrics`` exposition.

Both keep a little state in the UI process so a scrape or a dashboard refresh reads only
what changed:

* :class:`ThroughputTracker` caches per-minute attempt counts of closed minutes; a refresh
  reads the attempts that ended in the last two minutes only.
* :class:`MetricsCollector` keeps the task duration histogram as cumulative counters (as
  Prometheus expects): each scrape adds the attempts that ended since the previous one
  (a few seconds behind now, so transactions still committing are not missed). Counters
  start when the UI starts; ``rate()``/``histogram_quantile()`` handle restarts.
  The tasks-per-state gauge is a full aggregate over the tasks table, so it is refreshed at
  most every ``task_counts_ttl`` seconds.

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
from collections.abc import Iterable, Sequence

from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import RunnerInfo
from conveyor.core.service import Orchestrator
from conveyor.core.views import IdentifierStateCount, QueueStats

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

    def refresh(self, service: Orchestrator, now: dt.datetime) -> dict[dt.datetime, dict[str, int]]:
        current = minute_of(now)
        oldest = current - dt.timedelta(minutes=self.window - 1)
        with self._lock:
            since = oldest
            if self._final_before is not None and self._final_before > oldest:
                since = self._final_before
            fresh: dict[dt.datetime, dict[str, int]] = defaultdict(dict)
            for bucket in service.attempts_per_minute(since):
                fresh[bucket.minute][bucket.outcome] = bucket.count
            for minute in [m for m in self._buckets if m >= since or m < oldest]:
                del self._buckets[minute]
            self._buckets.update(fresh)
            # A minute is final once the next one is over: late commits get a minute's grace.
            self._final_before = current - dt.timedelta(minutes=1)
            return dict(self._buckets)

    def points(
        self, service: Orchestrator, now: dt.datetime, minutes: int
    ) -> tuple[list[tuple[dt.datetime, int, int, int]], float]:
        """``minutes`` points (minute, computed, failed, other), oldest first, and the rate of
        attempts ended per second over the current and the previous minute."""
        buckets = self.refresh(service, now)
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


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Histogram:
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


class MetricsCollector:
    """Builds the text exposition (format 0.0.4) of conveyor's metrics."""

    def __init__(self, service: Orchestrator, task_counts_ttl: float = 15.0) -> None:
        self.service = service
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
                self._watermark = self.service.store_now() - SETTLE

    def _observe_durations(self, now: dt.datetime) -> None:
        if self._watermark is None:
            self._watermark = now - SETTLE
            return
        until = now - SETTLE
        if until <= self._watermark:
            return
        for ended in self.service.ended_attempts(self._watermark, until):
            key = (ended.identifier.name, ended.outcome)
            histogram = self._histograms.get(key)
            if histogram is None:
                histogram = self._histograms[key] = _Histogram()
            histogram.observe(ended.seconds)
        self._watermark = until

    def _counts(self) -> list[IdentifierStateCount]:
        if time.monotonic() - self._task_counts_at >= self.task_counts_ttl:
            self._task_counts = self.service.task_counts_by_identifier()
            self._task_counts_at = time.monotonic()
        return self._task_counts

    def render(self) -> str:
        with self._lock:
            service = self.service
            now = service.store_now()
            self._observe_durations(now)
            jobs = service.count_jobs_by_state()
            queues = service.queue_stats()
            runners = service.list_runners()
            clusters = [c.slug for c in service.all_clusters()]
            counts = self._counts()
            lines: list[str] = []

            def family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> None:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                lines.extend(samples)

            family(
                "conveyor_jobs",
                "gauge",
                "Jobs per state.",
                (
                    f"conveyor_jobs{_labels(state=s.value)} {jobs.get(s, 0)}"
                    for s in sorted(jobs, key=str)
                ),
            )
            family(
                "conveyor_tasks",
                "gauge",
                f"Tasks per state and identifier (refreshed every {self.task_counts_ttl:g} s).",
                (
                    "conveyor_tasks"
                    + _labels(
                        state=c.state.value, name=c.identifier.name, version=c.identifier.version
                    )
                    + f" {c.count}"
                    for c in counts
                ),
            )
            by_queue = {(q.cluster, q.identifier): q for q in queues}
            self._known_queues.update(by_queue)
            depth, running, consumers = [], [], []
            for cluster, ident in sorted(self._known_queues):
                queue = by_queue.get((cluster, ident), QueueStats(cluster, ident, 0, 0))
                labels = _labels(cluster=cluster, name=ident.name, version=ident.version)
                depth.append(f"conveyor_queue_depth{labels} {queue.ready}")
                running.append(f"conveyor_tasks_running{labels} {queue.running}")
                consumers.append(f"conveyor_queue_consumers{labels} {consumers_of(queue, runners)}")
            family(
                "conveyor_queue_depth",
                "gauge",
                "Dispatchable tasks (ready, job active) per cluster, name and version.",
                depth,
            )
            family("conveyor_tasks_running", "gauge", "Running tasks per queue.", running)
            family(
                "conveyor_queue_consumers",
                "gauge",
                "Online runners able to run a queue's tasks.",
                consumers,
            )
            online: dict[str, int] = dict.fromkeys(clusters, 0)
            for r in runners:
                if r.state == "online":
                    online[r.cluster] = online.get(r.cluster, 0) + 1
            family(
                "conveyor_runners_online",
                "gauge",
                "Runners online per cluster.",
                (
                    f"conveyor_runners_online{_labels(cluster=c)} {n}"
                    for c, n in sorted(online.items())
                ),
            )
            samples: list[str] = []
            for (name, outcome), hist in sorted(self._histograms.items()):
                for bound, n in zip(DURATION_BUCKETS, hist.buckets, strict=True):
                    le = _number(bound)
                    samples.append(
                        "conveyor_task_duration_seconds_bucket"
                        + _labels(name=name, outcome=outcome, le=le)
                        + f" {n}"
                    )
                base = _labels(name=name, outcome=outcome)
                samples.append(
                    "conveyor_task_duration_seconds_bucket"
                    + _labels(name=name, outcome=outcome, le="+Inf")
                    + f" {hist.count}"
                )
                samples.append(f"conveyor_task_duration_seconds_sum{base} {_number(hist.sum)}")
                samples.append(f"conveyor_task_duration_seconds_count{base} {hist.count}")
            family(
                "conveyor_task_duration_seconds",
                "histogram",
                "Duration of task attempts that ended since the UI started, by name and outcome.",
                samples,
            )
            return "\n".join(lines) + "\n"
