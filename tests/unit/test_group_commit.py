"""Group commit and group sync: several messages per transaction, one directory sync per
batch, and neither weakens what a DELE depends on."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

import archive.store.local
from archive.index.memory import MemoryIndex
from archive.mime import parse_message
from archive.pipeline.batch import GroupCommit
from archive.pipeline.result import MailboxFailed
from archive.pop3.fake.memory import MemoryFaults
from archive.store import LocalStore, put_verified, raw_key
from archive.store.group import GroupSync
from tests.support.memory import Rig, box, sha


def mail(subject: str) -> bytes:
    return f"From: a@example.org\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n".encode()


def _record(index, n: int) -> None:  # type: ignore[no-untyped-def]
    raw = mail(f"m{n}")
    index.record((f"u{n}".encode(), 0), sha(raw), len(raw), parse_message(raw))


def test_a_failed_record_rolls_the_whole_batch_back_and_undoes_its_counts():
    memory = MemoryIndex()
    undone: list[int] = []
    with memory.mailbox("b", "h", "u") as index:
        with pytest.raises(RuntimeError), GroupCommit(index, 10, 60.0) as group:
            for n in range(3):
                with group.recording():
                    _record(index, n)
                group.undo(lambda n=n: undone.append(n))
                group.tick()
            with group.recording():
                raise RuntimeError("the index failed mid-record")
    assert memory.ledger_of("b") == [] and undone == [2, 1, 0]


def test_a_failure_outside_a_record_commits_what_was_recorded():
    memory = MemoryIndex()
    synced: list[int] = []
    with memory.mailbox("b", "h", "u") as index:
        with (
            pytest.raises(ConnectionError),
            GroupCommit(index, 10, 60.0, before_commit=lambda: synced.append(1)) as group,
        ):
            for n in range(2):
                with group.recording():
                    _record(index, n)
                group.tick()
            raise ConnectionError("server closed the connection during RETR 3")
    assert len(memory.ledger_of("b")) == 2 and synced == [1]


def test_a_batch_commits_after_max_messages_syncing_first():
    memory = MemoryIndex()
    events: list[str] = []
    with memory.mailbox("b", "h", "u") as index:
        with GroupCommit(index, 2, 60.0, before_commit=lambda: events.append("sync")) as group:
            for n in range(5):
                with group.recording():
                    _record(index, n)
                events.append(f"m{n}")
                group.tick()
    assert events == ["m0", "m1", "sync", "m2", "m3", "sync", "m4", "sync"]


def test_deletes_follow_a_run_in_batches_and_the_stored_originals():
    rig = Rig()
    raws = [mail(f"d{n}") for n in range(7)]
    rig.maildrop("del", list(raws))
    rig.archiver = replace(rig.archiver, batch_messages=3)
    result = rig.run(box("del", delete_after_archive=True))
    assert (result.archived, result.deleted) == (7, 7)
    assert all(rig.store.get(raw_key(sha(raw))) == raw for raw in raws)


def test_a_dropped_connection_keeps_the_batch_and_deletes_nothing():
    rig = Rig()
    rig.maildrop("drop", [mail(f"x{n}") for n in range(4)])
    rig.server.faults = MemoryFaults(drop_after_retrieved=2)
    with pytest.raises(MailboxFailed) as failure:
        rig.run(box("drop", delete_after_archive=True))
    result = failure.value.result
    assert (result.archived, result.deleted) == (2, 0) and len(rig.ledger("drop")) == 2
    assert rig.server.commands("DELE") == []


def test_group_sync_defers_directory_syncs_to_one_per_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    synced: list[Path] = []
    monkeypatch.setattr(archive.store.local, "_fsync_dir", synced.append)
    local = LocalStore(tmp_path / "objects")
    store = GroupSync(local)
    raws = [mail(f"s{n}") for n in range(3)]
    for raw in raws:
        assert put_verified(store, raw_key(sha(raw)), io.BytesIO(raw), sha(raw), len(raw))
    assert synced == []  # the bytes are proven by the read-back; names wait for sync()
    store.sync()
    assert len(synced) == len(set(synced)) and local.root / "raw" in synced
    for raw in raws:
        assert (local.root / raw_key(sha(raw))).parent in synced
        assert local.get(raw_key(sha(raw))) == raw
    synced.clear()
    # Found intact and not rewritten: its names are synced with the batch all the same.
    assert not put_verified(store, raw_key(sha(raws[0])), io.BytesIO(raws[0]), sha(raws[0]), 5)
    store.sync()
    assert (local.root / raw_key(sha(raws[0]))).parent in synced and local.root in synced


def test_a_plain_local_put_still_syncs_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    synced: list[Path] = []
    monkeypatch.setattr(archive.store.local, "_fsync_dir", synced.append)
    local = LocalStore(tmp_path / "objects")
    raw = mail("plain")
    local.put(raw_key(sha(raw)), io.BytesIO(raw), len(raw))
    assert (local.root / raw_key(sha(raw))).parent in synced and local.root / "raw" in synced


def test_when_the_commit_after_a_failure_fails_too_the_first_failure_is_raised():
    memory = MemoryIndex()

    def broken_sync() -> None:
        raise OSError("disk gone")

    undone: list[int] = []
    with memory.mailbox("b", "h", "u") as index:
        with (
            pytest.raises(ConnectionError),
            GroupCommit(index, 10, 60.0, before_commit=broken_sync) as group,
        ):
            with group.recording():
                _record(index, 0)
            group.undo(lambda: undone.append(0))
            group.tick()
            raise ConnectionError("server closed the connection during RETR 2")
    assert memory.ledger_of("b") == [] and undone == [0]
