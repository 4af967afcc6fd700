"""Schema migrations, usable without an ``alembic.ini`` on disk.

``upgrade(url)``, ``downgrade(url, revision)`` and ``current_revision(url)`` are what ``conveyor db
upgrade`` and the tests call. :func:`ensure_schema` is what :class:`~.store.SqlStore` runs at
start: an empty database is migrated to head; a non-empty one must already be at head.
"""

from __future__ import annotations

import re
import threading
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from conveyor.core.errors import ConfigurationError, SchemaOutdatedError, StoreUnavailableError
from conveyor.store_sql.engine import create_store_engine, describe, mask_url

if TYPE_CHECKING:
    from alembic.config import Config

#: Where the migration scripts live, as a package resource (works from an installed wheel).
SCRIPT_LOCATION = "conveyor.store_sql:migrations"
#: pg_advisory_xact_lock key shared with ``migrations/env.py``.
MIGRATION_LOCK_KEY = 0x636F6E7665796F72
#: Alembic runs env.py through module-global proxies (``alembic.context``, ``alembic.op``):
#: migrations in one process must take turns (other processes are kept out by the database).
_ALEMBIC_LOCK = threading.Lock()


def alembic_config() -> Config:
    """An alembic configuration built in code (no ini file)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(?:[\"']([^\"']+)[\"']|None)", re.M)


def _script_revisions() -> dict[str, str | None]:
    """Revision → down revision, read from the migration scripts' text.

    Every process that opens a store checks the schema; importing alembic (and mako) only to
    name the head revision cost ~11 MiB of resident memory in each runner, so the scripts are
    read as text here and alembic is imported only to migrate.
    """
    found: dict[str, str | None] = {}
    versions = resources.files("conveyor.store_sql.migrations").joinpath("versions")
    for entry in versions.iterdir():
        if not entry.name.endswith(".py") or entry.name.startswith("_"):
            continue
        source = entry.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is not None and down is not None:
            found[revision.group(1)] = down.group(1)
    return found


def head_revision() -> str:
    """The newest revision this code knows."""
    revisions = _script_revisions()
    heads = set(revisions) - {down for down in revisions.values() if down is not None}
    assert len(heads) == 1, f"migration scripts must have exactly one head, found {heads}"
    return heads.pop()


def _known_revisions() -> set[str]:
    return set(_script_revisions())


def _database_revision(connection: Connection) -> str | None:
    """The revision in ``alembic_version`` (what alembic's MigrationContext reads)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    return rows[0] if len(rows) == 1 else (",".join(sorted(rows)) or None)


def _engine(url: str) -> Engine:
    """An engine for one migration, or ConfigurationError for a URL that cannot work."""
    try:
        return create_store_engine(url, pooled=False)
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


def _connect(engine: Engine, url: str) -> Connection:
    """A connection, or StoreUnavailableError in one line (``conveyor db upgrade`` prints it)."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise StoreUnavailableError(
            f"The database at {mask_url(url)} is unavailable: {describe(exc)}"
        ) from exc


def _apply(connection: Connection, action: str, revision: str) -> None:
    """Run an alembic command on ``connection`` inside one transaction and commit it."""
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    with _ALEMBIC_LOCK, connection.begin():
        if action == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: head)."""
    engine = _engine(url)
    try:
        with _connect(engine, url) as connection:
            _apply(connection, "upgrade", revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: drop everything)."""
    engine = _engine(url)
    try:
        with _connect(engine, url) as connection:
            _apply(connection, "downgrade", revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None for an unmigrated database."""
    engine = _engine(url)
    try:
        with _connect(engine, url) as connection:
            from alembic.runtime.migration import MigrationContext

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
        current = _database_revision(connection)
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
