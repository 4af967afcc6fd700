"""What one transaction of the SQL store learned about the rows it holds, shared by its parts.

Each part (:mod:`.tasks`, :mod:`.jobs`, :mod:`.claims`, …) reads and writes only its own tables,
but a few facts learned by one spare another a statement: the attempt of a task this
transaction locked or claimed (``write_progress`` need not read it), the stored state of a job
whose facts it read under the job row's lock (``set_job_state`` skips writing the same state),
the jobs it inserted (their tasks need no existence check). The memo lives exactly as long as
the transaction, so nothing in it can be stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conveyor.core.identifiers import JobId, TaskId


@dataclass(slots=True)
class TxMemo:
    """Facts one transaction learned about the rows it holds (see the module docstring)."""

    #: Current attempt of tasks this transaction locked or claimed (rows it alone may change).
    attempts: dict[TaskId, int] = field(default_factory=dict)
    #: Stored state of jobs whose facts this transaction read under the job row's lock (PG)
    #: or its exclusive write lock (SQLite): set_job_state skips writing the same state.
    job_states: dict[JobId, str] = field(default_factory=dict)
    #: Jobs inserted by this transaction (their tasks need no existence check).
    new_jobs: set[JobId] = field(default_factory=set)
