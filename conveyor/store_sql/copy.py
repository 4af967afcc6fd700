"""Bulk inserts through PostgreSQL's COPY (psycopg 3), for fan-outs of 10^5 subtasks.

COPY streams rows in one command instead of parsing a multi-row INSERT per chunk: about 3-5x
faster for wide rows. It runs on the driver connection under the SQLAlchemy connection, inside
the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table

#: Row count from which ``SqlTx.insert_tasks`` uses COPY on PostgreSQL.
COPY_THRESHOLD = 200


def copy_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """COPY ``rows`` (dicts with the same keys, Python values) into ``table``."""
    columns = list(rows[0])
    quoted = ", ".join(f'"{name}"' for name in columns)
    driver = conn.connection.driver_connection
    assert driver is not None
    sql = f'COPY "{table.name}" ({quoted}) FROM STDIN'
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row([row[name] for name in columns])
