"""Alembic environment of the conveyor state store.

Used programmatically by :mod:`conveyor.store_sql.migrate` (which passes an open connection in
``config.attributes["connection"]``, inside a transaction it commits), or by the ``alembic``
command with ``sqlalchemy.url`` set. On PostgreSQL a transaction-scoped advisory lock serialises
concurrent migrators (several processes starting on one empty database).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from conveyor.store_sql.engine import create_store_engine
from conveyor.store_sql.schema import metadata

#: pg_advisory_xact_lock key shared by every conveyor migrator ("conveyor" in ASCII, as int).
MIGRATION_LOCK_KEY = 0x636F6E7665796F72


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("Set sqlalchemy.url (or use conveyor.store_sql.migrate.upgrade(url))")
    engine = create_store_engine(url, pooled=False)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("Offline (SQL script) migrations are not supported by conveyor")
run_migrations_online()
