"""Schema migrations, usable without an ``alembic.ini`` on disk.

``upgrade(url)``, ``downgrade(url, revision)`` and ``current_revision(url)`` are what ``conveyor db
upgrade`` and the tests call. :func:`ensure_schema` is what :class:`~.store.SqlStore` runs at
start: an empty database is migrated to head; a non-empty one must already be at head.
"""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from conveyor.core.errors import SchemaOutdatedError
from conveyor.store_sql.engine import create_store_engine, mask_url

#: Where the migration scripts live, as a package resource (works from an installed wheel).
SCRIPT_LOCATION = "conveyor.store_sql:migrations"
#: pg_advisory_xact_lock key shared with ``migrations/env.py``.
MIGRATION_LOCK_KEY = 0x636F6E7665796F72
#: Alembic runs env.py through module-global proxies (``alembic.context``, ``alembic.op``):
#: migrations in one process must take turns (other processes are kept out by the database).
_ALEMBIC_LOCK = threading.Lock()


def alembic_config() -> Config:
    """An alembic configuration built in code (no ini file)."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def _apply(connection: Connection, action: str, revision: str) -> None:
    """Run an alembic command on ``connection`` inside one transaction and commit it."""
    config = alembic_config()
    config.attributes["connection"] = connection
    with _ALEMBIC_LOCK, connection.begin():
        if action == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: head)."""
    engine = create_store_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            _apply(connection, "upgrade", revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: drop everything)."""
    engine = create_store_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            _apply(connection, "downgrade", revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None for an unmigrated database."""
    engine = create_store_engine(url, pooled=False)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def ensure_schema(connection: Connection, url: str, migrate: bool = True) -> None:
    """Migrate an empty database to head; insist that a non-empty one is at head.

    Raises:
        SchemaOutdatedError: the database holds tables but is not at this code's head revision.
    """
    head = head_revision()
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        current = MigrationContext.configure(connection).get_current_revision()
        if current == head:
            return
        empty = not inspect(connection).get_table_names()
    if empty and migrate:
        _apply(connection, "upgrade", "head")
        return
    where = mask_url(url)
    if current is None and not empty:
        raise SchemaOutdatedError(
            f"The database at {where} holds tables but no conveyor schema: point conveyor at "
            "an empty database, or run `conveyor db upgrade` if it is an old conveyor database"
        )
    if current is not None and current not in _known_revisions():
        raise SchemaOutdatedError(
            f"The database at {where} is at schema revision {current}, which this version of "
            f"conveyor does not know (newest known: {head}): upgrade conveyor"
        )
    raise SchemaOutdatedError(
        f"The database at {where} is at schema revision {current or 'none'}, behind this "
        f"version of conveyor ({head}): run `conveyor db upgrade`"
    )
