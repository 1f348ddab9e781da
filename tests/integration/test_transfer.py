"""Import (mbox, Maildir) into a real archive and export (mbox, eml-zip, Maildir, BagIt) out of
it: originals byte for byte, manifests, damaged originals, idempotence, and the POP3 rule that
an imported row is never a reason to DELE."""

from __future__ import annotations

import csv
import hashlib
import mailbox
import re
import zipfile
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from archive.errors import TransferError
from archive.index.ledger import IndexWriter
from archive.pipeline.archiver import Archiver
from archive.pipeline.export import ExportRequest, export, full_query
from archive.pipeline.importer import Importer
from archive.pop3.fake.memory import MemoryMaildrop, MemoryPop3
from archive.store import LocalStore, raw_key
from archive.transfer import mbox_entry
from tests.support.mail import make_message
from tests.support.memory import box, sha

DAYS = ["01", "02", "03", "04", "05"]


def dated(i: int) -> bytes:
    raw = make_message(f"transfer {i}", f"body {i}\r\nFrom the start of a line\r\n")
    raw = raw.replace(b"03 Mar 2026", f"{DAYS[i]} Mar 2026".encode())
    return b"Return-Path: <bounce-%d@lists.example>\r\n" % i + raw if i == 4 else raw


MAILS = [dated(i) for i in range(5)]


def write_mbox(path: Path, mails: list[bytes]) -> Path:
    from datetime import UTC, datetime

    path.write_bytes(b"".join(mbox_entry(raw, "x@example.org", datetime.now(UTC)) for raw in mails))
    return path


@pytest.fixture
def importer(fresh_engine: Engine, local_store: LocalStore) -> Importer:
    return Importer(writer=IndexWriter(fresh_engine), store=local_store)


@pytest.fixture
def imported(importer: Importer, tmp_path: Path) -> Importer:
    result = importer.run("mbox", write_mbox(tmp_path / "in.mbox", MAILS), "old")
    assert (result.found, result.imported, result.already) == (5, 5, 0)
    return importer


def rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


def test_import_is_searchable_at_once_and_marked_as_imported(imported, fresh_engine):
    deliveries = rows(
        fresh_engine,
        "SELECT d.uidl, m.sha256, b.host FROM mailarchive.delivery d "
        "JOIN mailarchive.message m ON m.id = d.message_id "
        "JOIN mailarchive.mailbox b ON b.id = d.mailbox_id ORDER BY 1",
    )
    assert sorted(deliveries) == sorted((f"import:{sha(r)}", sha(r), "import") for r in MAILS)
    hits = rows(fresh_engine, "SELECT subject FROM archive.search('transfer', 50)")
    assert sorted(h[0] for h in hits) == [f"transfer {i}" for i in range(5)]
    for raw in MAILS:
        assert imported.store.get(raw_key(sha(raw))) == raw


def test_import_twice_imports_nothing_twice_and_resumes(importer, fresh_engine, tmp_path):
    path = write_mbox(tmp_path / "in.mbox", MAILS)
    seen: list[int] = []

    def interrupt(done: int) -> None:
        seen.append(done)
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        importer.run("mbox", path, "old", interrupt)
    assert rows(fresh_engine, "SELECT count(*) FROM mailarchive.delivery") == [(2,)]
    again = importer.run("mbox", path, "old")
    assert (again.found, again.imported, again.already) == (5, 3, 2)
    third = importer.run("mbox", path, "old")
    assert (third.imported, third.already) == (0, 5)
    assert rows(fresh_engine, "SELECT count(*) FROM mailarchive.delivery") == [(5,)]


def test_maildir_import(importer, fresh_engine, tmp_path):
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    (root / "new" / "1.host").write_bytes(MAILS[0])
    (root / "cur" / "2.host:2,S").write_bytes(MAILS[1])
    (root / "tmp" / "3.host").write_bytes(MAILS[2])  # a delivery in progress
    result = importer.run("maildir", root, "offlineimap")
    assert (result.found, result.imported) == (2, 2)
    got = rows(fresh_engine, "SELECT sha256 FROM mailarchive.message ORDER BY 1")
    assert got == sorted([(sha(MAILS[0]),), (sha(MAILS[1]),)])


def test_a_pop3_run_never_deletes_on_the_strength_of_an_imported_row(
    imported, fresh_engine, local_store
):
    # The server holds the same contents, one of them under the imported row's own id (a
    # server breaking RFC 1939's 70-character limit), and the policy deletes earlier copies:
    # the imported rows are made a month old, so only the import rule keeps them.
    with fresh_engine.begin() as conn:
        conn.execute(
            text("UPDATE mailarchive.delivery SET archived_at = now() - interval '30 days'")
        )
    uidls: list[str | bytes] = [f"import:{sha(MAILS[0])}", "u1"]
    server = MemoryPop3({"old": MemoryMaildrop("secret", [MAILS[0], MAILS[1]], uidls)})
    archiver = Archiver(writer=IndexWriter(fresh_engine), store=local_store, connect=server.connect)
    config = box("old", delete_older_than_days=1)
    archiver.run(config, secret_lookup=lambda _: "secret")
    assert server.commands("DELE") == []
    assert len(server.maildrops["old"].messages) == 2
    imports = rows(
        fresh_engine,
        "SELECT uidl, delete_requested_at, deleted_at FROM mailarchive.delivery "
        "WHERE uidl LIKE 'import:%' ORDER BY uidl",
    )
    # Not relabelled to the server's "u1", never marked for deletion.
    assert sorted(r[0] for r in imports) == sorted(f"import:{sha(r)}" for r in MAILS)
    assert all(r[1] is None and r[2] is None for r in imports)
    assert rows(fresh_engine, "SELECT uidl FROM mailarchive.delivery WHERE uidl = 'u1'") == [
        ("u1",)
    ]


def export_to(engine, store, out: Path, fmt: str = "mbox", **options) -> object:
    return export(
        engine,
        store,
        ExportRequest(query=options.pop("query", ""), out=str(out), format=fmt, **options),
    )


def manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_export_mbox_round_trips_through_the_standard_library(imported, fresh_engine, tmp_path):
    out = tmp_path / "out"
    result = export_to(fresh_engine, imported.store, out)
    assert (result.matched, result.exported, result.skipped) == (5, 5, ())
    box_ = mailbox.mbox(str(out / "messages.mbox"), create=False)
    got = [re.sub(rb"(?m)^>(>*From )", rb"\1", box_.get_bytes(k)) for k in box_.keys()]
    assert got == list(reversed(MAILS))  # newest first
    senders = [box_.get_message(k).get_from().split()[0] for k in box_.keys()]
    assert senders == ["bounce-4@lists.example"] + ["juergen@example.org"] * 4
    rows_ = manifest(out / "manifest.csv")
    assert [r["sha256"] for r in rows_] == [sha(r) for r in reversed(MAILS)]
    assert [int(r["size"]) for r in rows_] == [len(r) for r in reversed(MAILS)]
    assert {r["mailbox"] for r in rows_} == {"old"} and rows_[0]["subject"] == "transfer 4"
    assert rows_[0]["uidl"] == f"import:{sha(MAILS[4])}" and rows_[0]["message_id"]
    assert rows_[0]["from"] == "juergen@example.org" and rows_[0]["date"].startswith("2026-03-05")
    digest = hashlib.sha256((out / "manifest.csv").read_bytes()).hexdigest()
    assert (out / "manifest.csv.sha256").read_text() == f"{digest}  manifest.csv\n"
    assert result.manifest_sha256 == digest


def test_export_query_mailbox_and_dates(imported, fresh_engine, tmp_path):
    assert full_query("x", "a b", date(2026, 3, 2), date(2026, 3, 3)) == (
        'x mailbox:"a b" after:2026-03-02 before:2026-03-04'
    )
    result = export_to(
        fresh_engine,
        imported.store,
        tmp_path / "o",
        "eml-zip",
        query="transfer",
        mailbox="old",
        since=date(2026, 3, 2),
        until=date(2026, 3, 3),
    )
    with zipfile.ZipFile(tmp_path / "o" / "messages.zip") as archive:
        contents = [archive.read(name) for name in archive.namelist()]
    assert contents == [MAILS[2], MAILS[1]] and result.exported == 2


def test_export_maildir_as_a_bag_that_validates(imported, fresh_engine, tmp_path):
    import bagit

    out = tmp_path / "bag"
    export_to(fresh_engine, imported.store, out, "maildir", bagit=True)
    bag = bagit.Bag(str(out))
    bag.validate()
    files = sorted((out / "data" / "maildir" / "new").iterdir())
    assert [f.read_bytes() for f in files] == list(reversed(MAILS))
    assert "data/manifest.csv" in bag.payload_entries()
    (files[0]).write_bytes(b"tampered")
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(out)).validate()


def test_a_damaged_original_stops_the_export_or_is_skipped_and_listed(
    imported, fresh_engine, tmp_path
):
    store = imported.store
    victim = sha(MAILS[2])
    path = store.root / raw_key(victim)
    path.chmod(0o644)
    path.write_bytes(MAILS[2].replace(b"body 2", b"body X"))
    with pytest.raises(TransferError, match=victim):
        export_to(fresh_engine, store, tmp_path / "a")
    result = export_to(fresh_engine, store, tmp_path / "b", skip_damaged=True)
    assert result.skipped == (victim,) and result.exported == 4
    by_sha = {r["sha256"]: r for r in manifest(tmp_path / "b" / "manifest.csv")}
    assert by_sha[victim]["status"] == "skipped: IntegrityError" and by_sha[victim]["file"] == ""
    box_ = mailbox.mbox(str(tmp_path / "b" / "messages.mbox"), create=False)
    assert len(box_) == 4


def test_export_refuses_a_folder_in_use(imported, fresh_engine, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(TransferError, match="not an empty folder"):
        export_to(fresh_engine, imported.store, tmp_path / "busy")
    assert (tmp_path / "busy" / "x").read_text() == "x"


def test_a_malformed_query_writes_nothing(imported, fresh_engine, tmp_path):
    from archive.errors import QueryError

    with pytest.raises(QueryError):
        export_to(fresh_engine, imported.store, tmp_path / "q", query="before:yesterday")
    assert not (tmp_path / "q").exists()
