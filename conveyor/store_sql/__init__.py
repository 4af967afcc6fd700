"""The SQL state store (PostgreSQL via psycopg 3, SQLite via the standard library).

* :class:`SqlStore` implements ``conveyor.core.ports.Store``; its transactions
  (:class:`SqlTx`) implement ``StoreTx`` as parts (``tx.tasks``, ``tx.claims``, …, one module
  each, see :mod:`.tx`) with one SQL statement per primitive.
* :func:`upgrade`, :func:`downgrade`, :func:`current_revision`: alembic migrations shipped in
  the package (``conveyor/store_sql/migrations``), no ini file needed.
"""

from conveyor.store_sql.engine import mask_url
from conveyor.store_sql.migrate import current_revision, downgrade, head_revision, upgrade
from conveyor.store_sql.store import SqlStore
from conveyor.store_sql.tx import SqlTx

__all__ = [
    "SqlStore",
    "SqlTx",
    "current_revision",
    "downgrade",
    "head_revision",
    "mask_url",
    "upgrade",
]
