"""Retention removes expired rows; a legal hold stops retention, gc and any row deletion."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from archive.config import MailboxFile
from archive.index import holds
from archive.pipeline.archiver import Archiver
from archive.pipeline.retention import policies, run
from archive.pipeline.verify import collect_garbage
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore, part_key, raw_key
from tests.support.mail import fake_box, make_message

PDF = b"%PDF-1.4 retained report"
LATER = datetime.now(UTC) + timedelta(days=30)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def mails(archiver: Archiver, fresh_engine: Engine, monkeypatch) -> dict[str, bytes]:
    """ann: old, shared; bob: shared, new. `shared` is one message in both mailboxes. Every
    delivery was archived 400 days ago; `new` was sent yesterday, the others 400 days ago."""
    found = {
        "old": make_message("old minutes"),
        "shared": make_message("shared plan", attachments=(("plan.pdf", PDF, "application/pdf"),)),
        "new": make_message("new minutes"),
    }
    with FakePop3Server(
        {
            "ann": FakeMailbox("secret", [found["old"], found["shared"]]),
            "bob": FakeMailbox("secret", [found["shared"], found["new"]]),
        }
    ) as server:
        for user in ("ann", "bob"):
            archiver.run(fake_box(monkeypatch, server, user))
    with fresh_engine.begin() as conn:
        conn.execute(
            text("UPDATE mailarchive.delivery SET archived_at = now() - interval '400 days'")
        )
        conn.execute(text("UPDATE mailarchive.message SET sent_at = now() - interval '400 days'"))
        conn.execute(
            text(
                "UPDATE mailarchive.message SET sent_at = now() - interval '1 day' WHERE sha256 = :s"
            ),
            {"s": _sha(found["new"])},
        )
    return found


def _file(default: dict[str, Any] | None = None, **boxes: dict[str, Any]) -> MailboxFile:
    tables = [
        {"name": name, "host": "h", "username": name, "password_env": "X", **options}
        for name, options in boxes.items()
    ]
    return MailboxFile.model_validate({**(default or {}), "mailbox": tables})


def _deliveries(engine: Engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT b.name, m.sha256 FROM mailarchive.delivery d "
                "JOIN mailarchive.mailbox b ON b.id = d.mailbox_id "
                "JOIN mailarchive.message m ON m.id = d.message_id"
            )
        )
        return {(row[0], row[1]) for row in rows}


def _messages(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(text("SELECT sha256 FROM mailarchive.message")).scalars())


def test_policies_come_from_the_mailbox_or_the_default():
    found = policies(
        _file(
            {"retention_years": 7, "retention_from": "archived"},
            ann={"retention_days": 30, "retention_from": "sent"},
            bob={},
            carol={"delete_after_archive": True},
        )
    )
    assert [(p.mailbox, p.years, p.days, p.count_from, p.server_keeps) for p in found] == [
        ("ann", 0, 30, "sent", True),
        ("bob", 7, 0, "archived", True),
        ("carol", 7, 0, "archived", False),
    ]
    assert policies(_file(ann={})) == []  # no policy anywhere: kept forever


def test_dry_run_lists_then_apply_removes_rows_and_gc_the_objects(
    mails, fresh_engine: Engine, local_store: LocalStore
):
    before = _deliveries(fresh_engine)
    dry = run(fresh_engine, _file(ann={"retention_days": 30}))
    assert [(b.policy.mailbox, b.expired, b.held) for b in dry.mailboxes] == [("ann", 2, 0)]
    assert dry.messages == 1  # `shared` stays: bob still delivers it
    assert _deliveries(fresh_engine) == before

    done = run(fresh_engine, _file(ann={"retention_days": 30}), apply=True, batch=1)
    assert (done.deliveries_removed, done.messages) == (2, 1)
    assert _deliveries(fresh_engine) == {
        ("bob", _sha(mails["shared"])),
        ("bob", _sha(mails["new"])),
    }
    assert _messages(fresh_engine) == {_sha(mails["shared"]), _sha(mails["new"])}

    gc = collect_garbage(fresh_engine, local_store, apply=True, now=LATER)
    assert gc.removed == [raw_key(_sha(mails["old"]))]
    with fresh_engine.connect() as conn:
        audit = (
            conn.execute(
                text("SELECT details FROM archive.audit WHERE action = 'retention' ORDER BY id")
            )
            .scalars()
            .all()
        )
    assert [(a["applied"], a["messages"]) for a in audit] == [(False, 1), (True, 1)]


def test_counting_from_sent_keeps_a_recent_message(mails, fresh_engine: Engine):
    sent = run(fresh_engine, _file(bob={"retention_days": 30}), apply=True)
    assert sent.deliveries_removed == 1  # `new` was sent yesterday, archived 400 days ago
    assert _deliveries(fresh_engine) >= {("bob", _sha(mails["new"]))}
    archived = run(
        fresh_engine, _file(bob={"retention_days": 30, "retention_from": "archived"}), apply=True
    )
    assert archived.deliveries_removed == 1
    assert ("bob", _sha(mails["new"])) not in _deliveries(fresh_engine)


def test_held_messages_survive_retention_gc_and_any_delete(
    mails, fresh_engine: Engine, local_store: LocalStore
):
    old, shared = _sha(mails["old"]), _sha(mails["shared"])
    with fresh_engine.begin() as conn:
        held = holds.create(conn, "case-1", "litigation", messages=[old[:8]])
        by_query = holds.create(conn, "case-2", "subpoena", query="subject:shared")
    assert (held.messages, by_query.messages) == (1, 1)

    everything = _file({"retention_days": 30, "retention_from": "archived"}, ann={}, bob={})
    report = run(fresh_engine, everything, apply=True)
    assert {b.policy.mailbox: b.held for b in report.mailboxes} == {"ann": 2, "bob": 1}
    assert _messages(fresh_engine) == {old, shared}  # `new` (not held) went
    assert ("ann", old) in _deliveries(fresh_engine)

    with fresh_engine.connect() as conn:
        for statement in (
            "DELETE FROM mailarchive.message WHERE sha256 = :s",
            "DELETE FROM mailarchive.delivery WHERE message_id = "
            "(SELECT id FROM mailarchive.message WHERE sha256 = :s)",
            "DELETE FROM mailarchive.mailbox WHERE name = 'ann'",  # a mailbox forget
        ):
            with pytest.raises(DBAPIError, match="under legal hold"):
                with conn.begin():
                    conn.execute(text(statement), {"s": old})

    # Rows removed behind the triggers' back: gc still keeps the held original and part.
    with fresh_engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text(
                "DELETE FROM mailarchive.delivery WHERE message_id IN "
                "(SELECT id FROM mailarchive.message WHERE sha256 IN (:a, :b))"
            ),
            {"a": old, "b": shared},
        )
        conn.execute(
            text("DELETE FROM mailarchive.message WHERE sha256 IN (:a, :b)"),
            {"a": old, "b": shared},
        )
    gc = collect_garbage(fresh_engine, local_store, apply=True, now=LATER)
    assert raw_key(old) not in gc.removed and raw_key(shared) not in gc.removed
    assert (local_store.root / raw_key(old)).exists()
    # Both originals and the held message's attachment (replica mode skipped the cascade).
    assert gc.kept_held == 3 and (local_store.root / part_key(_sha(PDF))).exists()
    assert gc.removed == [raw_key(_sha(mails["new"]))]


def test_a_mailbox_hold_covers_its_messages_until_released(mails, fresh_engine: Engine):
    with fresh_engine.begin() as conn:
        holds.create(conn, "bob-hold", "investigation", mailbox="bob")
    everything = _file({"retention_days": 30, "retention_from": "archived"}, ann={}, bob={})
    run(fresh_engine, everything, apply=True)
    # `shared` is held through bob, so ann's delivery of it stays too.
    assert _messages(fresh_engine) == {_sha(mails["shared"]), _sha(mails["new"])}
    with fresh_engine.connect() as conn:
        held = set(conn.execute(text("SELECT sha256 FROM archive.held_messages")).scalars())
    assert held == {_sha(mails["shared"]), _sha(mails["new"])}

    with fresh_engine.begin() as conn:
        holds.release(conn, "bob-hold", "case closed")
    run(fresh_engine, everything, apply=True)
    assert _messages(fresh_engine) == set()
    with fresh_engine.connect() as conn:
        [released] = holds.list_holds(conn)
        actions = (
            conn.execute(
                text("SELECT action FROM archive.audit WHERE action LIKE 'hold%' ORDER BY id")
            )
            .scalars()
            .all()
        )
    assert (released.active, released.release_reason, released.mailbox) == (
        False,
        "case closed",
        "bob",
    )
    assert actions == ["hold_create", "hold_release"]


def test_held_in_mailbox_lists_what_forget_must_keep(mails, fresh_engine: Engine):
    with fresh_engine.begin() as conn:
        holds.create(conn, "q", "review", query="subject:shared")
        ids = dict(conn.execute(text("SELECT name, id FROM mailarchive.mailbox")).all())
        assert holds.held_in_mailbox(conn, ids["ann"]) == [_sha(mails["shared"])]
        assert holds.held_in_mailbox(conn, ids["bob"]) == [_sha(mails["shared"])]
        holds.release(conn, "q", "done")
        assert holds.held_in_mailbox(conn, ids["ann"]) == []


def test_hold_errors_name_what_is_wrong(mails, fresh_engine: Engine):
    cases = [
        ({"mailbox": "nobody"}, "no mailbox 'nobody'"),
        ({"messages": ["0000"]}, "no archived message"),
        ({"messages": ["xyz"]}, "not a SHA-256"),
        ({}, "exactly one"),
        ({"query": '"open'}, "unterminated quote"),
    ]
    for options, message in cases:
        with fresh_engine.begin() as conn, pytest.raises(holds.HoldError, match=message):
            holds.create(conn, "h", "r", **options)
    with fresh_engine.begin() as conn:
        holds.create(conn, "h", "r", mailbox="ann")
    with fresh_engine.begin() as conn, pytest.raises(holds.HoldError, match="already active"):
        holds.create(conn, "h", "r", mailbox="bob")
    with fresh_engine.begin() as conn, pytest.raises(holds.HoldError, match="no active hold"):
        holds.release(conn, "other", "r")
