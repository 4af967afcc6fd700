"""The store port's contract: one class per part of ``conveyor.core.ports.StoreTx``, one test per
promise written in that part's docstrings.

An adapter's test module subclasses every class listed in :data:`STORE_CONTRACTS` (and
``tests.contract.query_contract.MonitoringReadsContract`` for ``tx.reads``), each with a
``store`` fixture returning a fresh, empty store (with only the ``default`` cluster). The
in-memory store runs them in ``tests/memory``, the SQL store on SQLite and PostgreSQL in
``integration/store_sql``, unchanged. A part changed or added in the port gets its contract
class here, and every adapter's module lists it.
"""

from __future__ import annotations

from tests.contract.attempt_contract import AttemptsContract
from tests.contract.claim_contract import ClaimsContract
from tests.contract.cluster_contract import ClusterRowsContract
from tests.contract.job_contract import JobRowsContract
from tests.contract.outbox_contract import OutboxContract
from tests.contract.runner_contract import RunnerRowsContract
from tests.contract.store_fixtures import LEAF, POLICY, REG, child_record, new_job, spec
from tests.contract.task_contract import TaskRowsContract
from tests.contract.transaction_contract import TransactionContract

#: The write side's contracts, in the order of the port.
STORE_CONTRACTS = (
    TransactionContract,
    ClusterRowsContract,
    JobRowsContract,
    TaskRowsContract,
    ClaimsContract,
    OutboxContract,
    AttemptsContract,
    RunnerRowsContract,
)

__all__ = [
    "LEAF",
    "POLICY",
    "REG",
    "STORE_CONTRACTS",
    "AttemptsContract",
    "ClaimsContract",
    "ClusterRowsContract",
    "JobRowsContract",
    "OutboxContract",
    "RunnerRowsContract",
    "TaskRowsContract",
    "TransactionContract",
    "child_record",
    "new_job",
    "spec",
]
