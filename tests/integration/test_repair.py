"""`mailarchive repair` on the local store and on S3 (moto's server): damaged and missing
originals are fetched again from the fake POP3 server, hashed, stored and read back; what the
server cannot give back is named, and the exit code says so. Nothing is deleted anywhere."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import ObjectStore, open_store, raw_key, read_verified
from tests.integration.test_store_s3 import BUCKET, moto_endpoint, s3_env  # noqa: F401
from tests.support.mail import fake_box, make_message

WORDS = ("TOP", "RETR", "DELE")


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@pytest.fixture(params=["local", "s3"])
def store_url(request, tmp_path: Path) -> str:
    if request.param == "s3":
        request.getfixturevalue("s3_env")
        return f"s3://{BUCKET}/repair-{tmp_path.name}"
    return (tmp_path / "objects").as_uri()


def _mailbox_file(tmp_path: Path, server: FakePop3Server, *users: str) -> Path:
    path = tmp_path / "mailboxes.toml"
    path.write_text(
        "".join(
            f'[[mailbox]]\nname = "{user}"\nhost = "{server.host}"\nport = {server.port}\n'
            f'username = "{user}"\npassword_env = "TEST_PW_{user.upper()}"\ntls = "none"\n\n'
            for user in users
        )
    )
    return path


def _repair(monkeypatch, db_url: str, store_url: str, *args: str):
    from typer.testing import CliRunner

    from archive.app.cli import app

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", store_url)
    return CliRunner().invoke(app, ["repair", *args])


def _damage(store: ObjectStore, raw: bytes, how: str) -> None:
    key = raw_key(_sha(raw))
    if how == "missing":
        store.delete(key)
    else:
        store.put(key, io.BytesIO(b"bit rot"), 7)


def test_repair_fetches_damaged_and_missing_originals_again(
    fresh_db_url: str, fresh_engine: Engine, store_url: str, tmp_path: Path, monkeypatch
):
    store = open_store(store_url)
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=store, default_timeout=10)
    mails = [make_message(f"repair {i}") for i in range(4)]
    ann = FakeMailbox("secret", mails[:3])
    bob = FakeMailbox("secret", mails[3:])
    with FakePop3Server({"ann": ann, "bob": bob}) as server:
        for user in ("ann", "bob"):
            archiver.run(fake_box(monkeypatch, server, user))
        _damage(store, mails[0], "mismatch")
        _damage(store, mails[1], "missing")
        _damage(store, mails[3], "mismatch")
        # bob's server no longer has the message: nothing can give it back.
        bob.messages.clear()
        bob.uidls = []
        del server.commands[:]
        config = _mailbox_file(tmp_path, server, "ann", "bob")
        result = _repair(monkeypatch, fresh_db_url, store_url, "--config", str(config), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["repaired"] == {_sha(mails[0]): "ann", _sha(mails[1]): "ann"}
    assert list(report["unrepaired"]) == [_sha(mails[3])]
    assert "no configured mailbox still holds it" in report["unrepaired"][_sha(mails[3])]
    for raw in mails[:3]:
        assert read_verified(store, raw_key(_sha(raw)), _sha(raw)) == raw
    commands = [command.split()[0] for _, command in server.commands]
    assert "DELE" not in commands and commands.count("RETR") == 2
    assert ann.messages == mails[:3]


def test_repair_refuses_a_server_message_that_hashes_differently(
    fresh_db_url: str, fresh_engine: Engine, store_url: str, tmp_path: Path, monkeypatch
):
    store = open_store(store_url)
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=store, default_timeout=10)
    original = b"Message-ID: <orig@example.org>\r\nSubject: s\r\n\r\nfirst version\r\n"
    other = b"Message-ID: <othr@example.org>\r\nSubject: s\r\n\r\nother version\r\n"
    same_id = b"Message-ID: <orig@example.org>\r\nSubject: s\r\n\r\nother version\r\n"
    assert len(original) == len(other) == len(same_id)
    box = FakeMailbox("secret", [original], uidls=["0001"])
    with FakePop3Server({"cat": box}) as server:
        archiver.run(fake_box(monkeypatch, server, "cat"))
        _damage(store, original, "mismatch")
        box.messages[:] = [other]  # the id now names another message of the same size
        config = _mailbox_file(tmp_path, server, "cat")
        del server.commands[:]
        failed = _repair(monkeypatch, fresh_db_url, store_url, "--config", str(config), "--json")
        refused = [command for _, command in server.commands if command.split()[0] in WORDS]
        # Same Message-ID, same size, other bytes: only the hash can tell.
        box.messages[:] = [same_id]
        del server.commands[:]
        hashed = _repair(monkeypatch, fresh_db_url, store_url, "--config", str(config), "--json")
        retrieved = [command for _, command in server.commands if command.split()[0] in WORDS]
        box.messages[:] = [original]
        fixed = _repair(monkeypatch, fresh_db_url, store_url, "-c", str(config), "-m", "cat")
        clean = _repair(monkeypatch, fresh_db_url, store_url, "-c", str(config))
    # Another Message-ID in TOP: not the original, not retrieved.
    assert failed.exit_code == 1 and refused == ["TOP 1 0"]
    why = json.loads(failed.stdout)["unrepaired"][_sha(original)]
    assert "Message-ID" in why and "UIDL 0001" in why
    assert hashed.exit_code == 1 and retrieved == ["TOP 1 0", "RETR 1"]
    why = json.loads(hashed.stdout)["unrepaired"][_sha(original)]
    assert "hashes to" in why
    assert fixed.exit_code == 0, fixed.output
    assert "1 repaired, 0 not repaired" in fixed.stdout
    assert read_verified(store, raw_key(_sha(original)), _sha(original)) == original
    assert clean.exit_code == 0 and "0 damaged or missing objects" in clean.stdout


def test_a_mailbox_that_could_not_be_asked_is_named_as_not_asked(
    fresh_db_url: str, fresh_engine: Engine, tmp_path: Path, monkeypatch
):
    # Its password was not set: the server may well hold the message, so "no configured
    # mailbox still holds it" would send the user looking for the wrong cause.
    store_url = (tmp_path / "objects").as_uri()
    store = open_store(store_url)
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=store, default_timeout=10)
    mail = make_message("repair without a password")
    with FakePop3Server({"ann": FakeMailbox("secret", [mail])}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
        _damage(store, mail, "mismatch")
        monkeypatch.delenv("TEST_PW_ANN")
        config = _mailbox_file(tmp_path, server, "ann")
        result = _repair(monkeypatch, fresh_db_url, store_url, "--config", str(config), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert "TEST_PW_ANN is not set" in report["mailboxes"]["ann"]
    assert report["unrepaired"][_sha(mail)] == (
        f"mismatch (ann UIDL {_sha(mail)[:16]}): not on the servers asked; not asked: ann "
        "(see its error)"
    )
