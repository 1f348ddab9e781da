"""Database errors are mapped where the index is touched: what a later attempt can clear is
transient (`DatabaseUnavailable`), the rest permanent; a dropped connection costs a retry,
not a mailbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from archive.errors import DatabaseUnavailable, is_transient
from archive.index.database import make_engine
from archive.pipeline.archiver import Archiver, MailboxFailed, MailboxResult
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from tests.support.mail import mailbox_config, make_message
from tests.support.postgres import terminate_archive_backends


def test_connection_dropped_mid_run_is_transient_and_the_retry_archives_everything(
    archiver: Archiver, fresh_db_url: str, fresh_engine: Engine, monkeypatch
):
    messages = [make_message(f"message {i}") for i in range(4)]
    terminated: list[int] = []

    def drop_connection_after_first(result: MailboxResult) -> None:
        if result.archived == 1 and not terminated:
            terminated.append(terminate_archive_backends(fresh_db_url))

    with FakePop3Server({"ann": FakeMailbox("secret", messages)}) as server:
        box = mailbox_config(
            monkeypatch, "ann", server.host, server.port, "ann", "secret", tls="none"
        )
        with pytest.raises(MailboxFailed) as caught:
            archiver.run(box, progress=drop_connection_after_first)
        # What flows/ retries: exactly what is_transient calls transient.
        assert is_transient(caught.value)
        # Group commit (archive.pipeline.batch): the message recorded before the drop was in
        # the open batch, rolled back with it; it stays on the server for the retry.
        assert caught.value.result.archived == 0
        assert "database unavailable" in str(caught.value)
        assert "'ann'" in str(caught.value)
        retried = archiver.run(box)
    assert terminated and terminated[0] >= 1
    # The second attempt gets a working connection (pre-ping), the mailbox lock is free
    # again, and it archives what the first one did not; nothing is stored twice.
    assert retried.ok and retried.note is None
    assert (retried.listed, retried.new, retried.archived) == (4, 4, 4)
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM archive.messages")).scalar_one() == 4


def test_pool_replaces_a_connection_killed_while_idle(fresh_db_url: str, fresh_engine: Engine):
    with fresh_engine.connect() as conn:
        first = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert terminate_archive_backends(fresh_db_url) >= 1
    # pool_pre_ping: the checkout finds the dead connection and opens a new one.
    with fresh_engine.connect() as conn:
        second = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    assert second != first


@pytest.mark.parametrize(
    ("sqlstate", "reason"),
    [
        ("40001", "serialization failure"),
        ("40P01", "deadlock detected"),
        ("57P01", "admin shutdown"),
        ("57P03", "cannot connect now"),
        ("08006", "connection exception"),
    ],
)
def test_sqlstates_a_later_attempt_may_clear_are_transient(
    fresh_engine: Engine, sqlstate: str, reason: str
):
    with pytest.raises(DatabaseUnavailable, match=f"SQLSTATE {sqlstate}, {reason}") as caught:
        with fresh_engine.connect() as conn:
            conn.execute(
                text(
                    f"DO $$ BEGIN RAISE EXCEPTION 'raised by the test' USING ERRCODE = '{sqlstate}'; END $$"
                )
            )
    assert is_transient(caught.value)
    assert "raised by the test" in str(caught.value)


def test_other_sql_errors_stay_permanent(fresh_engine: Engine):
    with pytest.raises(DBAPIError) as caught:
        with fresh_engine.connect() as conn:
            conn.execute(text("SELECT 1 / 0"))
    assert getattr(caught.value.orig, "sqlstate", None) == "22012"
    assert not is_transient(caught.value)


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def test_a_refused_connection_is_transient_and_a_missing_database_is_not(fresh_db_url: str):
    refused = make_engine(f"postgresql://nobody:pw-not-shown@127.0.0.1:{_closed_port()}/db")
    with pytest.raises(DatabaseUnavailable, match="cannot connect") as caught:
        refused.connect()
    refused.dispose()
    assert is_transient(caught.value)
    assert "pw-not-shown" not in str(caught.value)

    missing = make_engine(
        make_url(fresh_db_url)
        .set(database="no_such_database_here")
        .render_as_string(hide_password=False)
    )
    with pytest.raises(DBAPIError, match="no_such_database_here") as refused_for_good:
        missing.connect()
    missing.dispose()
    assert not isinstance(refused_for_good.value, DatabaseUnavailable)
    assert not is_transient(refused_for_good.value)


def test_cli_says_the_database_is_unavailable_in_words(tmp_path):
    url = f"postgresql://archive:Pw-kept-secret@127.0.0.1:{_closed_port()}/archive"
    done = subprocess.run(
        [Path(sys.executable).parent / "mailarchive", "search", "invoice"],
        env={**os.environ, "MAILARCHIVE_DATABASE_URL": url, "MAILARCHIVE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "error: database unavailable (cannot connect)" in done.stderr
    assert "Traceback" not in done.stderr and "Pw-kept-secret" not in done.stderr


def test_debug_shows_the_traceback_and_still_no_secret(tmp_path):
    url = f"postgresql://archive:Pw-kept-secret@127.0.0.1:{_closed_port()}/archive"
    done = subprocess.run(
        [Path(sys.executable).parent / "mailarchive", "--debug", "search", "invoice"],
        env={**os.environ, "MAILARCHIVE_DATABASE_URL": url, "MAILARCHIVE_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "DatabaseUnavailable" in done.stderr
    assert "Pw-kept-secret" not in done.stderr
