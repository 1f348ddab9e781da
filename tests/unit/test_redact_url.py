"""Database URLs in messages: a password never shown, nothing made to look like one."""

from __future__ import annotations

import pytest

from archive.index.database import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://archiver:s3cr%40t@db.example.net:5432/mailarchive",
            "postgresql://archiver:***@db.example.net:5432/mailarchive",
        ),
        (
            "postgresql://postgres:@/mailarchive?host=/root/.local/share/mailarchive/pgdata",
            "postgresql://postgres@/mailarchive?host=/root/.local/share/mailarchive/pgdata",
        ),
        ("postgresql://postgres@127.0.0.1/x", "postgresql://postgres@127.0.0.1/x"),
        ("not a url", "<invalid database URL>"),
    ],
)
def test_redact_url(url: str, shown: str):
    assert redact_url(url) == shown


def test_a_password_in_the_query_is_hidden_too():
    shown = redact_url("postgresql://u:topsecret@h/db?host=/run/pg&sslmode=require")
    assert "topsecret" not in shown
    assert shown == "postgresql://u:***@h/db?host=/run/pg&sslmode=require"
