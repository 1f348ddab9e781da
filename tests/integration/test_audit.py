"""The audit trail: append-only, hash-chained, and every search recorded, from SQL too."""

from __future__ import annotations

import getpass
import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from archive.index import audit
from archive.index.search import search_page
from tests.support.mail import make_message


def _rows(engine: Engine, action: str) -> list[dict]:
    with engine.connect() as conn:
        return [
            dict(row._mapping)
            for row in conn.execute(
                text(
                    "SELECT action, db_role, os_user, details FROM archive.audit "
                    "WHERE action = :a ORDER BY id"
                ),
                {"a": action},
            )
        ]


def test_record_appends_a_chained_row(fresh_engine: Engine):
    with fresh_engine.begin() as conn:
        first = audit.record(conn, "export", {"query": "from:ann", "messages": 3})
        second = audit.record(conn, "import", {"path": "/tmp/box.mbox"})
    assert second > first
    [row] = _rows(fresh_engine, "export")
    assert row["details"] == {"query": "from:ann", "messages": 3}
    assert row["db_role"] == "postgres" and row["os_user"] == getpass.getuser()
    with fresh_engine.connect() as conn:
        chain = conn.execute(
            text("SELECT prev_sha256, sha256 FROM archive.audit ORDER BY id")
        ).all()
        assert chain[0].prev_sha256 is None and chain[1].prev_sha256 == chain[0].sha256
        assert audit.verify_chain(conn).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE mailarchive.audit_log SET details = '{}'",
        "DELETE FROM mailarchive.audit_log",
        "TRUNCATE mailarchive.audit_log",
    ],
)
def test_the_trail_is_append_only(fresh_engine: Engine, statement: str):
    with fresh_engine.begin() as conn:
        audit.record(conn, "forget", {"mailbox": "ann"})
    with fresh_engine.connect() as conn:
        with pytest.raises(DBAPIError, match="append-only"):
            with conn.begin():
                conn.execute(text(statement))
    assert len(_rows(fresh_engine, "forget")) == 1


def test_an_edited_or_removed_row_breaks_the_chain(fresh_engine: Engine):
    with fresh_engine.begin() as conn:
        ids = [audit.record(conn, "export", {"n": n}) for n in range(4)]
    with fresh_engine.begin() as conn:
        # What only a superuser or the owner can do: switch the triggers off.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(
            text("UPDATE mailarchive.audit_log SET details = '{\"n\": 9}' WHERE id = :id"),
            {"id": ids[1]},
        )
        conn.execute(text("DELETE FROM mailarchive.audit_log WHERE id = :id"), {"id": ids[2]})
    with fresh_engine.connect() as conn:
        report = audit.verify_chain(conn)
    assert (report.rows, report.broken) == (3, [ids[1], ids[3]])


def test_searches_are_recorded_from_python_and_from_sql(archiver, fresh_engine, monkeypatch):
    from archive.pop3.fake.server import FakeMailbox, FakePop3Server
    from tests.support.mail import fake_box

    mails = [make_message("budget one"), make_message("budget two"), make_message("other")]
    with FakePop3Server({"ann": FakeMailbox("secret", mails)}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))

    page = search_page(fresh_engine, "budget", limit=1)
    assert page.total == 2
    with fresh_engine.connect() as conn:
        conn.execute(text("SET ROLE archive_reader"))
        assert conn.execute(text("SELECT count(*) FROM archive.search('other')")).scalar() == 1
        conn.commit()
    searches = _rows(fresh_engine, "search")
    assert [(s["details"]["query"], s["details"]["rows"]) for s in searches] == [
        ("budget", 1),
        ("other", 1),
    ]
    assert searches[0]["os_user"] == getpass.getuser()
    assert searches[1]["os_user"] is None and searches[1]["db_role"] == "postgres"
    assert [c["details"] for c in _rows(fresh_engine, "search_count")] == [
        {"query": "budget", "matches": 2}
    ]
    with fresh_engine.connect() as conn:
        conn.execute(text("SET ROLE archive_reader"))
        assert conn.execute(text("SELECT count(*) FROM archive.audit")).scalar() == 3
        with pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text("INSERT INTO mailarchive.audit_log (action) VALUES ('x')"))


def test_cli_holds_retention_and_audit(archiver, fresh_engine, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from archive.app.cli import app
    from archive.pop3.fake.server import FakeMailbox, FakePop3Server
    from tests.support.mail import fake_box

    mail = make_message("contract draft")
    with FakePop3Server({"ann": FakeMailbox("secret", [mail])}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
    with fresh_engine.begin() as conn:
        conn.execute(
            text("UPDATE mailarchive.delivery SET archived_at = now() - interval '3 years'")
        )
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_engine.url.render_as_string(False))
    config = tmp_path / "boxes.toml"
    config.write_text(
        'retention_years = 2\nretention_from = "archived"\n\n[[mailbox]]\nname = "ann"\n'
        'host = "h"\nusername = "ann"\npassword_env = "X"\n'
    )
    runner = CliRunner()
    made = runner.invoke(app, ["hold", "create", "k", "--reason", "audit", "--query", "contract"])
    assert made.exit_code == 0, made.output
    assert made.stdout == "hold k placed: 1 message\n"
    kept = runner.invoke(app, ["retention", "--config", str(config), "--apply", "--json"])
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["mailboxes"][0]["held"] == 1
    released = runner.invoke(app, ["hold", "release", "k", "--reason", "settled"])
    assert released.exit_code == 0, released.output
    dry = runner.invoke(app, ["retention", "--config", str(config), "--json"])
    assert json.loads(dry.stdout)["messages"] == 1
    gone = runner.invoke(app, ["retention", "--config", str(config), "--apply", "--json"])
    assert json.loads(gone.stdout)["messages"] == 1
    listed = runner.invoke(app, ["hold", "list", "--json"])
    assert [(h["name"], h["active"], h["release_reason"]) for h in json.loads(listed.stdout)] == [
        ("k", False, "settled")
    ]
    verified = runner.invoke(app, ["audit", "verify", "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["broken"] == []
    trail = runner.invoke(app, ["audit", "list", "--json"])
    assert [r["action"] for r in json.loads(trail.stdout)][:4] == [
        "retention",
        "retention",
        "hold_release",
        "retention",
    ]


def test_concurrent_inserts_keep_one_chain(fresh_engine: Engine):
    import threading

    first = fresh_engine.connect()
    first.begin()
    audit.record(first, "export", {"n": 1})  # holds the chain until it commits
    done = threading.Event()

    def second() -> None:
        with fresh_engine.begin() as conn:
            audit.record(conn, "export", {"n": 2})
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    # The second insert waits for the first's chain lock (seen in pg_locks), not a clock.
    with fresh_engine.connect() as watcher:
        while not done.is_set():
            waiting = watcher.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
            watcher.rollback()
            if waiting:
                break
    assert not done.is_set()
    first.commit()
    first.close()
    thread.join()
    with fresh_engine.connect() as conn:
        assert audit.verify_chain(conn).ok and audit.verify_chain(conn).rows == 2


def test_a_search_that_cannot_be_chained_is_refused(archiver, fresh_engine: Engine):
    with fresh_engine.connect() as conn:
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        with pytest.raises(DBAPIError, match="READ COMMITTED"):
            conn.execute(text("SELECT count(*) FROM archive.search('anything')"))
    assert _rows(fresh_engine, "search") == []


def test_the_unrecorded_search_is_the_owners_for_snapshots(archiver, fresh_engine, monkeypatch):
    from archive.pop3.fake.server import FakeMailbox, FakePop3Server
    from tests.support.mail import fake_box

    with FakePop3Server({"ann": FakeMailbox("secret", [make_message("ledger")])}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
    with fresh_engine.connect() as conn:
        # What export does: its pages in one read-only snapshot; it records itself as export.
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        found = conn.execute(
            text("SELECT count(*) FROM mailarchive.search_unrecorded('ledger', 10, 0, 'newest')")
        ).scalar()
        total = conn.execute(text("SELECT mailarchive.search_count_unrecorded('ledger')")).scalar()
        assert (found, total) == (1, 1)
        conn.rollback()
        conn.execute(text("SET ROLE archive_reader"))
        with pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text("SELECT mailarchive.search_count_unrecorded('ledger')"))
    assert _rows(fresh_engine, "search") == [] and _rows(fresh_engine, "search_count") == []
