"""A DELE only on evidence, over the wire: the TCP fake server, PostgreSQL and a local store
(shared/cases/README.md, "Unique-ids outside printable ASCII, and unique-ids that name
another message"). The server's command log is the proof."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, text

from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from archive.store import raw_key
from tests.support.mail import fake_box

MUELLER = b"inbox-M\xfcller-0001"
MOELLER = b"inbox-M\xf6ller-0001"
NO_TOP = FakeServerOptions(capabilities=("UIDL", "USER", "RESP-CODES", "PIPELINING"))


def mail(tag: str, body: str) -> bytes:
    return (
        f"From: a@example.org\r\nSubject: report {tag}\r\n"
        f"Message-ID: <{tag}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


A = mail("a", "first version")
B = mail("b", "other version")
assert len(A) == len(B)


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _commands(server: FakePop3Server) -> list[str]:
    return [line for _, line in server.commands if line.split()[0] in ("TOP", "RETR", "DELE")]


def _rows(engine: Engine) -> list[tuple[bytes, str, str, bool]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.uidl_octets, d.uidl, m.sha256, d.deleted_at IS NOT NULL "
                "FROM mailarchive.delivery d JOIN mailarchive.message m ON m.id = d.message_id "
                "ORDER BY d.id"
            )
        ).all()
    return [(bytes(octets), shown, sha, gone) for octets, shown, sha, gone in rows]


def test_ids_one_octet_apart_are_two_messages(
    archiver: Archiver, fresh_engine: Engine, local_store, monkeypatch
):
    box = FakeMailbox("secret", [A], uidls=[MUELLER])
    with FakePop3Server({"ids": box}) as server:
        assert archiver.run(fake_box(monkeypatch, server, "ids")).archived == 1
        box.messages[:], box.uidls = [B], [MOELLER]  # A gone; B, same size, appears
        del server.commands[:]
        result = archiver.run(fake_box(monkeypatch, server, "ids", delete_after_archive=True))
    assert _commands(server) == ["RETR 1", "DELE 1"]
    assert (result.new, result.archived, result.deleted) == (1, 1, 1)
    assert box.messages == [] and (local_store.root / raw_key(_sha(B))).read_bytes() == B
    assert _rows(fresh_engine) == [
        (MUELLER, "inbox-M\\xfcller-0001", _sha(A), False),
        (MOELLER, "inbox-M\\xf6ller-0001", _sha(B), True),
    ]


@pytest.mark.parametrize("options", [None, NO_TOP], ids=["top", "no-top"])
def test_an_id_reused_for_another_message_of_the_same_size_is_retrieved_first(
    archiver: Archiver, fresh_engine: Engine, local_store, monkeypatch, options
):
    box = FakeMailbox("secret", [A], uidls=["0001"])
    with FakePop3Server({"reuse": box}, options=options) as server:
        archiver.run(fake_box(monkeypatch, server, "reuse"))
        box.messages[:] = [B]  # the maildrop was rebuilt: same id, same size, other message
        del server.commands[:]
        result = archiver.run(fake_box(monkeypatch, server, "reuse", delete_after_archive=True))
    # With TOP, the header block differs; without (CAPA lacks it), no TOP is sent: either
    # way the message is retrieved before any DELE.
    top = [] if options is NO_TOP else ["TOP 1 0"]
    assert _commands(server) == [*top, "RETR 1", "DELE 1"]
    assert (result.new, result.archived, result.deleted) == (1, 1, 1)
    assert (local_store.root / raw_key(_sha(B))).read_bytes() == B
    # A's row was no evidence and is not marked deleted: the server never had A this time.
    assert _rows(fresh_engine) == [
        (b"0001", "0001", _sha(A), False),
        (b"0001", "0001", _sha(B), True),
    ]


def test_the_archived_message_is_proven_by_its_header_block(archiver: Archiver, monkeypatch):
    box = FakeMailbox("secret", [A, B], uidls=["0001", "0002"])
    with FakePop3Server({"same": box}) as server:
        archiver.run(fake_box(monkeypatch, server, "same"))
        del server.commands[:]
        result = archiver.run(fake_box(monkeypatch, server, "same", delete_after_archive=True))
    assert _commands(server) == ["TOP 1 0", "TOP 2 0", "DELE 1", "DELE 2"]
    assert (result.new, result.deleted) == (0, 2) and box.messages == []


def test_what_cannot_be_repaired_fails_the_mailbox_and_is_not_deleted(
    archiver: Archiver, local_store, monkeypatch
):
    box = FakeMailbox("secret", [A], uidls=["0001"])
    with FakePop3Server({"lost": box}) as server:
        archiver.run(fake_box(monkeypatch, server, "lost"))
        (local_store.root / raw_key(_sha(A))).write_bytes(b"bit rot")
        box.messages[:] = [B]
        del server.commands[:]
        with pytest.raises(MailboxFailed) as failed:
            archiver.run(fake_box(monkeypatch, server, "lost", delete_after_archive=True))
    result = failed.value.result
    assert (result.unrepaired, result.repaired, result.deleted) == (1, 0, 0)
    assert result.error is not None and _sha(A) in result.error and _sha(B) in result.error
    assert _commands(server) == ["RETR 1"] and box.messages == [B]
