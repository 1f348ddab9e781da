"""Verified reads: every byte read back from a store is hashed, and a mismatch is an error.

Objects are content-addressed (`raw_key`, `part_key`), so the hash a reader expects is known
before it reads. `open_verified` hashes while the caller streams; at the end of the object it
raises `IntegrityError` naming the object, the store and both hashes if the bytes are not the
ones archived. `read_verified` spools the object first, so a caller that forwards bytes
(`mailarchive cat`, an export) hands on nothing unverified.
"""

from __future__ import annotations

import enum
import hashlib
import io
import tempfile
from dataclasses import dataclass
from typing import IO, BinaryIO

from archive.errors import ArchiveError, IntegrityError, ObjectNotFound, StoreError
from archive.store.base import CHUNK, ObjectStore

SPOOL_IN_MEMORY = 8 << 20


class _Verifying(io.RawIOBase):
    """Passes reads through, hashing them; checks hash and size when the source is exhausted."""

    def __init__(self, inner: BinaryIO, store: ObjectStore, key: str, sha256: str) -> None:
        self._inner = inner
        self._store_url = store.url
        self._key = key
        self._expected = sha256
        self._digest = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        if not data:
            self._check()
            return 0
        self._digest.update(data)
        view[: len(data)] = data
        return len(data)

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = self._digest.hexdigest()
        if actual != self._expected:
            raise IntegrityError(
                f"{self._store_url}: {self._key} hashes to {actual}, expected {self._expected}: "
                "the stored copy is damaged"
            )

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def open_verified(store: ObjectStore, key: str, sha256: str) -> BinaryIO:
    """A buffered stream of the object at `key` whose last read raises `IntegrityError` if the
    bytes do not hash to `sha256` (lower-case hex). Raises `ObjectNotFound` if there is no
    object. Consumers must read to the end (EOF) for the check to run."""
    raw = _Verifying(store.open(key), store, key, sha256)
    return io.BufferedReader(raw, buffer_size=1 << 16)


def spool_verified(store: ObjectStore, key: str, sha256: str) -> IO[bytes]:
    """The whole object, verified, in a spool (memory up to 8 MiB, else a temp file) at
    position 0. Nothing is returned unless all bytes hashed to `sha256`."""
    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
    try:
        with open_verified(store, key, sha256) as stream:
            while block := stream.read(CHUNK):
                spool.write(block)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool


def read_verified(store: ObjectStore, key: str, sha256: str) -> bytes:
    """The object's bytes, only if they hash to `sha256`; else `IntegrityError`."""
    with open_verified(store, key, sha256) as stream:
        return stream.read()


class ObjectState(enum.StrEnum):
    OK = "ok"
    MISSING = "missing"
    MISMATCH = "mismatch"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class ObjectCheck:
    """The verdict on one stored object: `state`, and for a mismatch or an unreadable object,
    what was found (`detail`)."""

    key: str
    sha256: str
    state: ObjectState
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state is ObjectState.OK


def check_object(store: ObjectStore, key: str, sha256: str) -> ObjectCheck:
    """Read the object back in full and say whether it is intact. Never raises for a damaged,
    missing or unreadable object: that is the verdict."""
    try:
        with open_verified(store, key, sha256) as stream:
            while stream.read(CHUNK):
                pass
    except ObjectNotFound:
        return ObjectCheck(key, sha256, ObjectState.MISSING)
    except IntegrityError as exc:
        return ObjectCheck(key, sha256, ObjectState.MISMATCH, str(exc))
    except (StoreError, ArchiveError, OSError) as exc:
        return ObjectCheck(key, sha256, ObjectState.UNREADABLE, f"{type(exc).__name__}: {exc}")
    return ObjectCheck(key, sha256, ObjectState.OK)
