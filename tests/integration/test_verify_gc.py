"""verify re-hashes the store against the index; gc removes only old, unreferenced objects."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from archive.index import locks
from archive.pipeline.archiver import Archiver
from archive.pipeline.verify import StoreBusy, collect_garbage, verify
from archive.pop3.fake.server import FakeMailbox, FakePop3Server
from archive.store import LocalStore, ObjectState, part_key, put_verified, raw_key
from tests.support.mail import fake_box, make_message

PDF = b"%PDF-1.4 quarterly report"
LATER = datetime.now(UTC) + timedelta(days=30)


@pytest.fixture
def archived(archiver: Archiver, monkeypatch) -> list[bytes]:
    mails = [
        make_message("one"),
        make_message("two", attachments=(("report.pdf", PDF, "application/pdf"),)),
        make_message("three"),
    ]
    with FakePop3Server(
        {"ann": FakeMailbox("secret", mails[:2]), "bob": FakeMailbox("secret", mails[2:])}
    ) as server:
        for user in ("ann", "bob"):
            archiver.run(fake_box(monkeypatch, server, user))
    return mails


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_intact_archive_verifies(archived, fresh_engine: Engine, local_store: LocalStore):
    seen: list[tuple[int, int]] = []
    report = verify(fresh_engine, local_store, progress=lambda d, t: seen.append((d, t)))
    assert report.ok and report.checked == report.intact == 4  # 3 originals + 1 attachment
    assert report.orphans == [] and report.findings == []
    assert seen[-1] == (4, 4)


def test_damaged_and_missing_objects_are_findings(archived, fresh_engine, local_store):
    damaged = _sha(archived[0])
    (local_store.root / raw_key(damaged)).write_bytes(archived[0].replace(b"one", b"eno"))
    (local_store.root / part_key(_sha(PDF))).unlink()
    report = verify(fresh_engine, local_store)
    assert not report.ok
    states = {f.reference.sha256: f.check.state for f in report.findings}
    assert states == {damaged: ObjectState.MISMATCH, _sha(PDF): ObjectState.MISSING}
    mismatch = next(f for f in report.findings if f.check.state is ObjectState.MISMATCH)
    assert "ann UIDL" in mismatch.reference.label and damaged in mismatch.check.detail
    assert report.to_dict()["mismatched"] == 1 and report.to_dict()["missing"] == 1


def test_verify_one_mailbox_and_a_sample(archived, fresh_engine, local_store):
    (local_store.root / raw_key(_sha(archived[0]))).write_bytes(b"rot")
    only_bob = verify(fresh_engine, local_store, mailbox="bob")
    assert only_bob.ok and only_bob.checked == 1
    assert not verify(fresh_engine, local_store, mailbox="ann").ok
    sample = verify(fresh_engine, local_store, sample=2)
    assert sample.sampled and sample.checked == 2


def test_gc_dry_run_then_apply_removes_only_old_orphans(archived, fresh_engine, local_store):
    orphan = b"left behind by a forgotten mailbox"
    put_verified(local_store, raw_key(_sha(orphan)), io.BytesIO(orphan), _sha(orphan), len(orphan))
    assert [o.key for o in verify(fresh_engine, local_store).orphans] == [raw_key(_sha(orphan))]

    young = collect_garbage(fresh_engine, local_store, apply=True)
    assert young.removed == [] and young.kept_young == 1  # inside the grace period

    dry = collect_garbage(fresh_engine, local_store, now=LATER)
    assert dry.would_remove == [raw_key(_sha(orphan))] and dry.removed == []
    assert local_store.exists(raw_key(_sha(orphan)))

    done = collect_garbage(fresh_engine, local_store, apply=True, now=LATER)
    assert done.removed == [raw_key(_sha(orphan))] and done.bytes == len(orphan)
    assert not local_store.exists(raw_key(_sha(orphan)))
    after = verify(fresh_engine, local_store)
    assert after.ok and after.orphans == [] and after.checked == 4


def test_gc_removes_nothing_while_a_writer_holds_the_store(archived, fresh_engine, local_store):
    orphan = b"an object a running archive has stored but not yet recorded"
    put_verified(local_store, raw_key(_sha(orphan)), io.BytesIO(orphan), _sha(orphan), len(orphan))
    with fresh_engine.connect() as writer, locks.store_writer(writer):
        with pytest.raises(StoreBusy):
            collect_garbage(fresh_engine, local_store, apply=True, now=LATER)
    assert local_store.exists(raw_key(_sha(orphan)))
    # Dry runs still report while a writer works.
    assert collect_garbage(fresh_engine, local_store, now=LATER).would_remove == [
        raw_key(_sha(orphan))
    ]


# The commands, as a user runs them: settings from the environment, exit codes, output.


@pytest.fixture
def cli_env(archived, fresh_db_url: str, local_store: LocalStore, monkeypatch):
    monkeypatch.setenv("MAILARCHIVE_DATABASE_URL", fresh_db_url)
    monkeypatch.setenv("MAILARCHIVE_STORE_URL", local_store.root.as_uri())
    return archived


def _cli(*args: str):
    from typer.testing import CliRunner

    from archive.app.cli import app

    return CliRunner().invoke(app, list(args))


def test_cat_prints_only_a_verified_copy(cli_env, local_store: LocalStore):
    original = cli_env[0]
    good = _cli("cat", _sha(original))
    assert good.exit_code == 0 and good.stdout_bytes == original
    (local_store.root / raw_key(_sha(original))).write_bytes(original.replace(b"one", b"eno"))
    bad = _cli("cat", _sha(original))
    assert bad.exit_code == 1
    assert bad.stdout_bytes == b""  # nothing unverified reaches stdout
    assert _sha(original) in bad.stderr and "damaged" in bad.stderr


def test_verify_command_exit_codes_and_json(cli_env, local_store: LocalStore):
    import json

    ok = _cli("verify", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["intact"] == 4
    (local_store.root / raw_key(_sha(cli_env[2]))).unlink()
    bad = _cli("verify")
    assert bad.exit_code == 1
    assert "1 missing" in bad.stdout and _sha(cli_env[2]) in bad.stderr
    assert _cli("verify", "--mailbox", "ann").exit_code == 0  # bob's message is the one gone


def test_gc_command_dry_run_and_apply(cli_env, local_store: LocalStore):
    orphan = b"orphan"
    put_verified(local_store, raw_key(_sha(orphan)), io.BytesIO(orphan), _sha(orphan), len(orphan))
    dry = _cli("gc", "--grace-hours", "0")
    assert dry.exit_code == 0 and "would remove 1" in dry.stdout
    assert local_store.exists(raw_key(_sha(orphan)))
    done = _cli("gc", "--apply", "--grace-hours", "0")
    assert done.exit_code == 0 and "removed 1" in done.stdout
    assert not local_store.exists(raw_key(_sha(orphan)))
    assert _cli("verify").exit_code == 0


def test_reindex_skips_a_damaged_original_and_says_so(cli_env, fresh_engine, local_store):
    from sqlalchemy import text

    damaged = cli_env[0]
    (local_store.root / raw_key(_sha(damaged))).write_bytes(
        b"Subject: forged\r\n\r\nforged words\r\n"
    )
    result = _cli("reindex", "--all")
    assert result.exit_code == 1 and _sha(damaged) in result.stderr
    with fresh_engine.connect() as conn:
        subject = conn.execute(
            text("SELECT subject FROM archive.messages WHERE sha256 = :s"), {"s": _sha(damaged)}
        ).scalar_one()
        forged = conn.execute(text("SELECT count(*) FROM archive.search('forged')")).scalar_one()
    assert subject == "one" and forged == 0  # the index kept what the intact copy gave


def test_gc_waits_for_a_running_archive(archiver: Archiver, fresh_engine, local_store, monkeypatch):
    """A run in progress holds the store: gc --apply removes nothing until it ends, even an
    object the run has stored but not yet recorded."""
    import threading

    paused, release = threading.Event(), threading.Event()

    def progress(result) -> None:
        paused.set()
        release.wait(30)

    mails = [make_message(f"slow {n}") for n in range(3)]
    with FakePop3Server({"cy": FakeMailbox("secret", mails)}) as server:
        box = fake_box(monkeypatch, server, "cy")
        worker = threading.Thread(target=archiver.run, args=(box,), kwargs={"progress": progress})
        worker.start()
        try:
            assert paused.wait(30)
            stored_not_recorded = [
                o.key for o in local_store.scan("raw/") if o.key != raw_key(_sha(mails[0]))
            ]
            with pytest.raises(StoreBusy):
                collect_garbage(fresh_engine, local_store, apply=True, now=LATER)
            assert all(local_store.exists(k) for k in stored_not_recorded)
        finally:
            release.set()
            worker.join()
    assert verify(fresh_engine, local_store).ok
    assert collect_garbage(fresh_engine, local_store, apply=True, now=LATER).removed == []
