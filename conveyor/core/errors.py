"""Conveyor's exception hierarchy.

Every error conveyor raises on purpose derives from :class:`ConveyorError`, so callers can catch
one root. Adapters translate third-party exceptions (SQLAlchemy, kombu) into these at the edge and
chain the original with ``from``; nothing outside an adapter catches a driver's exception.

* ConveyorError
  * NotFoundError (a LookupError)         - a job, task or cluster that does not exist
    * JobNotFoundError, TaskNotFoundError, ClusterNotFoundError
  * AlreadyExistsError                    - a cluster slug or idempotency key already taken
  * InfrastructureError                   - raised by adapters; transient unless said otherwise
    * StoreUnavailableError              (database unreachable or connection lost)
    * BrokerUnavailableError             (message broker unreachable or a publish unconfirmed)
    * SchemaOutdatedError                (schema behind the code: run `conveyor db upgrade`)
  * NoCacheError (a ValueError)           - the job cache used on a runner started without one

Validation errors keep Python's conventions so ported Tilebox code behaves the same: an invalid
task class raises ``TypeError`` at class definition, bad arguments raise ``ValueError``.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Root of every error conveyor raises on purpose."""


class NotFoundError(ConveyorError, LookupError):
    """A job, task or cluster that does not exist."""


class JobNotFoundError(NotFoundError):
    """No job with this id."""


class TaskNotFoundError(NotFoundError):
    """No task with this id."""


class ClusterNotFoundError(NotFoundError):
    """No cluster with this slug."""


class AlreadyExistsError(ConveyorError, ValueError):
    """A unique name (cluster slug, idempotency key) is already taken."""


class InfrastructureError(ConveyorError):
    """Raised by adapters when the outside world misbehaves."""


class StoreUnavailableError(InfrastructureError):
    """The state store cannot be reached, or the connection was lost mid-operation."""


class BrokerUnavailableError(InfrastructureError):
    """The broker cannot be reached, or a publish was not confirmed."""


class SchemaOutdatedError(InfrastructureError):
    """The database schema is behind the code; `conveyor db upgrade` fixes it."""


class NoCacheError(ConveyorError, ValueError):
    """A task used the job cache on a runner that was started without one."""
