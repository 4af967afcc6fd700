"""libpq multi-host URLs become the query form SQLAlchemy parses (no database needed)."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from conveyor.store_sql.engine import expand_multi_host, normalize_url


@pytest.mark.parametrize(
    ("url", "expanded"),
    [
        (
            "postgresql://u:p@h1:5433,h2:5434/db?target_session_attrs=read-write&sslmode=require",
            "postgresql://u:p@/db?host=h1,h2&port=5433,5434&target_session_attrs=read-write"
            "&sslmode=require",
        ),
        ("postgresql://h1,h2:5434/db", "postgresql:///db?host=h1,h2&port=,5434"),
        ("postgres://u@[::1]:5433,[::2]/db", "postgres://u@/db?host=::1,::2&port=5433,"),
        ("postgresql+psycopg://u:p@h1,h2", "postgresql+psycopg://u:p@/?host=h1,h2"),
        ("postgresql://u:p/q@h1,h2/db", "postgresql://u:p/q@/db?host=h1,h2"),
        # Nothing to do: one host, the query form already, another database.
        ("postgresql://u:p@h:5433/db", "postgresql://u:p@h:5433/db"),
        ("postgresql://u@/db?host=h1:1&host=h2:2", "postgresql://u@/db?host=h1:1&host=h2:2"),
        ("sqlite:///a,b.db", "sqlite:///a,b.db"),
    ],
)
def test_expand_multi_host(url: str, expanded: str) -> None:
    assert expand_multi_host(url) == expanded


def test_psycopg_gets_every_host_port_and_parameter() -> None:
    parsed = normalize_url("postgresql://u:p@h1:5433,h2:5434/db?target_session_attrs=primary")
    _, kwargs = PGDialect_psycopg().create_connect_args(parsed)
    assert kwargs == {
        "dbname": "db",
        "user": "u",
        "password": "p",
        "host": "h1,h2",
        "port": "5433,5434",
        "target_session_attrs": "primary",
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@h1:x,h2/db", "invalid host 'h1:x'"),
        ("postgresql://u@h1,h2/db?host=h3", "not both"),
        ("postgresql://u@h1,h2/db?port=5", "not both"),
    ],
)
def test_malformed_multi_host_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expand_multi_host(url)
