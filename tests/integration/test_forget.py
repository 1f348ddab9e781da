"""`mailbox forget`: a mailbox's ledger and its own messages go; shared messages and every
stored object stay (gc's to remove); never while a run holds the mailbox."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine, text

from archive.index import locks
from archive.index.forget import MailboxBusy, forget_mailbox
from archive.pipeline.archiver import Archiver
from archive.pipeline.verify import verify
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore, raw_key
from tests.support.mail import fake_box, make_message

PDF = b"%PDF-1.4 only ann has this"


@pytest.fixture
def mails(archiver: Archiver, monkeypatch) -> list[bytes]:
    """ann: one, two (with a PDF) and shared; bob: shared and three."""
    one = make_message("one")
    two = make_message("two", attachments=(("report.pdf", PDF, "application/pdf"),))
    shared = make_message("to both")
    three = make_message("three")
    with FakePop3Server(
        {
            "ann": FakeMailbox("secret", [one, two, shared]),
            "bob": FakeMailbox("secret", [shared, three]),
        }
    ) as server:
        for user in ("ann", "bob"):
            archiver.run(fake_box(monkeypatch, server, user))
    return [one, two, shared, three]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _subjects(engine: Engine, mailbox: str | None = None) -> set[str]:
    sql = "SELECT DISTINCT subject FROM archive.messages"
    with engine.connect() as conn:
        if mailbox is None:
            rows = conn.execute(text("SELECT subject FROM mailarchive.message"))
        else:
            rows = conn.execute(text(f"{sql} WHERE mailbox = :m"), {"m": mailbox})
        return {row[0] for row in rows}


def test_forget_removes_its_ledger_and_own_messages_and_keeps_the_shared_one(
    mails, fresh_engine: Engine, local_store: LocalStore
):
    before = _subjects(fresh_engine)
    assert {"one", "two", "to both", "three"} <= before
    with fresh_engine.connect() as conn:
        done = forget_mailbox(conn, "ann")
    assert (done.deliveries, done.messages) == (3, 2)
    assert _subjects(fresh_engine) == before - {"one", "two"}
    assert _subjects(fresh_engine, "ann") == set()
    assert _subjects(fresh_engine, "bob") == {"to both", "three"}
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM mailarchive.mailbox")).scalar_one() == 1
        assert (
            conn.execute(
                text("SELECT count(*) FROM mailarchive.extracted_text WHERE sha256 = :s"),
                {"s": _sha(PDF)},
            ).scalar_one()
            == 0
        )
    # The objects stay, now orphans for gc; bob's verify clean.
    assert local_store.exists(raw_key(_sha(mails[0])))
    report = verify(fresh_engine, local_store)
    assert report.ok and raw_key(_sha(mails[0])) in {o.key for o in report.orphans}


def test_forget_refuses_while_a_run_holds_the_mailbox(mails, fresh_engine: Engine):
    with fresh_engine.connect() as runner, locks.mailbox_lock(runner, "ann") as held:
        assert held
        with fresh_engine.connect() as conn, pytest.raises(MailboxBusy, match="lock is held"):
            forget_mailbox(conn, "ann")
    assert "one" in _subjects(fresh_engine, "ann")


def test_the_command_asks_first_and_names_what_stays(
    mails, fresh_db_url: str, local_store: LocalStore, monkeypatch
):
    from typer.testing import CliRunner

    from archive.app.cli import app

    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", local_store.root.as_uri())
    refused = CliRunner().invoke(app, ["mailbox", "forget", "ann"], input="n\n")
    assert refused.exit_code == 1, refused.output
    # Before the answer, what it would do, not "(removed)" as if done already.
    assert (
        "forgetting it removes 3 ledger rows and the 2 messages only it has; "
        "1 also in other mailboxes stay" in refused.output
    )
    assert "nothing was forgotten" in refused.output
    done = CliRunner().invoke(app, ["mailbox", "forget", "ann", "--yes"])
    assert done.exit_code == 0, done.output
    assert "forgot mailbox ann: 3 ledger rows and 2 messages" in done.output
    missing = CliRunner().invoke(app, ["mailbox", "forget", "ann", "--yes"])
    assert missing.exit_code == 1 and "no mailbox named 'ann'" in missing.output


def test_forget_refuses_a_mailbox_with_held_messages_and_audits_what_it_does(
    mails, fresh_engine: Engine
):
    from archive.index import holds
    from archive.index.forget import MailboxHeld

    with fresh_engine.connect() as conn, conn.begin():
        holds.create(conn, "dispute-7", "court order", messages=[_sha(mails[2])])  # shared
    with fresh_engine.connect() as conn, pytest.raises(MailboxHeld, match="legal hold"):
        forget_mailbox(conn, "ann")
    assert {"one", "two", "to both"} <= _subjects(fresh_engine, "ann")  # nothing forgotten
    with fresh_engine.connect() as conn, conn.begin():
        holds.release(conn, "dispute-7", "settled")
    with fresh_engine.connect() as conn:
        done = forget_mailbox(conn, "ann")
        audited = conn.execute(
            text("SELECT details FROM archive.audit WHERE action = 'forget'")
        ).scalar_one()
    assert done.deliveries == 3
    assert audited == {"mailbox": "ann", "deliveries": 3, "messages": 2}
