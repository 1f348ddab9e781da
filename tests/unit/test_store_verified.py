"""Every read checks the SHA-256: a damaged copy is an error naming the object, never bytes."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from archive.errors import IntegrityError, PermanentError
from archive.store import (
    LocalStore,
    MemoryStore,
    ObjectNotFound,
    ObjectState,
    ObjectStore,
    check_object,
    open_verified,
    put_verified,
    raw_key,
    read_verified,
    spool_verified,
)

ORIGINAL = b"From: a@example.org\r\nSubject: invoice\r\n\r\nPay 100 EUR.\r\n" * 50
SHA = hashlib.sha256(ORIGINAL).hexdigest()
KEY = raw_key(SHA)


def _damage(store: ObjectStore, data: bytes) -> None:
    if isinstance(store, LocalStore):
        (store.root / KEY).write_bytes(data)
    else:
        assert isinstance(store, MemoryStore)
        store.replace_bytes(KEY, data)


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    chosen: ObjectStore = (
        LocalStore(tmp_path / "objects") if request.param == "local" else MemoryStore()
    )
    put_verified(chosen, KEY, io.BytesIO(ORIGINAL), SHA, len(ORIGINAL))
    return chosen


def test_intact_copy_reads_back_whole(store: ObjectStore):
    assert read_verified(store, KEY, SHA) == ORIGINAL
    with spool_verified(store, KEY, SHA) as spool:
        assert spool.read() == ORIGINAL
    with open_verified(store, KEY, SHA) as stream:
        assert b"".join(iter(lambda: stream.read(7), b"")) == ORIGINAL
    assert check_object(store, KEY, SHA).state is ObjectState.OK


@pytest.mark.parametrize(
    "damage",
    [
        ORIGINAL.replace(b"100", b"900"),  # same size, other bytes
        ORIGINAL[:-1],  # truncated
        ORIGINAL + b"\n",  # extended
        b"",  # emptied
    ],
)
def test_damaged_copy_is_an_error_naming_object_and_hashes(store: ObjectStore, damage: bytes):
    _damage(store, damage)
    with pytest.raises(IntegrityError) as caught:
        read_verified(store, KEY, SHA)
    message = str(caught.value)
    assert KEY in message and SHA in message and hashlib.sha256(damage).hexdigest() in message
    assert store.url in message
    assert isinstance(caught.value, PermanentError)
    # A spool is never handed out with unverified bytes in it.
    with pytest.raises(IntegrityError):
        spool_verified(store, KEY, SHA)
    verdict = check_object(store, KEY, SHA)
    assert verdict.state is ObjectState.MISMATCH and not verdict.ok
    assert hashlib.sha256(damage).hexdigest() in verdict.detail


def test_streaming_reader_raises_at_the_end_not_silently(store: ObjectStore):
    _damage(store, ORIGINAL.replace(b"Pay", b"Owe"))
    with open_verified(store, KEY, SHA) as stream, pytest.raises(IntegrityError):
        while stream.read(64):
            pass


def test_missing_object(store: ObjectStore):
    other = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(ObjectNotFound):
        read_verified(store, raw_key(other), other)
    assert check_object(store, raw_key(other), other).state is ObjectState.MISSING


def test_scan_lists_objects_and_delete_removes_them(store: ObjectStore):
    extra = b"orphan"
    extra_sha = hashlib.sha256(extra).hexdigest()
    put_verified(store, raw_key(extra_sha), io.BytesIO(extra), extra_sha, len(extra))
    listed = {item.key: item.size for item in store.scan("raw/")}
    assert listed == {KEY: len(ORIGINAL), raw_key(extra_sha): len(extra)}
    assert list(store.scan("parts/")) == []
    store.delete(raw_key(extra_sha))
    store.delete(raw_key(extra_sha))  # deleting what is gone is no error
    assert [item.key for item in store.scan("raw/")] == [KEY]


def test_local_scan_skips_puts_in_progress(tmp_path: Path):
    local = LocalStore(tmp_path / "objects")
    put_verified(local, KEY, io.BytesIO(ORIGINAL), SHA, len(ORIGINAL))
    (local.root / KEY).with_name(f".{SHA}.eml.abc.tmp").write_bytes(b"half")
    assert [item.key for item in local.scan("")] == [KEY]


def test_without_read_back_a_store_that_checks_nothing_on_arrival_is_read_back_anyway():
    """`read_back=False` trusts only a store's own check of the SHA-256 (S3); a store
    without one is read back all the same, so damage is still caught."""
    store = MemoryStore(corrupt_puts=True)
    with pytest.raises(IntegrityError, match=SHA):
        put_verified(store, KEY, io.BytesIO(ORIGINAL), SHA, len(ORIGINAL), read_back=False)


def test_a_torn_copy_under_the_key_is_rewritten_not_trusted(tmp_path: Path):
    """A crash before a batch's barrier can leave the name with part of the bytes."""
    local = LocalStore(tmp_path / "objects")
    (local.root / KEY).parent.mkdir(parents=True)
    (local.root / KEY).write_bytes(ORIGINAL[:100])
    assert put_verified(local, KEY, io.BytesIO(ORIGINAL), SHA, len(ORIGINAL), read_back=False)
    assert read_verified(local, KEY, SHA) == ORIGINAL
