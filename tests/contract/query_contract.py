"""The contract of ``tx.reads``, the read-only monitoring port
(:class:`conveyor.core.ports.MonitoringReads`).

Subclass ``MonitoringReadsContract`` and provide a ``store`` fixture returning a fresh, empty
store (with only the ``default`` cluster). The in-memory store runs it in ``tests/memory``, the
SQL store on SQLite and PostgreSQL in ``integration/store_sql``, unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.ids import uuid7
from conveyor.core.model import Cluster, JobState, TaskError, TaskRecord, TaskState
from conveyor.core.ports import Store, StoreTx
from conveyor.core.views import ChildGroup, IdentifierStateCount, QueueStats, TaskQuery
from tests.contract.store_fixtures import LEAF, StoreFixture, child_record, new_job, spec

OTHER = TaskIdentifier("Other", "v2.0")


def children(store: Store, parent: TaskRecord, count: int, **overrides: Any) -> list[TaskRecord]:
    records = [child_record(parent, **overrides) for _ in range(count)]
    store.run(lambda tx: tx.tasks.insert_tasks(records))
    return records


def get(store: Store, task_id: TaskId) -> TaskRecord:
    task = store.run(lambda tx: tx.tasks.get_task(task_id))
    assert task is not None
    return task


def set_state(store: Store, task_id: TaskId, state: TaskState, **fields: Any) -> None:
    def run(tx: StoreTx) -> None:
        task = tx.tasks.lock_task(task_id)
        assert task is not None
        task.state = state
        for name, value in fields.items():
            setattr(task, name, value)
        tx.tasks.save_task(task)

    store.run(run)


def run_attempt(store: Store, task_id: TaskId, outcome: str = "computed") -> None:
    """Claim the task and end its attempt with ``outcome`` (no state rule applied)."""
    claimed = store.run(lambda tx: tx.claims.claim(task_id, "runner-1", 30))
    assert claimed is not None
    store.run(lambda tx: tx.attempts.end_attempt(task_id, claimed.attempt, outcome, None))


class MonitoringReadsContract(StoreFixture):
    # -- jobs ----------------------------------------------------------------------------------
    def test_jobs_are_counted_per_state(self, store: Store) -> None:
        assert store.run(lambda tx: tx.reads.count_jobs_by_state()) == {}
        jobs = [new_job(store) for _ in range(3)]
        store.run(lambda tx: tx.jobs.set_job_state(jobs[0].id, JobState.FAILED))
        counts = store.run(lambda tx: tx.reads.count_jobs_by_state())
        assert counts == {JobState.SUBMITTED: 2, JobState.FAILED: 1}

    def test_task_counts_of_several_jobs_in_one_call(self, store: Store) -> None:
        a_root, b_root = spec(), spec()
        a = new_job(store, a_root, spec())
        b = new_job(store, b_root)
        set_state(store, a_root.id, TaskState.COMPUTED)
        unknown = JobId(uuid7())
        counts = store.run(lambda tx: tx.reads.task_counts_by_job([a.id, b.id, unknown]))
        assert counts == {
            a.id: {TaskState.COMPUTED: 1, TaskState.QUEUED: 1},
            b.id: {TaskState.QUEUED: 1},
            unknown: {},
        }

    # -- queues --------------------------------------------------------------------------------
    def test_queue_stats_count_dispatchable_and_running_tasks_per_queue(self, store: Store) -> None:
        store.run(lambda tx: tx.clusters.insert_cluster(Cluster("gpu", "GPU")))
        first, second = spec(), spec()
        waiting = spec(depends_on=(first.id,))
        new_job(store, first, second, waiting, spec(OTHER, cluster="gpu"))
        held = new_job(store, spec(), spec())  # its job failed: not dispatchable
        store.run(lambda tx: tx.jobs.set_job_state(held.id, JobState.FAILED))
        store.run(lambda tx: tx.claims.claim(first.id, "runner-1", 30))
        assert store.run(lambda tx: tx.reads.queue_stats()) == [
            QueueStats("default", LEAF, ready=1, running=1),
            QueueStats("gpu", OTHER, ready=1, running=0),
        ]

    def test_queue_stats_count_a_pending_retry_back_off_and_leave_out_idle_queues(
        self, store: Store
    ) -> None:
        root = spec()
        new_job(store, root)
        later = store.run(lambda tx: tx.now()) + dt.timedelta(hours=1)
        set_state(store, root.id, TaskState.QUEUED, not_before=later)
        assert store.run(lambda tx: tx.reads.queue_stats()) == [QueueStats("default", LEAF, 1, 0)]
        set_state(store, root.id, TaskState.COMPUTED, not_before=None)
        assert store.run(lambda tx: tx.reads.queue_stats()) == []

    # -- failures ------------------------------------------------------------------------------
    def test_recent_failures_are_newest_first_with_their_job_name(self, store: Store) -> None:
        roots = [spec(), spec(), spec(), spec()]
        job = new_job(store, *roots, name="nightly")
        now = store.run(lambda tx: tx.now())
        error = TaskError("ValueError", "bad input", "Traceback…")
        set_state(store, roots[0].id, TaskState.FAILED, stopped_at=now, error=error)
        set_state(
            store,
            roots[1].id,
            TaskState.FAILED_OPTIONAL,
            stopped_at=now + dt.timedelta(seconds=5),
            error=error,
        )
        set_state(store, roots[2].id, TaskState.COMPUTED, stopped_at=now + dt.timedelta(seconds=9))
        found = store.run(lambda tx: tx.reads.recent_failures(10))
        assert [f.task_id for f in found] == [roots[1].id, roots[0].id]
        latest = found[0]
        assert (latest.job_id, latest.job_name, latest.state) == (
            job.id,
            "nightly",
            TaskState.FAILED_OPTIONAL,
        )
        assert latest.identifier == LEAF and latest.error == error and latest.cluster == "default"
        assert latest.stopped_at == now + dt.timedelta(seconds=5)
        assert [f.task_id for f in store.run(lambda tx: tx.reads.recent_failures(1))] == [
            roots[1].id
        ]
        assert store.run(lambda tx: tx.reads.recent_failures(0)) == []

    # -- task pages ----------------------------------------------------------------------------
    def test_roots_and_children_are_paged_in_id_order(self, store: Store) -> None:
        roots = [spec(), spec(), spec()]
        job = new_job(store, *roots)
        parent = get(store, roots[0].id)
        kids = children(store, parent, 5)
        other_kids = children(store, get(store, roots[1].id), 2)

        def page(**kw: Any) -> list[TaskId]:
            query = TaskQuery(job.id, **kw)
            return [t.id for t in store.run(lambda tx: tx.reads.query_tasks(query))]

        assert page(roots=True) == [r.id for r in roots]
        assert page(roots=True, limit=2, after=roots[0].id) == [roots[1].id, roots[2].id]
        assert page(parent_id=parent.id, limit=3) == [k.id for k in kids[:3]]
        assert page(parent_id=parent.id, after=kids[2].id) == [k.id for k in kids[3:]]
        everything = [r.id for r in roots] + [k.id for k in kids + other_kids]
        assert page(limit=100) == sorted(everything)
        assert page(parent_id=parent.id, limit=0) == []

    def test_task_pages_filter_by_state_and_identifier(self, store: Store) -> None:
        roots = [spec(), spec(OTHER), spec()]
        job = new_job(store, *roots)
        set_state(store, roots[2].id, TaskState.FAILED)

        def page(**kw: Any) -> list[TaskId]:
            query = TaskQuery(job.id, **kw)
            return [t.id for t in store.run(lambda tx: tx.reads.query_tasks(query))]

        assert page(states=(TaskState.FAILED,)) == [roots[2].id]
        assert page(states=(TaskState.FAILED, TaskState.QUEUED)) == [r.id for r in roots]
        assert page(identifier=OTHER) == [roots[1].id]
        assert page(identifier=TaskIdentifier("Leaf", "v1.0")) == []
        assert page(roots=True, identifier=LEAF, states=(TaskState.QUEUED,)) == [roots[0].id]

    def test_task_pages_are_scoped_to_their_job_and_may_leave_out_inputs(
        self, store: Store
    ) -> None:
        root = spec()
        job = new_job(store, root)
        other = new_job(store)
        with_input = store.run(lambda tx: tx.reads.query_tasks(TaskQuery(job.id)))
        assert [t.id for t in with_input] == [root.id] and with_input[0].input == b'{"x":1}'
        without = store.run(lambda tx: tx.reads.query_tasks(TaskQuery(job.id, include_input=False)))
        assert without[0].input == b"" and without[0].identifier == LEAF
        assert without[0].display == "Leaf" and without[0].state is TaskState.QUEUED
        query = TaskQuery(other.id, parent_id=root.id)
        assert store.run(lambda tx: tx.reads.query_tasks(query)) == []
        assert store.run(lambda tx: tx.reads.query_tasks(TaskQuery(JobId(uuid7())))) == []

    def test_children_are_summarised_per_identifier_and_state(self, store: Store) -> None:
        roots = [spec(), spec(OTHER)]
        job = new_job(store, *roots)
        parent = get(store, roots[0].id)
        kids = children(store, parent, 3) + children(store, parent, 2, identifier=OTHER)
        set_state(store, kids[0].id, TaskState.COMPUTED)
        summary = store.run(lambda tx: tx.reads.children_summary(job.id, parent.id))
        assert summary == sorted(
            [
                ChildGroup(LEAF, TaskState.COMPUTED, 1),
                ChildGroup(LEAF, TaskState.QUEUED, 2),
                ChildGroup(OTHER, TaskState.QUEUED, 2),
            ]
        )
        assert store.run(lambda tx: tx.reads.children_summary(job.id, None)) == [
            ChildGroup(LEAF, TaskState.QUEUED, 1),
            ChildGroup(OTHER, TaskState.QUEUED, 1),
        ]
        assert store.run(lambda tx: tx.reads.children_summary(job.id, TaskId(uuid7()))) == []
        assert store.run(lambda tx: tx.reads.children_summary(JobId(uuid7()), None)) == []

    def test_child_counts(self, store: Store) -> None:
        roots = [spec(), spec()]
        new_job(store, *roots)
        kids = children(store, get(store, roots[0].id), 4)
        ids = [roots[0].id, roots[1].id, kids[0].id]
        assert store.run(lambda tx: tx.reads.child_counts(ids)) == {ids[0]: 4, ids[1]: 0, ids[2]: 0}
        assert store.run(lambda tx: tx.reads.child_counts([])) == {}

    # -- attempts over time --------------------------------------------------------------------
    def test_attempts_are_counted_per_minute_and_outcome(self, store: Store) -> None:
        roots = [spec(), spec(), spec()]
        new_job(store, *roots)
        before = store.run(lambda tx: tx.now())
        run_attempt(store, roots[0].id, "computed")
        run_attempt(store, roots[1].id, "computed")
        run_attempt(store, roots[2].id, "failed")
        store.run(
            lambda tx: tx.claims.claim(roots[2].id, "runner-1", 30)
        )  # still running: not ended
        after = store.run(lambda tx: tx.now())
        buckets = store.run(
            lambda tx: tx.reads.attempts_per_minute(before - dt.timedelta(minutes=1))
        )
        assert {
            b.outcome: sum(x.count for x in buckets if x.outcome == b.outcome) for b in buckets
        } == {
            "computed": 2,
            "failed": 1,
        }
        for b in buckets:
            assert b.minute.tzinfo is not None and b.minute.second == 0
            assert b.minute.microsecond == 0
            assert before.replace(second=0, microsecond=0) <= b.minute <= after
        assert buckets == sorted(buckets)
        later = after + dt.timedelta(minutes=2)
        assert store.run(lambda tx: tx.reads.attempts_per_minute(later)) == []

    def test_ended_attempts_in_a_window_with_durations(self, store: Store) -> None:
        roots = [spec(), spec(OTHER)]
        new_job(store, *roots)
        before = store.run(lambda tx: tx.now())
        run_attempt(store, roots[0].id, "computed")
        run_attempt(store, roots[1].id, "failed")
        after = store.run(lambda tx: tx.now()) + dt.timedelta(seconds=1)
        ended = store.run(
            lambda tx: tx.reads.ended_attempts(before - dt.timedelta(seconds=1), after)
        )
        assert sorted((e.identifier, e.outcome) for e in ended) == [
            (LEAF, "computed"),
            (OTHER, "failed"),
        ]
        assert [e.ended_at for e in ended] == sorted(e.ended_at for e in ended)
        for e in ended:
            assert 0.0 <= e.seconds < 60 and e.ended_at.tzinfo is not None
        first = min(e.ended_at for e in ended)
        assert (
            store.run(lambda tx: tx.reads.ended_attempts(before - dt.timedelta(hours=1), first))
            == []
        )
        assert (
            store.run(lambda tx: tx.reads.ended_attempts(after, after + dt.timedelta(hours=1)))
            == []
        )

    def test_tasks_are_counted_per_identifier_and_state(self, store: Store) -> None:
        roots = [spec(), spec(), spec(OTHER)]
        new_job(store, *roots[:2])
        new_job(store, roots[2])
        set_state(store, roots[0].id, TaskState.COMPUTED)
        assert store.run(lambda tx: tx.reads.task_counts_by_identifier()) == [
            IdentifierStateCount(LEAF, TaskState.COMPUTED, 1),
            IdentifierStateCount(LEAF, TaskState.QUEUED, 1),
            IdentifierStateCount(OTHER, TaskState.QUEUED, 1),
        ]
