"""Group commit and group sync: several messages per transaction, one directory sync per
batch, and neither weakens what a DELE depends on."""

from __future__ import annotations

import errno
import io
import os
from dataclasses import replace
from pathlib import Path

import pytest

from archive.errors import StoreError
from archive.index.memory import MemoryIndex
from archive.mime import parse_message
from archive.pipeline.batch import GroupCommit
from archive.pipeline.result import MailboxFailed
from archive.pop3.fake.memory import MemoryFaults
from archive.store import LocalStore, durability, put_verified, raw_key, read_verified
from archive.store.group import GroupSync
from tests.support.memory import Rig, box, sha
from tests.support.streams import files_under


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


class _Syncs:
    """Records the real fsync/syncfs calls of archive.store.durability (and makes them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: list[Path] = []
        self.dirs: list[Path] = []
        self.filesystems: list[Path] = []
        real_fsync, real_syncfs = durability.fsync_path, durability.syncfs

        def fsync_path(path: str | Path, *, directory: bool = False) -> None:
            (self.dirs if directory else self.files).append(Path(path))
            real_fsync(path, directory=directory)

        def syncfs(directory: str | Path) -> None:
            self.filesystems.append(Path(directory))
            real_syncfs(directory)

        monkeypatch.setattr(durability, "fsync_path", fsync_path)
        monkeypatch.setattr(durability, "syncfs", syncfs)

    def count(self) -> int:
        return len(self.files) + len(self.dirs) + len(self.filesystems)


def test_group_sync_without_syncfs_syncs_each_file_then_each_directory_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    syncs = _Syncs(monkeypatch)
    local = LocalStore(tmp_path / "objects", use_syncfs=False)
    store = GroupSync(local)
    raws = [mail(f"s{n}") for n in range(3)]
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    for raw in raws:
        assert put_verified(store, raw_key(sha(raw)), io.BytesIO(raw), sha(raw), len(raw))
    # The bytes are proven by the read-back; bytes and names wait for sync().
    assert syncs.count() == 0 and fsyncs == []
    store.sync()
    paths = [local.root / raw_key(sha(raw)) for raw in raws]
    assert syncs.files == paths
    assert len(syncs.dirs) == len(set(syncs.dirs))
    assert {path.parent for path in paths} | {local.root / "raw", local.root} <= set(syncs.dirs)
    assert all(local.get(raw_key(sha(raw))) == raw for raw in raws)
    syncs.files.clear()
    syncs.dirs.clear()
    # Found intact and not rewritten: synced with the batch all the same, file and name; its
    # directories are known durable now, so only its own is synced again.
    assert not put_verified(store, raw_key(sha(raws[0])), io.BytesIO(raws[0]), sha(raws[0]), 5)
    store.sync()
    assert syncs.files == [paths[0]] and syncs.dirs == [paths[0].parent]


@pytest.mark.skipif(not durability.syncfs_available(), reason="no syncfs(2) here")
def test_group_sync_with_syncfs_makes_a_batch_durable_with_one_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    syncs = _Syncs(monkeypatch)
    local = LocalStore(tmp_path / "objects")
    assert local.use_syncfs
    store = GroupSync(local)
    raws = [mail(f"f{n}") for n in range(5)]
    for raw in raws:
        put_verified(store, raw_key(sha(raw)), io.BytesIO(raw), sha(raw), len(raw))
    assert syncs.count() == 0
    store.sync()
    assert syncs.count() == 1 and syncs.filesystems[0].is_relative_to(local.root)
    store.sync()  # nothing pending: no barrier
    assert syncs.count() == 1


def test_a_failed_barrier_is_a_store_error_and_forgets_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    local = LocalStore(tmp_path / "objects", use_syncfs=False)
    store = GroupSync(local)
    raw = mail("eio")
    put_verified(store, raw_key(sha(raw)), io.BytesIO(raw), sha(raw), len(raw))

    def failing(path: Path, *, directory: bool = False) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(durability, "fsync_path", failing)
    with pytest.raises(StoreError, match="cannot make 1 objects durable: Input/output error"):
        store.sync()
    monkeypatch.undo()
    store.sync()  # the batch is rolled back by its caller, not synced again


def test_a_torn_object_left_by_a_crash_before_the_barrier_is_rewritten(tmp_path: Path):
    """A machine crash between a rename and the batch's barrier can leave the final name
    holding nothing, or part of the bytes, or other bytes of the same length. Nothing
    committed refers to it; the next put of the same bytes must not trust it."""
    raw = mail("torn") * 50
    key = raw_key(sha(raw))
    for damage in [b"", raw[: len(raw) // 2], b"\0" * len(raw)]:
        local = LocalStore(tmp_path / f"objects-{len(damage)}", use_syncfs=False)
        store = GroupSync(local)
        put_verified(store, key, io.BytesIO(raw), sha(raw), len(raw))
        (local.root / key).write_bytes(damage)  # what the disk held after the crash
        # A new run (a new process: nothing known) puts the same message again.
        store = GroupSync(LocalStore(local.root, use_syncfs=False))
        assert put_verified(store, key, io.BytesIO(raw), sha(raw), len(raw)) is True
        store.sync()
        assert (local.root / key).read_bytes() == raw
        assert read_verified(local, key, sha(raw)) == raw
        assert files_under(local.root) == [key]


def test_a_plain_local_put_still_syncs_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    syncs = _Syncs(monkeypatch)
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    local = LocalStore(tmp_path / "objects")
    raw = mail("plain")
    local.put(raw_key(sha(raw)), io.BytesIO(raw), len(raw))
    path = local.root / raw_key(sha(raw))
    # The file's bytes before its rename, then every directory its name depends on.
    assert len(fsyncs) == 1 + len(syncs.dirs) and syncs.filesystems == []
    assert syncs.dirs == [path.parent, path.parent.parent, local.root / "raw", local.root, tmp_path]
    syncs.dirs.clear()
    # Its fan-out directories are known durable now: a neighbour syncs its own only.
    neighbour = mail("plain neighbour")
    local.put(
        f"{path.parent.relative_to(local.root).as_posix()}/x.eml",
        io.BytesIO(neighbour),
        len(neighbour),
    )
    assert syncs.dirs == [path.parent]


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
