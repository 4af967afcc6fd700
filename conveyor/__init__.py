"""conveyor: a self-hosted workflow orchestrator with Tilebox Workflows' API.

Port a Tilebox workflow by changing its imports::

    from conveyor import Client, ExecutionContext, Task
"""

from __future__ import annotations

from conveyor.caches import InMemoryCache, LocalFileSystemCache, NoCache
from conveyor.client import Client, ClusterClient, JobClient
from conveyor.core.context import ExecutionContext, FutureTask, ProgressUpdate
from conveyor.core.errors import (
    ClusterNotFoundError,
    ConveyorError,
    JobNotFoundError,
    NoCacheError,
    NotFoundError,
)
from conveyor.core.identifiers import TaskIdentifier
from conveyor.core.model import (
    Cluster,
    ExecutionStats,
    Job,
    JobState,
    ProgressIndicator,
    TaskRecord,
    TaskState,
)
from conveyor.core.registry import Runner
from conveyor.core.runner import RunnerSettings, TaskRunner
from conveyor.core.task import Task

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Cluster",
    "ClusterClient",
    "ClusterNotFoundError",
    "ConveyorError",
    "ExecutionContext",
    "ExecutionStats",
    "FutureTask",
    "InMemoryCache",
    "Job",
    "JobClient",
    "JobNotFoundError",
    "JobState",
    "LocalFileSystemCache",
    "NoCache",
    "NoCacheError",
    "NotFoundError",
    "ProgressIndicator",
    "ProgressUpdate",
    "Runner",
    "RunnerSettings",
    "Task",
    "TaskIdentifier",
    "TaskRecord",
    "TaskRunner",
    "TaskState",
]
