"""The record each mailbox run leaves (`mailarchive.mailbox_run`) and what `status` makes of
it: the last run, the last success, the next scheduled run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from archive.app.cli import app
from archive.config.cron import next_run
from archive.index.ledger import IndexWriter
from archive.index.runs import RunLog
from archive.pipeline.archiver import Archiver
from archive.pipeline.result import MailboxFailed
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore
from tests.support.mail import fake_box, make_message

WRONG = "wrong-Pa55word-never-stored"


def _runs(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT b.name, r.* FROM mailarchive.mailbox_run r "
                "JOIN mailarchive.mailbox b ON b.id = r.mailbox_id ORDER BY r.id"
            )
        )
        return [dict(row._mapping) for row in rows]


def test_each_run_leaves_a_record_with_its_status_counts_and_a_safe_error(
    archiver: Archiver, fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    mails = [make_message(f"m{i}") for i in range(3)]
    with FakePop3Server({"ann": FakeMailbox("secret", mails)}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
        archiver.run(fake_box(monkeypatch, server, "ann"))
        with pytest.raises(MailboxFailed):
            archiver.run(fake_box(monkeypatch, server, "ann", password=WRONG))
    first, second, failed = _runs(fresh_engine)
    assert (first["status"], first["archived"], first["new"], first["listed"]) == ("ok", 3, 3, 3)
    assert first["bytes"] == sum(len(m) for m in mails) and first["error"] is None
    assert (second["status"], second["archived"], second["listed"]) == ("ok", 0, 3)
    assert failed["status"] == "failed" and failed["archived"] == 0
    assert "ann" in str(failed["error"]) and WRONG not in str(failed["error"])
    assert first["started_at"] <= first["finished_at"] <= second["started_at"]


def test_an_unexpected_exception_is_recorded_by_its_type_only(
    archiver: Archiver, fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    def explode(endpoint: object) -> object:
        raise RuntimeError(f"driver said: password={WRONG}")

    broken = Archiver(
        writer=archiver.writer,
        store=archiver.store,
        connect=explode,  # type: ignore[arg-type]
        runs=archiver.runs,
    )
    with FakePop3Server({}) as server, pytest.raises(MailboxFailed):
        broken.run(fake_box(monkeypatch, server, "bob"))
    (run,) = _runs(fresh_engine)
    assert run["name"] == "bob" and run["status"] == "failed"
    assert run["error"] == "mailbox 'bob': unexpected RuntimeError (see the run's log)"


def test_a_record_that_cannot_be_written_leaves_the_result_alone(
    fresh_engine: Engine, local_store: LocalStore, monkeypatch: pytest.MonkeyPatch, caplog
):
    class Unwritable:
        def record(self, run: object) -> None:
            raise OSError("disk full")

    archiver = Archiver(writer=IndexWriter(fresh_engine), store=local_store, runs=Unwritable())
    with FakePop3Server({"ann": FakeMailbox("secret", [make_message("x")])}) as server:
        result = archiver.run(fake_box(monkeypatch, server, "ann"))
    assert result.status == "ok" and result.archived == 1
    assert "the record of this run was not written: OSError" in caplog.text
    assert _runs(fresh_engine) == []


def test_status_shows_last_run_last_success_and_the_next_scheduled_run(
    archiver: Archiver,
    fresh_db_url: str,
    local_store: LocalStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    with FakePop3Server({"ann": FakeMailbox("secret", [make_message("x")])}) as server:
        ok = archiver.run(fake_box(monkeypatch, server, "ann"))
        with pytest.raises(MailboxFailed):
            archiver.run(fake_box(monkeypatch, server, "ann", password=WRONG))
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", local_store.root.as_uri())
    config = tmp_path / "boxes.toml"
    config.write_text(
        'schedule = "0 3 * * *"\ntimezone = "Europe/Berlin"\n\n[[mailbox]]\nname = "ann"\n'
        'host = "127.0.0.1"\nusername = "ann"\npassword_env = "ANN_PASSWORD"\n'
    )
    before = datetime.now(UTC)
    result = CliRunner().invoke(app, ["status", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (ann,) = report["mailboxes"]
    assert ann["last_run"]["status"] == "failed" and ann["last_run"]["archived"] == 0
    assert "ann" in ann["last_run"]["error"] and WRONG not in result.stdout
    last_success = datetime.fromisoformat(ann["last_success_at"])
    assert last_success < datetime.fromisoformat(ann["last_run"]["finished_at"])
    assert ok.archived == 1 and ann["messages"] == 1
    upcoming = datetime.fromisoformat(report["schedule"]["next_run"])
    assert report["schedule"]["cron"] == "0 3 * * *"
    assert before < upcoming <= before + timedelta(days=1)
    assert upcoming == next_run("0 3 * * *", "Europe/Berlin", before)
    assert upcoming.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin")).hour == 3

    table = CliRunner().invoke(app, ["status"], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    assert "ann failed:" in table.stdout and "next run: not known" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80

    # On a terminal the next run is told in the schedule's zone, where its 03:00 is.
    with_file = CliRunner().invoke(app, ["status", "--config", str(config)])
    assert with_file.exit_code == 0, with_file.output
    berlin = upcoming.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert f"next run: {berlin:%Y-%m-%d} 03:00 CE" in with_file.stdout, with_file.stdout


def test_forgetting_a_mailbox_removes_its_runs(
    archiver: Archiver, fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    from archive.index.forget import forget_mailbox

    with FakePop3Server({"ann": FakeMailbox("secret", [make_message("x")])}) as server:
        archiver.run(fake_box(monkeypatch, server, "ann"))
    assert len(_runs(fresh_engine)) == 1
    with fresh_engine.connect() as conn:
        forget_mailbox(conn, "ann")
    assert _runs(fresh_engine) == []


def test_the_archiver_of_every_entry_point_keeps_records(fresh_engine: Engine):
    from archive.config import load_settings
    from archive.pipeline.build import make_archiver

    archiver = make_archiver(load_settings(), fresh_engine)
    try:
        assert isinstance(archiver.runs, RunLog) and archiver.runs.engine is fresh_engine
    finally:
        assert archiver.extractor is not None
        archiver.extractor.close()
