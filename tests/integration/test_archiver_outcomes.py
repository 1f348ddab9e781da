"""A QUIT answered by a closed connection, and a stop token, over TCP and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import Engine, text

from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from tests.support.mail import mailbox_config, make_message


def _box(monkeypatch, server: FakePop3Server, user: str, **options):
    return mailbox_config(
        monkeypatch, user, server.host, server.port, user, "secret", tls="none", **options
    )


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_quit_without_answer_and_nothing_marked_is_a_success_with_a_note(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    raws = [make_message("quit a"), make_message("quit b")]
    options = FakeServerOptions(quit_drop=True)
    with FakePop3Server({"q": FakeMailbox("secret", list(raws))}, options=options) as server:
        box = _box(monkeypatch, server, "q")
        first = archiver.run(box)
        second = archiver.run(box)
        commands = [c for _, c in server.commands]
    assert (first.status, first.archived, first.error) == ("ok", 2, None)
    assert first.note is not None and "QUIT not confirmed" in first.note
    assert (second.status, second.new) == ("ok", 0)
    assert "QUIT" in commands and not [c for c in commands if c.startswith("DELE")]
    assert server.mailbox("q").messages == raws
    assert _count(fresh_engine, "SELECT count(*) FROM archive.messages") == 2


def test_quit_without_answer_after_dele_is_reconciled_next_run(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    raws = [make_message("gone a"), make_message("gone b")]
    with FakePop3Server(
        {"d": FakeMailbox("secret", list(raws))}, options=FakeServerOptions(quit_drop=True)
    ) as server:
        box = _box(monkeypatch, server, "d", delete_after_archive=True)
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(box)
        left = list(server.mailbox("d").messages)
    # The server applied the DELEs and hung up: unconfirmed until the next run looks.
    assert failure.value.result.status == "failed" and failure.value.result.archived == 2
    assert left == []
    sql = "SELECT count(*) FROM mailarchive.delivery WHERE deleted_at IS NOT NULL"
    assert _count(fresh_engine, sql) == 0
    with FakePop3Server({"d": FakeMailbox("secret", left)}) as server:
        again = archiver.run(_box(monkeypatch, server, "d", delete_after_archive=True))
    assert (again.status, again.listed, again.new) == ("ok", 0, 0)
    assert _count(fresh_engine, sql) == 2


def test_a_stop_on_a_slow_server_sends_no_dele_and_keeps_what_was_committed(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    raws = [make_message(f"slow {i}", "x" * 2000) for i in range(6)]
    stop = threading.Event()
    options = FakeServerOptions(trickle=(512, 0.01))
    with FakePop3Server({"s": FakeMailbox("secret", list(raws))}, options=options) as server:
        box = _box(monkeypatch, server, "s", delete_after_archive=True)
        result = replace(archiver, stop=stop).run(
            box, progress=lambda r: stop.set() if r.archived >= 2 else None
        )
        commands = [c for _, c in server.commands]
        left = list(server.mailbox("s").messages)
    assert (result.status, result.interrupted, result.archived, result.deleted) == (
        "partial",
        True,
        2,
        0,
    )
    assert not [c for c in commands if c.startswith("DELE")] and "QUIT" not in commands
    assert commands.count("AUTH PLAIN ***") == 1  # no second session
    assert left == raws
    assert _count(fresh_engine, "SELECT count(*) FROM archive.messages") == 2
    # The mailbox lock was released: the next run goes on where this one stopped.
    with FakePop3Server({"s": FakeMailbox("secret", left)}) as server:
        rest = archiver.run(_box(monkeypatch, server, "s", delete_after_archive=True))
    assert (rest.status, rest.archived, rest.deleted) == ("ok", 4, 6)
