"""Conveyor's exception hierarchy.

Every error conveyor raises on purpose derives from :class:`ConveyorError`, so callers can catch
one root, and the entry points decide what to show from the kind alone: the CLI prints one line
for a ``ConveyorError`` and a traceback for anything else (a bug); the web API answers the HTTP
status written after each kind below. Adapters translate third-party exceptions (SQLAlchemy,
kombu) into these at the edge and chain the original with ``from``; nothing outside an adapter
catches a driver's exception.

* ConveyorError
  * NotFoundError (a LookupError)           - 404: a job, task or cluster that does not exist
    * JobNotFoundError, TaskNotFoundError, ClusterNotFoundError
  * AlreadyExistsError (a ValueError)       - 409: a cluster slug or idempotency key is taken
  * InvalidValueError (a ValueError)        - 422: a value given to conveyor cannot be accepted
    * InputDecodeError                     (a task's input does not fit its class's fields)
    * ConfigurationError                   (a URL or setting that cannot work; at start)
      * SettingsError                      (a bad ``CONVEYOR_*`` variable or Settings keyword)
  * InfrastructureError                     - 503: raised by adapters; transient unless said
    * StoreUnavailableError                (database unreachable or connection lost)
    * BrokerUnavailableError               (broker unreachable or a publish unconfirmed)
      * AmqpTopologyError                  (conveyor.broker_amqp: a queue declared otherwise)
    * SchemaOutdatedError                  (schema behind the code: run `conveyor db upgrade`)
  * NoCacheError (a ValueError)             - 500: the job cache used on a runner without one

``ValueError`` stays a second base where conveyor has always raised one (``except ValueError``
in callers and ported Tilebox code keeps working). Validation elsewhere keeps Python's
conventions: an invalid task class raises ``TypeError`` at class definition, and a bad argument
the core checks itself (a malformed version string, an empty job name) is a plain ``ValueError``
that each entry point converts where it passes the argument, naming it.

``ConfigurationError`` and ``SettingsError`` are defined here so the tree is one module; they are
re-exported from :mod:`conveyor.bootstrap` and :mod:`conveyor.config`, where they are raised,
and ``InputDecodeError`` from :mod:`conveyor.core.serialization`.
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


class InvalidValueError(ConveyorError, ValueError):
    """A value given to conveyor cannot be accepted; the message names it and what fits."""


class InputDecodeError(InvalidValueError):
    """A task's stored input does not fit the task class's fields."""


class ConfigurationError(InvalidValueError):
    """A URL or setting that cannot work; the message says what and how to fix it."""


class SettingsError(ConfigurationError):
    """An invalid setting. The message is one line naming each bad environment variable (or
    keyword argument) and its value, so the CLI can print it as is."""


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
