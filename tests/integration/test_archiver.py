"""The archiver against the fake POP3 server (fault injection) and a real PostgreSQL."""

from __future__ import annotations

import hashlib
import socket

import pytest
from sqlalchemy import Engine, text

from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server, FakeServerOptions
from archive.store import MemoryStore, part_key, raw_key
from tests.support.mail import mailbox_config, make_message


def _box(monkeypatch, server: FakePop3Server, user: str, password: str = "secret", **options):
    return mailbox_config(
        monkeypatch, user, server.host, server.port, user, password, tls="none", **options
    )


def _rows(engine: Engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def test_rerun_archives_nothing_new(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    messages = [make_message(f"message {i}") for i in range(5)]
    with FakePop3Server({"ann": FakeMailbox("secret", messages)}) as server:
        box = _box(monkeypatch, server, "ann")
        first = archiver.run(box)
        second = archiver.run(box)
    assert (first.listed, first.new, first.archived, first.duplicates) == (5, 5, 5, 0)
    assert (second.listed, second.new, second.archived) == (5, 0, 0)
    retrs = [c for _, c in server.commands if c.startswith("RETR")]
    assert len(retrs) == 5
    assert _rows(fresh_engine, "SELECT count(*) FROM archive.messages")[0][0] == 5


def test_raw_bytes_exact_and_catable(archiver: Archiver, monkeypatch):
    # Lines starting with "." are dot-stuffed on the wire; a 100 kB line defeats poplib.
    raw = make_message("dots", ".leading dot\r\n..two dots\r\n" + "x" * 100_000 + "\r\n")
    with FakePop3Server({"bob": FakeMailbox("secret", [raw])}) as server:
        archiver.run(_box(monkeypatch, server, "bob"))
    sha = hashlib.sha256(raw).hexdigest()
    assert archiver.store.get(raw_key(sha)) == raw


def test_dedup_across_mailboxes(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    shared = make_message(
        "newsletter", attachments=(("a.pdf", b"%PDF-1.4 same", "application/pdf"),)
    )
    boxes = {f"u{i}": FakeMailbox("secret", [shared, make_message(f"own {i}")]) for i in range(3)}
    with FakePop3Server(boxes) as server:
        results = [archiver.run(_box(monkeypatch, server, name)) for name in boxes]
    assert sum(r.archived for r in results) == 4
    assert sum(r.duplicates for r in results) == 2
    sha = hashlib.sha256(shared).hexdigest()
    assert (
        _rows(fresh_engine, "SELECT count(*) FROM archive.messages WHERE sha256 = :s", s=sha)[0][0]
        == 3
    )
    assert (
        _rows(
            fresh_engine, "SELECT count(DISTINCT id) FROM archive.messages WHERE sha256 = :s", s=sha
        )[0][0]
        == 1
    )
    assert (
        _rows(fresh_engine, "SELECT count(*) FROM mailarchive.message WHERE sha256 = :s", s=sha)[0][
            0
        ]
        == 1
    )


def test_delete_after_archive_deletes_only_verified(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    messages = [make_message(f"to delete {i}") for i in range(3)]
    with FakePop3Server({"del": FakeMailbox("secret", list(messages))}) as server:
        result = archiver.run(_box(monkeypatch, server, "del", delete_after_archive=True))
        remaining = server.mailbox("del").messages
    assert result.deleted == 3 and result.archived == 3
    assert remaining == []
    for raw in messages:
        assert archiver.store.get(raw_key(hashlib.sha256(raw).hexdigest())) == raw
    deleted = _rows(
        fresh_engine,
        "SELECT count(*) FROM archive.messages WHERE deleted_from_server_at IS NOT NULL",
    )
    assert deleted[0][0] == 3


def test_store_failure_deletes_nothing(fresh_engine: Engine, monkeypatch):
    store = MemoryStore(fail_puts=True)
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=store, default_timeout=10)
    messages = [make_message(f"keep {i}") for i in range(3)]
    with FakePop3Server({"keep": FakeMailbox("secret", list(messages))}) as server:
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(_box(monkeypatch, server, "keep", delete_after_archive=True))
        remaining = server.mailbox("keep").messages
        sent = [c for _, c in server.commands]
    assert remaining == messages
    assert not any(c.startswith("DELE") for c in sent)
    # The first copy's write failed and ended the session: the other two were not reached.
    result = failure.value.result
    assert (result.failed_messages, result.not_reached) == (1, 2) and failure.value.transient
    assert "keep" in str(failure.value)
    assert _rows(fresh_engine, "SELECT count(*) FROM mailarchive.delivery")[0][0] == 0


def test_corrupted_store_deletes_nothing(fresh_engine: Engine, monkeypatch):
    store = MemoryStore(corrupt_puts=True)
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=store, default_timeout=10)
    messages = [make_message("corrupt")]
    with FakePop3Server({"cor": FakeMailbox("secret", list(messages))}) as server:
        with pytest.raises(MailboxFailed):
            archiver.run(_box(monkeypatch, server, "cor", delete_after_archive=True))
        assert server.mailbox("cor").messages == messages


def test_dropped_connection_mid_retr_is_transient_and_deletes_nothing(
    archiver: Archiver, monkeypatch
):
    messages = [make_message(f"big {i}", "y" * 50_000) for i in range(3)]
    options = FakeServerOptions(drop_after_bytes=70_000)
    with FakePop3Server({"drop": FakeMailbox("secret", list(messages))}, options=options) as server:
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(_box(monkeypatch, server, "drop", delete_after_archive=True))
        assert server.mailbox("drop").messages == messages
    assert failure.value.transient
    # The connection dropped: no copy failed itself; the two after the first were not reached.
    result = failure.value.result
    assert (result.archived, result.failed_messages, result.not_reached) == (1, 0, 2)


def test_wrong_password_is_permanent_and_names_mailbox(archiver: Archiver, monkeypatch):
    with FakePop3Server({"carol": FakeMailbox("right", [make_message()])}) as server:
        box = _box(monkeypatch, server, "carol", password="wrong-password-value")
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(box)
    assert not failure.value.transient
    assert "carol" in str(failure.value)
    assert "wrong-password-value" not in str(failure.value)


def test_unreachable_server_times_out_clearly(archiver: Archiver, monkeypatch):
    # A listener that accepts but never greets: the client must give up at its timeout.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        box = mailbox_config(
            monkeypatch, "silent", "127.0.0.1", port, "x", "y", tls="none", timeout_seconds=0.5
        )
        with pytest.raises(MailboxFailed) as failure:
            archiver.run(box)
    message = str(failure.value)
    assert "silent" in message and "timed out" in message
    assert failure.value.transient


def test_broken_mime_archived_with_defects(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    broken = (
        b"From: a@example.org\r\nSubject: broken boundary\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n--XYZ\r\n'
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nstill searchable brokenword\r\n"
    )
    long_header = b"X-Huge: " + b"a" * 5_000_000 + b"\r\nSubject: huge header\r\n\r\nbody\r\n"
    with FakePop3Server({"b": FakeMailbox("secret", [broken, long_header])}) as server:
        result = archiver.run(_box(monkeypatch, server, "b"))
    assert result.archived == 2
    for raw in (broken, long_header):
        assert archiver.store.get(raw_key(hashlib.sha256(raw).hexdigest())) == raw
    rows = _rows(fresh_engine, "SELECT subject, defects FROM archive.messages ORDER BY size")
    assert rows[0].subject == "broken boundary" and rows[0].defects
    assert rows[1].defects
    found = _rows(
        fresh_engine,
        "SELECT subject FROM archive.messages WHERE search @@ to_tsquery('simple', 'brokenword')",
    )
    assert [r.subject for r in found] == ["broken boundary"]


def test_search_subject_plain_and_html_only(archiver: Archiver, fresh_engine: Engine, monkeypatch):
    messages = [
        make_message("Quarterly zebrafinch report", "nothing here"),
        make_message("plain", "the word marmalade is in the body"),
        make_message(
            "html only",
            "",
            html="<html><head><style>p{color:red}</style></head>"
            "<body><p>the <b>pangolin</b> appears</p><script>var hiddenscript=1</script></body></html>",
        ),
    ]
    with FakePop3Server({"s": FakeMailbox("secret", messages)}) as server:
        archiver.run(_box(monkeypatch, server, "s"))

    def search(word: str) -> list[str]:
        rows = _rows(
            fresh_engine,
            "SELECT subject FROM archive.messages WHERE search @@ websearch_to_tsquery('simple', :w)",
            w=word,
        )
        return [r.subject for r in rows]

    assert search("zebrafinch") == ["Quarterly zebrafinch report"]
    assert search("marmalade") == ["plain"]
    assert search("pangolin") == ["html only"]
    assert search("hiddenscript") == []


def test_index_rows_addresses_attachments_headers(
    archiver: Archiver, fresh_engine: Engine, monkeypatch
):
    raw = make_message(
        "Grüße aus München",
        "Hallo",
        attachments=(("Rechnung März.pdf", b"%PDF-1.4 rechnung", "application/pdf"),),
    )
    with FakePop3Server({"idx": FakeMailbox("secret", [raw])}) as server:
        archiver.run(_box(monkeypatch, server, "idx"))
    (msg,) = _rows(
        fresh_engine, "SELECT id, subject, has_attachments, sha256, size FROM archive.messages"
    )
    assert msg.subject == "Grüße aus München" and msg.has_attachments
    assert (msg.sha256, msg.size) == (hashlib.sha256(raw).hexdigest(), len(raw))
    addresses = _rows(
        fresh_engine,
        "SELECT role, name, address FROM archive.addresses WHERE message_id = :i",
        i=msg.id,
    )
    assert ("from", "Jürgen Müller", "juergen@example.org") in [tuple(a) for a in addresses]
    (att,) = _rows(
        fresh_engine, "SELECT filename, content_type, size, sha256 FROM archive.attachments"
    )
    assert att.filename == "Rechnung März.pdf" and att.content_type == "application/pdf"
    assert att.sha256 == hashlib.sha256(b"%PDF-1.4 rechnung").hexdigest()
    assert archiver.store.get(part_key(att.sha256)) == b"%PDF-1.4 rechnung"
    headers = _rows(
        fresh_engine,
        "SELECT value FROM archive.headers WHERE message_id = :i AND name = 'subject'",
        i=msg.id,
    )
    assert [h.value for h in headers] == ["Grüße aus München"]


def test_password_never_logged_or_stored(
    archiver: Archiver, fresh_engine: Engine, monkeypatch, caplog
):
    password = "pw-Zq81-unique-secret"
    caplog.set_level("DEBUG")
    with FakePop3Server({"sec": FakeMailbox(password, [make_message("secret test")])}) as server:
        archiver.run(_box(monkeypatch, server, "sec", password=password))
        logged_commands = [c for _, c in server.commands]
    assert not any(password in record.getMessage() for record in caplog.records)
    assert "PASS ***" in logged_commands or "AUTH PLAIN ***" in logged_commands
    with fresh_engine.connect() as conn:
        dump = conn.execute(
            text(
                "SELECT string_agg(t::text, ' ') FROM ("
                " SELECT row_to_json(b)::text AS t FROM mailarchive.mailbox b"
                " UNION ALL SELECT row_to_json(d)::text FROM mailarchive.delivery d"
                " UNION ALL SELECT row_to_json(m)::text FROM archive.messages m) x"
            )
        ).scalar_one()
    assert "sec" in dump and password not in dump
