"""The ledger in the wild: shared and changing UIDLs, delete policies, reconciliation, locks."""

from __future__ import annotations

import dataclasses
import hashlib
import threading

import pytest
from sqlalchemy import Engine, text

from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from archive.store import raw_key
from tests.support.counting import ConnectionCount
from tests.support.mail import fake_box, make_message, scalar


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_shared_uidl_keeps_both_messages(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    # Two different messages under one UIDL: both archived, both visible, neither lost.
    first, second, other = make_message("first"), make_message("second"), make_message("other")
    box = FakeMailbox("secret", [first, second, other], uidls=["same", "same", "unique"])
    with FakePop3Server({"dup": box}) as server:
        config = fake_box(monkeypatch, server, "dup")
        result = archiver.run(config)
        again = archiver.run(config)
    assert (result.new, result.archived) == (3, 3)
    assert (again.new, again.archived, again.duplicates) == (0, 0, 0)
    rows = scalar(
        fresh_engine,
        "SELECT array_agg(sha256 ORDER BY sha256) FROM archive.messages WHERE mailbox = 'dup'",
    )
    assert rows == sorted(_sha(raw) for raw in (first, second, other))


def test_shared_uidl_copies_are_deleted_by_number_after_verification(
    archiver: Archiver, monkeypatch
):
    first, second, other = make_message("first"), make_message("second"), make_message("other")
    box = FakeMailbox("secret", [first, second, other], uidls=["same", "same", "unique"])
    with FakePop3Server({"dup": box}) as server:
        result = archiver.run(fake_box(monkeypatch, server, "dup", delete_after_archive=True))
        remaining = server.mailbox("dup").messages
    # Each copy was retrieved and verified in this very session, so its number is exact.
    assert remaining == [] and result.deleted == 3
    for raw in (first, second, other):
        assert archiver.store.get(raw_key(_sha(raw))) == raw


def test_earlier_shared_uidl_is_not_deleted_by_uidl(archiver: Archiver, monkeypatch):
    # Archived while the UIDL was shared; now one copy is left: which one is unknowable.
    first, second = make_message("first"), make_message("second")
    with FakePop3Server(
        {"amb": FakeMailbox("secret", [first, second], uidls=["same", "same"])}
    ) as server:
        archiver.run(fake_box(monkeypatch, server, "amb"))
    with FakePop3Server({"amb": FakeMailbox("secret", [second], uidls=["same"])}) as server:
        result = archiver.run(fake_box(monkeypatch, server, "amb", delete_after_archive=True))
        remaining = server.mailbox("amb").messages
    assert remaining == [second] and result.deleted == 0


def test_uidl_reset_stores_nothing_twice(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    messages = [make_message(f"m{i}") for i in range(4)]
    with FakePop3Server({"mig": FakeMailbox("secret", list(messages))}) as server:
        archiver.run(fake_box(monkeypatch, server, "mig"))
    # The server lost its index: same mail, every UIDL new.
    renamed = FakeMailbox("secret", list(messages), uidls=[f"new{i}" for i in range(4)])
    with FakePop3Server({"mig": renamed}) as server:
        result = archiver.run(fake_box(monkeypatch, server, "mig"))
    assert (result.new, result.archived, result.duplicates, result.relabelled) == (4, 0, 4, 4)
    assert scalar(fresh_engine, "SELECT count(*) FROM archive.messages") == 4
    assert scalar(fresh_engine, "SELECT count(*) FROM mailarchive.message") == 4
    uidls = scalar(fresh_engine, "SELECT array_agg(uidl ORDER BY uidl) FROM archive.messages")
    assert uidls == [f"new{i}" for i in range(4)]


def test_failed_quit_is_reconciled_next_run(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    messages = [make_message(f"q{i}") for i in range(3)]
    box = FakeMailbox("secret", list(messages))
    with FakePop3Server({"q": box}, options=FakeServerOptions(quit_error=True)) as server:
        with pytest.raises(MailboxFailed, match="QUIT failed"):
            archiver.run(fake_box(monkeypatch, server, "q", delete_after_archive=True))
    pending = scalar(
        fresh_engine,
        "SELECT count(*) FROM mailarchive.delivery "
        "WHERE delete_requested_at IS NOT NULL AND deleted_at IS NULL",
    )
    assert pending == 3 and box.messages == messages
    with FakePop3Server({"q": box}) as server:
        second = archiver.run(fake_box(monkeypatch, server, "q", delete_after_archive=True))
    assert (second.new, second.deleted) == (0, 3) and box.messages == []
    assert (
        scalar(
            fresh_engine,
            "SELECT count(*) FROM archive.messages WHERE deleted_from_server_at IS NULL",
        )
        == 0
    )


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_a_damaged_earlier_copy_is_repaired_from_the_server_before_deletion(
    archiver: Archiver, local_store, monkeypatch, damage
):
    raws = [make_message("kept 0"), make_message("kept 1")]
    box = FakeMailbox("secret", list(raws))
    with FakePop3Server({"v": box}) as server:
        archiver.run(fake_box(monkeypatch, server, "v"))  # archived, kept on the server
        stored = local_store.root / raw_key(_sha(raws[0]))
        if damage == "corrupt":
            stored.write_bytes(b"bit rot")
        else:
            stored.unlink()
        del server.commands[:]
        result = archiver.run(fake_box(monkeypatch, server, "v", delete_after_archive=True))
    commands = [command for _, command in server.commands]
    # The damaged one was retrieved and hashed before any DELE; the intact one proven by TOP.
    assert [c for c in commands if c.split()[0] in ("TOP", "RETR", "DELE")] == [
        "TOP 2 0",
        "RETR 1",
        "DELE 1",
        "DELE 2",
    ]
    assert (result.repaired, result.unrepaired, result.deleted) == (1, 0, 2)
    assert stored.read_bytes() == raws[0] and box.messages == []


def test_deletion_gone_before_next_run_is_confirmed(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    messages = [make_message(f"g{i}") for i in range(2)]
    box = FakeMailbox("secret", list(messages))
    with FakePop3Server({"g": box}, options=FakeServerOptions(quit_error=True)) as server:
        with pytest.raises(MailboxFailed):
            archiver.run(fake_box(monkeypatch, server, "g", delete_after_archive=True))
    # The server applied the deletions after all.
    with FakePop3Server({"g": FakeMailbox("secret", [])}) as server:
        archiver.run(fake_box(monkeypatch, server, "g"))
    assert (
        scalar(
            fresh_engine,
            "SELECT count(*) FROM archive.messages WHERE deleted_from_server_at IS NOT NULL",
        )
        == 2
    )


def test_delete_older_than_counts_from_first_seen(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    old, young = make_message("old"), make_message("young")
    box = FakeMailbox("secret", [old, young])
    with FakePop3Server({"age": box}) as server:
        config = fake_box(monkeypatch, server, "age", delete_older_than_days=30)
        first = archiver.run(config)
        assert first.deleted == 0 and len(box.messages) == 2  # both seen just now
        with fresh_engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE mailarchive.delivery SET archived_at = now() - interval '31 days' "
                    "WHERE message_id = (SELECT id FROM mailarchive.message WHERE sha256 = :sha)"
                ),
                {"sha": _sha(old)},
            )
        second = archiver.run(config)
    assert second.deleted == 1 and box.messages == [young]


def test_keep_policy_never_deletes(archiver: Archiver, monkeypatch):
    messages = [make_message(f"k{i}") for i in range(2)]
    with FakePop3Server({"k": FakeMailbox("secret", list(messages))}) as server:
        archiver.run(fake_box(monkeypatch, server, "k"))
        sent = [command for _, command in server.commands]
        remaining = server.mailbox("k").messages
    assert remaining == messages and not any(c.startswith("DELE") for c in sent)


def test_per_session_cap_opens_more_sessions(archiver: Archiver, monkeypatch):
    messages = [make_message(f"s{i}") for i in range(7)]
    with FakePop3Server({"cap": FakeMailbox("secret", list(messages))}) as server:
        result = archiver.run(fake_box(monkeypatch, server, "cap", max_messages_per_session=3))
        logins = sum(1 for _, command in server.commands if command.startswith(("PASS", "AUTH")))
    # 3 + 3 + 1: the third session was not capped and listed mail it had, so it was the last.
    assert (result.archived, result.sessions) == (7, 3)
    assert logins == 3


def test_max_sessions_per_run_bounds_the_loop(archiver: Archiver, monkeypatch):
    messages = [make_message(f"b{i}") for i in range(5)]
    with FakePop3Server({"few": FakeMailbox("secret", list(messages))}) as server:
        result = archiver.run(
            fake_box(monkeypatch, server, "few", max_messages_per_session=2, max_sessions_per_run=2)
        )
    assert (result.archived, result.sessions) == (4, 2)
    assert result.note is not None and "more mail may remain" in result.note


def test_mailbox_locked_elsewhere_is_skipped(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    # Another process (here another engine, so another PostgreSQL session) holds the mailbox.
    with FakePop3Server({"busy": FakeMailbox("secret", [make_message("x")])}) as server:
        config = fake_box(monkeypatch, server, "busy")
        other = IndexWriter(fresh_engine)
        with other.mailbox("busy", server.host, "busy") as index, index.lock("busy") as held:
            assert held
            result = archiver.run(config)
        assert result.archived == 0 and result.note is not None and "another session" in result.note
        after = archiver.run(config)
    assert after.archived == 1


def test_host_cap_holds_across_threads(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    # 24 mailboxes on one host, 12 threads, max_connections = 3.
    boxes = {f"h{i}": FakeMailbox("secret", [make_message(f"h{i}")]) for i in range(24)}
    count = ConnectionCount()
    counted = dataclasses.replace(archiver, connect=count.connector())
    with FakePop3Server(boxes) as server:
        configs = [fake_box(monkeypatch, server, name, max_connections=3) for name in boxes]
        threads = [threading.Thread(target=counted.run, args=(config,)) for config in configs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert scalar(fresh_engine, "SELECT count(*) FROM archive.messages") == 24
    assert count.open == 0 and 1 <= count.peak <= 3


def test_server_that_lists_everything_is_probed_once(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    box = FakeMailbox("secret", [make_message(f"p{i}") for i in range(3)])
    with FakePop3Server({"probe": box}) as server:
        config = fake_box(monkeypatch, server, "probe", delete_after_archive=True)
        first = archiver.run(config)
        box.messages.append(make_message("later"))
        second = archiver.run(config)
    # First run: an all-new listing, so a second session checks for more and finds none.
    assert (first.archived, first.sessions) == (3, 2)
    assert scalar(fresh_engine, "SELECT listing_limited FROM mailarchive.mailbox") is False
    # Now the listing is all new again (the rest was deleted), but the server is known.
    assert (second.archived, second.sessions, second.deleted) == (1, 1, 1)
