"""``conveyor.urls``: one masking function for every URL form, and failover lists."""

from __future__ import annotations

import pytest

from conveyor.urls import mask_url, redact, split_url_list, url_secrets

SECRET = "s3cr3tPlanted"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://u:s3cr3tPlanted@a//", "amqp://u:***@a//"),
        # Every entry of a failover list, not just the first.
        (
            "amqp://u:s3cr3tPlanted@a//;amqp://u:s3cr3tPlanted@b:5673/v;amqps://w:s3cr3tPlanted@c//",
            "amqp://u:***@a//;amqp://u:***@b:5673/v;amqps://w:***@c//",
        ),
        ("postgresql://u:s3cr3tPlanted@h:5432/db", "postgresql://u:***@h:5432/db"),
        (
            "postgresql://u@h/db?sslmode=require&password=s3cr3tPlanted&application_name=x",
            "postgresql://u@h/db?sslmode=require&password=***&application_name=x",
        ),
        ("postgresql://u@h/db?PASSWORD=s3cr3tPlanted", "postgresql://u@h/db?PASSWORD=***"),
        ("postgresql://u@h/db?sslpassword=s3cr3tPlanted", "postgresql://u@h/db?sslpassword=***"),
        (
            "postgresql://u:s3cr3tPlanted@h/db?password=s3cr3tPlanted",
            "postgresql://u:***@h/db?password=***",
        ),
        # libpq's multi-host authority, and its IPv6 form.
        (
            "postgresql://u:s3cr3tPlanted@h1:5433,h2:5434/db?target_session_attrs=read-write",
            "postgresql://u:***@h1:5433,h2:5434/db?target_session_attrs=read-write",
        ),
        (
            "postgresql://u:s3cr3tPlanted@[::1]:5432,[::2]/db",
            "postgresql://u:***@[::1]:5432,[::2]/db",
        ),
        ("postgresql+psycopg://u:s3cr3tPlanted@h/db", "postgresql+psycopg://u:***@h/db"),
        ("postgres://u:s3cr3tPlanted@h/db", "postgres://u:***@h/db"),
        # Characters a URL should escape but people write anyway.
        ("postgresql://u:s3cr3t/Planted@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:s3cr3t@Planted@h/db", "postgresql://u:***@h/db"),
        ("amqp://me@corp:s3cr3tPlanted@h//", "amqp://me@corp:***@h//"),
        ("postgresql://u:s3cr3t;Planted@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:s3cr3t%40Planted@h/db", "postgresql://u:***@h/db"),
        # A URL whose scheme was forgotten, and libpq keyword/value strings.
        ("u:s3cr3tPlanted@h/db", "u:***@h/db"),
        ("host=h password=s3cr3tPlanted dbname=x", "host=h password=*** dbname=x"),
        ("host=h password='s3cr3t Planted'", "host=h password=***"),
    ],
)
def test_every_password_is_masked(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert "s3cr3t" not in mask_url(url)
    assert "Planted" not in mask_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////tmp/a:b@c/conveyor.db",
        "sqlite:///relative/a;b@c.db",
        "sqlite:///C:/Users/x@y/conveyor.db",
        "sqlite://",
        "memory://",
        "none://",
        "amqp://guest@localhost//",
        "amqp://[::1]:5672//",
        "postgresql://h1:5433,h2:5434/db?target_session_attrs=any",
        "postgresql:///db?host=/var/run/postgresql",
        "not a url at all",
        "",
    ],
)
def test_urls_without_a_password_are_untouched(url: str) -> None:
    assert mask_url(url) == url
    assert url_secrets(url) == []


def test_url_secrets_lists_each_password_as_written_and_decoded() -> None:
    url = "amqp://u:a%40b1@h//;postgresql://h/db?password=xyz"
    assert url_secrets(url) == ["a%40b1", "a@b1", "xyz"]


def test_redact_hides_passwords_quoted_in_a_driver_message() -> None:
    # urllib reads "u:s3cr3t/Planted@h" as host "u", port "s3cr3t".
    message = "Port could not be cast to integer value as 's3cr3t'"
    assert redact(message, "amqp://u:s3cr3t/Planted@h//") == (
        "Port could not be cast to integer value as '***'"
    )
    assert redact(f"wrong password {SECRET}", "amqp://a@h//;amqp://u:s3cr3tPlanted@b//") == (
        "wrong password ***"
    )
    assert redact("connection refused", "amqp://u:ab@h//") == "connection refused"


@pytest.mark.parametrize(
    ("url", "entries"),
    [
        ("amqp://a//", ["amqp://a//"]),
        ("amqp://a//;amqp://b//;amqp://c//", ["amqp://a//", "amqp://b//", "amqp://c//"]),
        (" amqp://a// ; amqp://b// ;", ["amqp://a//", "amqp://b//"]),
        ("amqp://u:p;w@a//;amqp://b//", ["amqp://u:p;w@a//", "amqp://b//"]),
        ("", []),
    ],
)
def test_split_url_list(url: str, entries: list[str]) -> None:
    assert split_url_list(url) == entries
