"""End to end against a real Dovecot: TLS, exact bytes, the public corpus, deletion."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, text

from archive.errors import Pop3TLSError
from archive.pipeline.archiver import Archiver, MailboxFailed
from archive.pop3.client import Endpoint, Pop3Client
from archive.store import raw_key
from tests.support.corpus import CORPUS_FILES
from tests.support.mail import mailbox_config, make_message

pytestmark = pytest.mark.dovecot


def _box(monkeypatch, dovecot, user, password, *, tls="implicit", **options):
    port = dovecot.pop3s_port if tls == "implicit" else dovecot.pop3_port
    return mailbox_config(
        monkeypatch,
        user,
        dovecot.host,
        port,
        user,
        password,
        tls=tls,
        ca_file=str(dovecot.tls.ca_file),
        **options,
    )


def _count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_implicit_tls_verified_and_untrusted_refused(dovecot, dovecot_user):
    user, password = dovecot_user([make_message()])
    trusted = Endpoint(
        dovecot.host, dovecot.pop3s_port, "implicit", dovecot.tls.ca_file, 10, "tls-ok"
    )
    client = Pop3Client.connect(trusted)
    client.login(user, password)
    assert len(client.uidl()) == 1
    client.quit()

    untrusted = Endpoint(
        dovecot.host, dovecot.pop3s_port, "implicit", None, 10, "mailbox 'tls-bad'"
    )
    with pytest.raises(Pop3TLSError, match="tls-bad.*not trusted"):
        Pop3Client.connect(untrusted)
    starttls_untrusted = Endpoint(dovecot.host, dovecot.pop3_port, "starttls", None, 10, "stls-bad")
    with pytest.raises(Pop3TLSError):
        Pop3Client.connect(starttls_untrusted)


def test_starttls_and_pipelined_retrieval(dovecot, dovecot_user, archiver: Archiver, monkeypatch):
    messages = [make_message(f"stls {i}") for i in range(20)]
    user, password = dovecot_user(messages)
    result = archiver.run(_box(monkeypatch, dovecot, user, password, tls="starttls"))
    assert result.archived == 20
    for raw in messages:
        served = dovecot.served_bytes(raw)
        assert archiver.store.get(raw_key(hashlib.sha256(served).hexdigest())) == served


def test_rerun_and_exact_bytes(
    dovecot, dovecot_user, archiver: Archiver, fresh_engine, monkeypatch
):
    messages = [make_message(f"exact {i}", f".dot line {i}\r\n" + "z" * 5000) for i in range(5)]
    user, password = dovecot_user(messages)
    box = _box(monkeypatch, dovecot, user, password)
    first = archiver.run(box)
    second = archiver.run(box)
    assert (first.new, first.archived) == (5, 5)
    assert (second.listed, second.new, second.archived) == (5, 0, 0)
    with fresh_engine.connect() as conn:
        archived = {r[0] for r in conn.execute(text("SELECT sha256 FROM archive.messages"))}
    assert archived == {hashlib.sha256(dovecot.served_bytes(m)).hexdigest() for m in messages}


def test_delete_after_archive_on_dovecot(dovecot, dovecot_user, archiver: Archiver, monkeypatch):
    messages = [make_message(f"del {i}") for i in range(4)]
    user, password = dovecot_user(messages)
    result = archiver.run(_box(monkeypatch, dovecot, user, password, delete_after_archive=True))
    assert (result.archived, result.deleted) == (4, 4)
    assert dovecot.message_count(user) == 0
    for raw in messages:
        served = dovecot.served_bytes(raw)
        assert archiver.store.get(raw_key(hashlib.sha256(served).hexdigest())) == served


def test_wrong_password_on_dovecot(dovecot, dovecot_user, archiver: Archiver, monkeypatch):
    user, _ = dovecot_user([make_message()])
    with pytest.raises(MailboxFailed) as failure:
        archiver.run(_box(monkeypatch, dovecot, user, "not-the-password"))
    assert not failure.value.transient
    assert user in str(failure.value) and "not-the-password" not in str(failure.value)
    assert dovecot.message_count(user) == 1


def test_public_corpus_archived_byte_for_byte(
    corpus, dovecot, dovecot_user, archiver: Archiver, fresh_engine, monkeypatch
):
    files = CORPUS_FILES
    originals = [f.read_bytes() for f in files]
    user, password = dovecot_user(originals)
    result = archiver.run(_box(monkeypatch, dovecot, user, password))
    expected = {hashlib.sha256(dovecot.served_bytes(raw)).hexdigest() for raw in originals}
    assert result.listed == len(files) and result.failed_messages == 0
    assert result.archived + result.duplicates == len(files)
    for sha in expected:
        assert hashlib.sha256(archiver.store.get(raw_key(sha))).hexdigest() == sha
    with fresh_engine.connect() as conn:
        archived = {r[0] for r in conn.execute(text("SELECT sha256 FROM archive.messages"))}
    assert archived == expected
