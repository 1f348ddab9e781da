from __future__ import annotations

import io
import itertools
import os
import shutil
import stat
import threading
import tracemalloc
from pathlib import Path
from typing import BinaryIO

import pytest

import archive.store
import archive.store.local
from archive.errors import ConfigError, IntegrityError, StoreError, is_transient
from archive.store import (
    LocalStore,
    MemoryStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    open_store,
    part_key,
    put_verified,
    raw_key,
    sha256_of_stream,
)
from archive.store.group import GroupSync
from tests.support.streams import (
    FailingStream,
    GeneratedStream,
    MiB,
    UnreadableStream,
    files_under,
    sha,
)


@pytest.fixture
def empty_local_store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


def test_public_api_is_pinned():
    assert sorted(archive.store.__all__) == [
        "LocalStore",
        "MemoryStore",
        "ObjectCheck",
        "ObjectLock",
        "ObjectNotFound",
        "ObjectState",
        "ObjectStore",
        "S3Store",
        "StoredObject",
        "check_key",
        "check_object",
        "open_store",
        "open_verified",
        "part_key",
        "put_verified",
        "raw_key",
        "read_verified",
        "sha256_of_stream",
        "spool_verified",
    ]


# Keys


def test_keys_derive_only_from_the_hash():
    h = sha(b"hello")
    assert raw_key(h) == f"raw/{h[:2]}/{h[2:4]}/{h}.eml"
    assert part_key(h) == f"parts/{h[:2]}/{h[2:4]}/{h}"


@pytest.mark.parametrize(
    "bad",
    [
        "../etc/passwd",
        "../" + "a" * 61,
        sha(b"x").upper(),
        "a" * 63,
        "a" * 65,
        sha(b"x") + "\n",
        "g" * 64,
        "",
    ],
)
@pytest.mark.parametrize("key_of", [raw_key, part_key])
def test_keys_reject_anything_but_lower_case_sha256(key_of, bad):
    with pytest.raises(ValueError):
        key_of(bad)


def test_sha256_of_stream_gives_hash_and_size():
    data = b"x" * (3 * MiB + 5)
    assert sha256_of_stream(io.BytesIO(data), chunk=MiB) == (sha(data), len(data))


# LocalStore


def test_local_roundtrip(empty_local_store: LocalStore):
    store = empty_local_store
    data = b"From: a@example.com\r\n\r\nhello\r\n"
    key = raw_key(sha(data))
    assert not store.exists(key)

    store.put(key, io.BytesIO(data), len(data))

    assert store.exists(key)
    assert store.get(key) == data
    with store.open(key) as stream:
        assert stream.read() == data
    path = store.root / key
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Nothing else in the folder: the temp file was renamed, not copied.
    assert files_under(store.root) == [key]
    assert store.url == store.root.as_uri()


def test_local_put_failing_midstream_leaves_no_object(empty_local_store: LocalStore):
    store = empty_local_store
    key = raw_key(sha(b"never complete"))
    with pytest.raises(StoreError) as caught:
        store.put(key, FailingStream(b"x" * (3 * MiB)), 4 * MiB)
    assert key in str(caught.value)
    assert is_transient(caught.value)
    assert not store.exists(key)
    assert files_under(store.root) == []


def test_local_failed_overwrite_keeps_the_previous_object(empty_local_store: LocalStore):
    store = empty_local_store
    data = b"the good copy"
    key = raw_key(sha(data))
    store.put(key, io.BytesIO(data), len(data))

    with pytest.raises(StoreError):
        store.put(key, FailingStream(b"half"), len(data))

    assert store.get(key) == data
    assert files_under(store.root) == [key]


def test_local_short_source_is_not_published(empty_local_store: LocalStore):
    store = empty_local_store
    key = raw_key(sha(b"truncated"))
    with pytest.raises(StoreError, match="expected 100"):
        store.put(key, io.BytesIO(b"only 14 bytes!"), 100)
    assert files_under(store.root) == []


def test_local_refuses_keys_outside_its_root(tmp_path: Path):
    store = LocalStore(tmp_path / "objects")
    for key in ["../escaped", "/abs", "a//b", "a/./b", ".hidden"]:
        with pytest.raises(ValueError):
            store.put(key, io.BytesIO(b"x"), 1)
    assert files_under(tmp_path) == []


def test_local_open_missing_is_object_not_found(empty_local_store: LocalStore):
    key = raw_key(sha(b"absent"))
    with pytest.raises(ObjectNotFound) as caught:
        empty_local_store.open(key)
    assert isinstance(caught.value, KeyError)
    assert not is_transient(caught.value)
    assert key in str(caught.value)
    with pytest.raises(KeyError):
        empty_local_store.get(key)


def test_put_verified_writes_once_then_skips(empty_local_store: LocalStore):
    store = empty_local_store
    data = b"archived once"
    key = raw_key(sha(data))

    assert put_verified(store, key, io.BytesIO(data), sha(data), len(data)) is True
    inode = (store.root / key).stat().st_ino

    assert put_verified(store, key, UnreadableStream(), sha(data), len(data)) is False
    assert (store.root / key).stat().st_ino == inode
    assert store.get(key) == data


def test_put_verified_rewrites_a_corrupt_copy(empty_local_store: LocalStore):
    store = empty_local_store
    data = b"precious mail"
    key = raw_key(sha(data))
    store.put(key, io.BytesIO(data), len(data))
    (store.root / key).write_bytes(b"bit rot")

    assert put_verified(store, key, io.BytesIO(data), sha(data), len(data)) is True

    assert store.get(key) == data
    assert files_under(store.root) == [key]


def test_put_verified_rejects_a_source_that_does_not_match_its_hash(
    empty_local_store: LocalStore,
):
    claimed = sha(b"what the server said")
    key = raw_key(claimed)
    with pytest.raises(IntegrityError) as caught:
        put_verified(empty_local_store, key, io.BytesIO(b"something else"), claimed, 14)
    message = str(caught.value)
    assert key in message and claimed in message and sha(b"something else") in message
    assert files_under(empty_local_store.root) == []  # refused on arrival: nothing named


def test_local_large_stream_is_copied_in_chunks(empty_local_store: LocalStore):
    size = 50 * MiB
    expected, expected_size = sha256_of_stream(GeneratedStream(size))
    key = raw_key(expected)

    tracemalloc.start()
    try:
        written = put_verified(empty_local_store, key, GeneratedStream(size), expected, size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert written is True
    assert expected_size == size
    assert (empty_local_store.root / key).stat().st_size == size
    # Copy and read-back hold a few 1 MiB chunks at a time, never the 50 MiB.
    assert peak < 8 * MiB


def test_local_concurrent_puts_of_one_key(empty_local_store: LocalStore):
    data = os.urandom(256 * 1024)
    key = raw_key(sha(data))
    errors: list[BaseException] = []

    def put() -> None:
        try:
            empty_local_store.put(key, io.BytesIO(data), len(data))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert empty_local_store.get(key) == data
    assert files_under(empty_local_store.root) == [key]


# LocalStore: the check on arrival


class _RottingStore(LocalStore):
    """A LocalStore over a disk that returns other bytes than it was given (bit rot after the
    write), and that counts the opens of each key."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.opens: list[str] = []

    def open(self, key: str) -> BinaryIO:
        self.opens.append(key)
        stream = super().open(key)
        with stream:
            data = stream.read()
        return io.BytesIO(data[:-1] + bytes([data[-1] ^ 1]) if data else data)


@pytest.mark.parametrize("grouped", [False, True], ids=["local", "group_sync"])
def test_local_put_checked_refuses_bytes_that_do_not_hash_to_the_sha256(
    empty_local_store: LocalStore, grouped: bool
):
    store: LocalStore | GroupSync = GroupSync(empty_local_store) if grouped else empty_local_store
    data = b"Subject: as received\r\n\r\nbody\r\n"
    claimed = sha(data.replace(b"body", b"BODY"))
    key = raw_key(claimed)

    with pytest.raises(IntegrityError) as refused:
        store.put_checked(key, io.BytesIO(data), len(data), claimed)

    message = str(refused.value)
    assert key in message and claimed in message and sha(data) in message
    assert not is_transient(refused.value)
    # Nothing named, and no temp file left behind.
    assert files_under(empty_local_store.root) == []
    assert store.put_checked(raw_key(sha(data)), io.BytesIO(data), len(data), sha(data)) is True
    assert empty_local_store.get(raw_key(sha(data))) == data


def test_a_refused_checked_put_keeps_the_previous_object(empty_local_store: LocalStore):
    data = b"the good copy"
    key = raw_key(sha(data))
    empty_local_store.put(key, io.BytesIO(data), len(data))

    with pytest.raises(IntegrityError):
        empty_local_store.put_checked(key, io.BytesIO(b"other bytes!!"), len(data), sha(data))

    assert empty_local_store.get(key) == data
    assert files_under(empty_local_store.root) == [key]


@pytest.mark.parametrize("grouped", [False, True], ids=["local", "group_sync"])
def test_put_verified_without_read_back_refuses_a_mismatch_and_names_nothing(
    empty_local_store: LocalStore, grouped: bool
):
    store: ObjectStore = GroupSync(empty_local_store) if grouped else empty_local_store
    claimed = sha(b"what the parser said")
    key = part_key(claimed)
    with pytest.raises(IntegrityError, match=sha(b"something else")):
        put_verified(store, key, io.BytesIO(b"something else"), claimed, 14, read_back=False)
    assert files_under(empty_local_store.root) == []


@pytest.mark.parametrize("grouped", [False, True], ids=["local", "group_sync"])
def test_without_read_back_a_local_put_is_trusted_with_it_the_object_is_read_again(
    tmp_path: Path, grouped: bool
):
    """The check on arrival stands in for the read-back only where read_back=False: with
    read_back=True (a DELE depends on it) the object is read back from the store, and a
    disk that returns other bytes than it was given is caught."""
    local = _RottingStore(tmp_path / "objects")
    store: ObjectStore = GroupSync(local) if grouped else local
    kept = b"Subject: kept on the server\r\n\r\nno DELE follows\r\n"
    key = raw_key(sha(kept))

    assert put_verified(store, key, io.BytesIO(kept), sha(kept), len(kept), read_back=False)
    assert local.opens == [key]  # the look for an existing copy; no read-back
    assert (local.root / key).read_bytes() == kept

    deleted = b"Subject: a DELE follows\r\n\r\nread back first\r\n"
    key = raw_key(sha(deleted))
    local.opens.clear()
    with pytest.raises(IntegrityError) as caught:
        put_verified(store, key, io.BytesIO(deleted), sha(deleted), len(deleted))
    assert local.opens == [key, key]  # looked for, then read back
    assert "reads back" in str(caught.value) and sha(deleted) in str(caught.value)


def test_a_stale_temp_file_of_a_dead_process_is_left_alone(
    empty_local_store: LocalStore, monkeypatch: pytest.MonkeyPatch
):
    """Temp names are the pid and a counter: a file left under the next name by a killed
    process that had this pid must be skipped (O_EXCL), not written into and renamed."""
    store = empty_local_store
    data = b"Subject: new\r\n\r\nbody\r\n"
    key = raw_key(sha(data))
    path = store.root / key
    path.parent.mkdir(parents=True)
    stale = [path.parent / f".{path.name}.{os.getpid()}.{n}.tmp" for n in range(2)]
    for leftover in stale:
        leftover.write_bytes(b"left by a killed run")
    monkeypatch.setattr(archive.store.local, "_NAMES", itertools.count())

    assert put_verified(store, key, io.BytesIO(data), sha(data), len(data)) is True

    assert path.read_bytes() == data
    assert [leftover.read_bytes() for leftover in stale] == [b"left by a killed run"] * 2
    assert [found.key for found in store.scan("raw/")] == [key]  # temp files are hidden


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
@pytest.mark.parametrize("synced", [True, False], ids=["put_checked", "put_unsynced"])
def test_objects_are_0600_and_new_folders_0700_whatever_the_umask(
    tmp_path: Path, umask: int, synced: bool
):
    # The store folder itself does not exist yet: the put makes it and its fan-out folders.
    store = LocalStore(tmp_path / "objects", use_syncfs=False)
    data = b"other people's mail"
    key = raw_key(sha(data))
    previous = os.umask(umask)
    try:
        if synced:
            store.put_checked(key, io.BytesIO(data), len(data), sha(data))
        else:
            store.make_durable([store.put_unsynced(key, io.BytesIO(data), len(data))])
    finally:
        os.umask(previous)
    path = store.root / key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    made = [store.root / parent for parent in Path(key).parents]
    assert len(made) == 4  # objects/ itself, raw/, raw/ab/, raw/ab/cd/
    assert [oct(stat.S_IMODE(folder.stat().st_mode)) for folder in made] == [oct(0o700)] * 4


def test_an_object_written_under_a_umask_that_takes_the_owners_bits_off_is_still_0600(
    empty_local_store: LocalStore,
):
    data = b"written under umask 0o277"
    key = raw_key(sha(data))
    # Its folders first, under the usual umask (0o277 would make them 0500).
    empty_local_store.put(key, io.BytesIO(data), len(data))
    (empty_local_store.root / key).unlink()
    previous = os.umask(0o277)
    try:
        empty_local_store.put(key, io.BytesIO(data), len(data))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((empty_local_store.root / key).stat().st_mode) == 0o600


def test_fan_out_directories_removed_behind_the_stores_back_are_made_again(tmp_path: Path):
    local = LocalStore(tmp_path / "objects", use_syncfs=False)
    first = b"first"
    local.put(raw_key(sha(first)), io.BytesIO(first), len(first))
    shutil.rmtree(local.root / "raw")

    second = b"second"
    key = raw_key(sha(second))
    written = local.put_unsynced(key, io.BytesIO(second), len(second), sha(second))

    assert local.get(key) == second
    # What it knew to be durable is gone: every directory made again waits for the barrier.
    fan_out = local.root / key
    expected = [str(fan_out.parent), str(fan_out.parent.parent), str(local.root / "raw")]
    assert list(written.new_dirs[:3]) == expected
    local.make_durable([written])
    assert local.put_unsynced(key, io.BytesIO(second), len(second)).new_dirs == ()


# open_store


def test_open_store_file_urls(tmp_path: Path):
    folder = tmp_path / "with space"
    store = open_store(folder.as_uri())
    assert isinstance(store, LocalStore)
    assert store.root == folder

    plain = open_store(str(folder))
    assert isinstance(plain, LocalStore) and plain.root == folder

    localhost = open_store(f"file://localhost{folder}")
    assert isinstance(localhost, LocalStore) and localhost.root == folder


def test_open_store_memory():
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    assert isinstance(store, ObjectStore)


def test_open_store_s3_urls(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Credentials in the environment: without them botocore asks the EC2 metadata endpoint.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    bare = open_store("s3://bucket")
    assert isinstance(bare, S3Store)
    assert (bare.bucket, bare.prefix) == ("bucket", "")
    nested = open_store("s3://bucket/mail/archive/")
    assert isinstance(nested, S3Store)
    assert (nested.bucket, nested.prefix) == ("bucket", "mail/archive")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://x", "'ftp://'"),
        ("https://user:hunter2@example.com/x", "'https://'"),
        ("relative/objects", "relative path"),
        ("file://otherhost/x", "file:///absolute/path"),
        ("s3://", "s3://bucket"),
        ("s3://AKIA:hunter2@bucket", "AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_open_store_rejects_other_urls(url: str, says: str):
    with pytest.raises(ConfigError) as caught:
        open_store(url)
    assert says in str(caught.value)
    assert "hunter2" not in str(caught.value)


# MemoryStore


def test_memory_store_fail_puts_can_be_flipped():
    store = MemoryStore(fail_puts=True)
    data = b"mail"
    key = raw_key(sha(data))
    with pytest.raises(StoreError) as caught:
        put_verified(store, key, io.BytesIO(data), sha(data), len(data))
    assert is_transient(caught.value)
    assert key in str(caught.value)
    assert store.keys() == []

    store.fail_puts = False
    assert put_verified(store, key, io.BytesIO(data), sha(data), len(data)) is True
    assert store.keys() == [key]


def test_memory_store_corrupt_puts_fail_verification():
    store = MemoryStore(corrupt_puts=True)
    data = b"mail"
    key = raw_key(sha(data))
    with pytest.raises(IntegrityError) as caught:
        put_verified(store, key, io.BytesIO(data), sha(data), len(data))
    assert not is_transient(caught.value)
    assert key in str(caught.value) and sha(data) in str(caught.value)
    assert sha(store.get(key)) in str(caught.value)

    store.corrupt_puts = False
    assert put_verified(store, key, io.BytesIO(data), sha(data), len(data)) is True
    assert store.get(key) == data


def test_memory_store_missing_key():
    with pytest.raises(ObjectNotFound):
        MemoryStore().open(raw_key(sha(b"none")))
