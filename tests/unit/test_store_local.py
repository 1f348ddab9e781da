from __future__ import annotations

import io
import os
import stat
import threading
import tracemalloc
from pathlib import Path

import pytest

import archive.store
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
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
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
