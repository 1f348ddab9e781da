"""Whole mailbox runs against provider behaviour and broken servers (the fake server)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine

from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from archive.store import raw_key
from tests.support.mail import fake_box, make_message, scalar


def _messages(prefix: str, count: int) -> list[bytes]:
    return [make_message(f"{prefix} {i}") for i in range(count)]


def test_login_delay_is_waited_out_between_sessions(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    box = FakeMailbox("secret", _messages("ld", 5))
    with FakePop3Server({"ld": box}, options=FakeServerOptions(login_delay=1)) as server:
        # The server refuses a login sooner than 1 s after the last: waiting is not optional.
        result = archiver.run(fake_box(monkeypatch, server, "ld", max_messages_per_session=2))
        logins = server.login_count("ld")
    assert (result.archived, result.sessions, logins) == (5, 3, 3)
    assert scalar(fresh_engine, "SELECT login_delay_seconds FROM mailarchive.mailbox") == 1


def test_login_delay_beyond_the_wait_defers_to_the_next_run(archiver: Archiver, monkeypatch):
    box = FakeMailbox("secret", _messages("defer", 4))
    with FakePop3Server({"d": box}, options=FakeServerOptions(login_delay=600)) as server:
        config = fake_box(
            monkeypatch, server, "d", max_messages_per_session=2, max_login_wait_seconds=5
        )
        first = archiver.run(config)
        second = archiver.run(config)
        logins = server.login_count("d")
    assert (first.archived, first.sessions) == (2, 1)
    assert first.note is not None and "more mail may be waiting" in first.note
    # Not even a connection attempt: the last login is recorded in the database.
    assert second.sessions == 0 and second.note is not None and "run deferred" in second.note
    assert logins == 1


def test_gmail_listing_cap_and_expire(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    raws = _messages("gmail", 8)
    box = FakeMailbox("secret", list(raws))
    options = FakeServerOptions(max_listed=3, expire="0")
    with FakePop3Server({"g": box}, options=options) as server:
        result = archiver.run(fake_box(monkeypatch, server, "g"))
    # 3 + 3 + 2, then an empty listing: every message archived, none twice.
    assert (result.archived, result.sessions) == (8, 4)
    assert scalar(fresh_engine, "SELECT listing_limited FROM mailarchive.mailbox") is True
    assert box.messages == []  # EXPIRE 0: retrieval deleted them, after they were archived
    for raw in raws:
        assert archiver.store.get(raw_key(hashlib.sha256(raw).hexdigest())) == raw


def test_expire_zero_and_a_dropped_session_expire_nothing(archiver: Archiver, monkeypatch):
    raws = _messages("exp", 3)
    box = FakeMailbox("secret", list(raws))
    options = FakeServerOptions(expire="0", drop_after_bytes=len(raws[0]) + 10)
    with FakePop3Server({"e": box}, options=options) as server:
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(fake_box(monkeypatch, server, "e"))
    assert failure.value.transient and box.messages == raws


def test_transient_login_error_then_success(archiver: Archiver, monkeypatch):
    options = FakeServerOptions(login_error_code="SYS/TEMP", login_error_count=1)
    with FakePop3Server({"t": FakeMailbox("secret", _messages("t", 2))}, options=options) as s:
        config = fake_box(monkeypatch, s, "t")
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(config)
        assert failure.value.transient and "SYS/TEMP" in str(failure.value)
        assert archiver.run(config).archived == 2


def test_uidl_reset_on_the_server(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    box = FakeMailbox("secret", _messages("reset", 3))
    with FakePop3Server({"r": box}) as server:
        config = fake_box(monkeypatch, server, "r")
        archiver.run(config)
        box.reset_uidls("migrated")
        result = archiver.run(config)
    assert (result.new, result.archived, result.relabelled) == (3, 0, 3)
    assert scalar(fresh_engine, "SELECT count(*) FROM archive.messages") == 3
    assert scalar(fresh_engine, "SELECT count(*) FROM mailarchive.message") == 3


def test_partial_quit_is_reconciled(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    box = FakeMailbox("secret", _messages("pq", 4))
    with FakePop3Server({"pq": box}, options=FakeServerOptions(quit_partial=2)) as server:
        config = fake_box(monkeypatch, server, "pq", delete_after_archive=True)
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(config)
    assert failure.value.transient and len(box.messages) == 2
    with FakePop3Server({"pq": box}) as server:
        second = archiver.run(fake_box(monkeypatch, server, "pq", delete_after_archive=True))
    assert (second.new, second.deleted) == (0, 2) and box.messages == []
    confirmed = "SELECT count(*) FROM archive.messages WHERE deleted_from_server_at IS NOT NULL"
    assert scalar(fresh_engine, confirmed) == 4


def test_wrong_list_size_archives_the_real_size(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    raw = make_message("estimate", "z" * 4000)
    options = FakeServerOptions(list_size_delta=1000)
    with FakePop3Server({"w": FakeMailbox("secret", [raw])}, options=options) as server:
        result = archiver.run(fake_box(monkeypatch, server, "w"))
    assert result.bytes == len(raw)
    assert scalar(fresh_engine, "SELECT size FROM archive.messages") == len(raw)


@pytest.mark.parametrize("fault", ["garbage_status", "stall_retr", "endless_retr"])
def test_broken_server_archives_nothing_half_way(
    fresh_engine: Engine, local_store, monkeypatch, fault
):
    archiver = Archiver(
        IndexWriter(fresh_engine), local_store, default_timeout=1, max_message_bytes=1 << 20
    )
    raws = _messages("broken", 2)
    box = FakeMailbox("secret", list(raws))
    options = FakeServerOptions(fault=fault, timeout=5)
    with FakePop3Server({"b": box}, options=options) as server:
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(fake_box(monkeypatch, server, "b", delete_after_archive=True))
        sent = [command for _, command in server.commands]
    assert "mailbox 'b'" in str(failure.value)
    assert box.messages == raws and not any(c.startswith("DELE") for c in sent)
    assert scalar(fresh_engine, "SELECT count(*) FROM mailarchive.delivery") == 0
    assert list(local_store.root.rglob("*.eml")) == []
