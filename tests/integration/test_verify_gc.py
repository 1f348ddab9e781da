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
