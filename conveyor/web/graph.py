"""One level of a job's task tree as a graph: nodes, groups and dependency edges.

A level is the job's roots or the children of one task. It is built from an aggregate (counts
per identifier and state) plus at most a few pages of tasks, never from the whole level: an
identifier with more than :data:`GROUP_MIN` tasks on the level is drawn as one group node
("1,000 Thumbnail tasks"), whose members the UI pages through on demand. Dependency edges
(always between siblings) are drawn between the nodes that hold their ends; for a large level
they come from a sample of each group's members, which shows the usual shapes (a fan-out
feeding a sink, a stage feeding a stage) without reading 10^5 rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

from conveyor.core.identifiers import JobId, TaskId, TaskIdentifier
from conveyor.core.model import TaskRecord
from conveyor.core.views import ChildGroup, TaskQuery
from conveyor.web.models import GraphEdge, GraphLevel, GraphNode, Identifier, task_summary

#: A level with at most this many tasks is read whole.
LEVEL_LIMIT = 200
#: An identifier with more tasks than this on one level becomes a group node.
GROUP_MIN = 12
#: Members of a group read to find its dependency edges.
SAMPLE = 25
#: Dependencies of one task followed to draw edges.
DEPS_PER_TASK = 50
#: Dependencies outside the tasks read that are looked up one by one, per level.
LOOKUPS = 50


class GraphReads(Protocol):
    """Exactly the reads a level needs (a ``ReadService`` has them)."""

    def children_summary(self, job_id: JobId, parent_id: TaskId | None) -> list[ChildGroup]: ...

    def query_tasks(self, query: TaskQuery) -> list[TaskRecord]: ...

    def child_counts(self, task_ids: Sequence[TaskId]) -> dict[TaskId, int]: ...

    def get_task(self, task_id: TaskId) -> TaskRecord | None: ...


def _group_key(ident: TaskIdentifier) -> str:
    return f"g:{ident.name}@{ident.version}"


def _ident(ident: TaskIdentifier) -> Identifier:
    return Identifier(name=ident.name, version=ident.version)


def build_level(service: GraphReads, job_id: JobId, parent_id: TaskId | None) -> GraphLevel:
    """The graph of one level. The caller checks that the job (and parent) exist."""
    summary = service.children_summary(job_id, parent_id)
    states: dict[TaskIdentifier, dict[str, int]] = defaultdict(dict)
    for group in summary:
        states[group.identifier][group.state.value] = group.count
    sizes = {ident: sum(counts.values()) for ident, counts in states.items()}
    total = sum(sizes.values())
    roots = parent_id is None

    def page(identifier: TaskIdentifier | None, limit: int) -> list[TaskRecord]:
        query = TaskQuery(
            job_id,
            parent_id=parent_id,
            roots=roots,
            identifier=identifier,
            limit=limit,
            include_input=False,
        )
        return service.query_tasks(query)

    grouped = {ident for ident, size in sizes.items() if size > GROUP_MIN}
    singles: list[TaskRecord] = []
    samples: list[TaskRecord] = []
    if total <= LEVEL_LIMIT:
        for task in page(None, LEVEL_LIMIT):
            (samples if task.identifier in grouped else singles).append(task)
    else:
        for ident in sorted(sizes):
            if ident in grouped:
                samples += page(ident, SAMPLE)
            else:
                singles += page(ident, GROUP_MIN)
        singles.sort(key=lambda t: t.id)

    key_of: dict[TaskId, str] = {t.id: f"t:{t.id}" for t in singles}
    key_of.update({t.id: _group_key(t.identifier) for t in samples})
    child_counts = service.child_counts([t.id for t in singles]) if singles else {}

    nodes: list[GraphNode] = []
    placed_groups: set[TaskIdentifier] = set()
    # Nodes in creation order; a group takes the place of its first member read.
    for task in sorted(singles + samples, key=lambda t: t.id):
        if task.identifier in grouped:
            if task.identifier in placed_groups:
                continue
            placed_groups.add(task.identifier)
            nodes.append(
                GraphNode(
                    key=_group_key(task.identifier),
                    kind="group",
                    identifier=_ident(task.identifier),
                    count=sizes[task.identifier],
                    states=states[task.identifier],
                )
            )
        else:
            nodes.append(
                GraphNode(
                    key=key_of[task.id],
                    kind="task",
                    task=task_summary(task),
                    children=child_counts.get(task.id, 0),
                    identifier=_ident(task.identifier),
                    count=1,
                    states={task.state.value: 1},
                )
            )
    for ident in sorted(grouped - placed_groups):  # groups none of whose members were read
        nodes.append(
            GraphNode(
                key=_group_key(ident),
                kind="group",
                identifier=_ident(ident),
                count=sizes[ident],
                states=states[ident],
            )
        )

    edges: set[tuple[str, str]] = set()
    lookups = 0
    for task in singles + samples:
        target = key_of[task.id]
        for dep in task.depends_on[:DEPS_PER_TASK]:
            source = key_of.get(dep)
            if source is None and lookups < LOOKUPS and grouped:
                lookups += 1
                found = service.get_task(dep)
                if found is not None and found.identifier in grouped:
                    source = key_of[dep] = _group_key(found.identifier)
            if source is not None and source != target:
                edges.add((source, target))
    return GraphLevel(
        job_id=str(job_id),
        parent_id=str(parent_id) if parent_id else None,
        total=total,
        nodes=nodes,
        edges=[GraphEdge(source=s, target=t) for s, t in sorted(edges)],
    )
