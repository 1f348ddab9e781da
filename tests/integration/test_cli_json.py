"""`--json` on every command that prints a result: each prints one JSON object on stdout
that says what the command did, with the same exit code as without it."""

from __future__ import annotations

import hashlib
import json
import mailbox as stdlib_mailbox
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

import migrations
from archive.app.cli import app
from archive.pipeline.archiver import Archiver
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore, raw_key
from tests.support.mail import fake_box, make_message


def _json(*args: str, code: int = 0) -> dict:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, result.output
    (line,) = result.stdout.splitlines()
    return json.loads(line)


@pytest.fixture
def archive_env(
    archiver: Archiver, fresh_db_url: str, local_store: LocalStore, monkeypatch
) -> list[bytes]:
    """Three messages archived from mailbox `ann`; the commands see this archive."""
    mails = [make_message(f"contract {i}", body=f"body {i}") for i in range(3)]
    with FakePop3Server({"ann": FakeMailbox("secret", mails)}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", local_store.root.as_uri())
    return mails


def test_migrate_and_db_url_and_db_status(archive_env, fresh_db_url: str):
    assert _json("migrate", "--json")["schema"] == migrations.HEAD
    url = _json("db", "url", "--json")
    assert url == {"url": fresh_db_url, "embedded": False}
    status = _json("db", "status", "--json")
    assert status["state"] == "answering" and status["schema_current"] is True
    assert status["schema_head"] == migrations.HEAD and status["bytes"] > 1_000_000
    assert status["embedded"] is False


def test_db_start_status_stop_of_the_embedded_server(tmp_path: Path):
    stopped = _json("db", "status", "--json", code=1)
    assert stopped["state"] == "stopped" and stopped["embedded"] is True
    started = _json("db", "start", "--json")
    assert started["running"] is True and started["url"].startswith("postgresql://")
    try:
        # Without --json, on a narrow terminal: the URL stays on its label's line, whole.
        again = CliRunner().invoke(app, ["db", "start"], env={"COLUMNS": "40"})
        assert again.exit_code == 0, again.output
        assert again.stdout == f"embedded PostgreSQL running: {started['url']}\n"
        running = _json("db", "status", "--json")
        assert running["state"] == "answering" and running["schema_current"] is False
        # The bundled pg_dump, of the server's version, for backups (docs/operations.md).
        assert (Path(running["tools"]) / "pg_dump").exists()
    finally:
        assert _json("db", "stop", "--json") == {"stopped": True}
    assert _json("db", "stop", "--json") == {"stopped": False}


def test_mailbox_forget(archive_env, fresh_engine: Engine):
    refused = CliRunner().invoke(app, ["mailbox", "forget", "ann", "--json"])
    assert refused.exit_code == 2 and refused.stdout == "" and "--yes" in refused.stderr
    done = _json("mailbox", "forget", "ann", "--yes", "--json")
    assert done == {"mailbox": "ann", "deliveries": 3, "messages": 3, "messages_kept": 0}
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM mailarchive.message")).scalar() == 0


def test_export_import_and_reindex(archive_env, tmp_path: Path, fresh_engine: Engine):
    out = tmp_path / "export"
    exported = _json("export", "contract", "--out", str(out), "--json")
    assert exported["matched"] == exported["exported"] == 3
    assert exported["bytes"] == sum(len(m) for m in archive_env)
    assert exported["skipped_damaged"] == [] and len(exported["manifest_sha256"]) == 64
    (mbox_path,) = out.glob("*.mbox")
    assert len(stdlib_mailbox.mbox(str(mbox_path))) == 3

    imported = _json("import", "mbox", str(mbox_path), "--mailbox", "copy", "--json")
    # The same content, archived under `ann` already: filed under `copy`, stored once.
    assert (imported["found"], imported["imported"], imported["duplicates"]) == (3, 0, 3)
    again = _json("import", "mbox", str(mbox_path), "--mailbox", "copy", "--json")
    assert again["imported"] == 0 and again["already"] == 3

    with fresh_engine.begin() as conn:
        conn.execute(text("UPDATE mailarchive.message SET parser_version = 0"))
    reindexed = _json("reindex", "--json")
    assert reindexed == {"reindexed": 3, "remaining": 0, "failed": []}


def test_gc_and_hold_create_release(archive_env, local_store: LocalStore):
    orphan = hashlib.sha256(b"nothing references this").hexdigest()
    path = local_store.root / raw_key(orphan)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"nothing references this")
    listed = _json("gc", "--grace-hours", "0", "--json")
    assert (listed["applied"], listed["would_remove"], listed["keys"]) == (
        False, 1, [raw_key(orphan)])  # fmt: skip
    swept = _json("gc", "--grace-hours", "0", "--apply", "--json")
    assert swept["removed"] == 1 and not path.exists()
    made = _json("hold", "create", "k", "--reason", "audit", "--query", "contract", "--json")
    assert made["name"] == "k" and made["messages"] == 3
    released = _json("hold", "release", "k", "--reason", "settled", "--json")
    assert released["name"] == "k" and released["released_at"] is not None
