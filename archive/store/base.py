"""The object-store interface and the invariants every store shares.

Objects are content-addressed: a key is derived from nothing but the SHA-256 of the bytes it
holds, so writing the same key twice writes the same bytes, and an overwrite is harmless.
`put_verified` is the one gate the archiver passes before it may delete mail from a server.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, BinaryIO, Protocol, runtime_checkable

from archive.errors import IntegrityError, StoreError

log = logging.getLogger(__name__)

CHUNK = 1 << 20

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# One path segment: no leading dot, so "." and ".." are impossible and the dot-prefixed temp
# files of LocalStore can never collide with a key.
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object as a listing shows it: `size` in bytes, `modified` in UTC."""

    key: str
    size: int
    modified: datetime


@runtime_checkable
class ObjectStore(Protocol):
    """Where archived bytes live. Implementations: LocalStore, S3Store, MemoryStore."""

    url: str
    """Where it stores, for messages and logs; never contains credentials."""

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        """Stream `src` (seekable, at position 0, `size` bytes) into the object at `key`.

        Atomic: a reader sees the old object, or none, or the whole new one.
        """
        ...

    def exists(self, key: str) -> bool: ...

    def open(self, key: str) -> BinaryIO:
        """A stream of the object's bytes; raises ObjectNotFound if there is none."""
        ...

    def get(self, key: str) -> bytes:
        """The whole object; raises ObjectNotFound if there is none. Unverified: callers that
        know the hash use `archive.store.verified`."""
        ...

    def scan(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `prefix` (e.g. "raw/"), in no set order."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; no error if there is none. Only `gc` deletes."""
        ...


def check_key(key: str) -> str:
    """Refuse keys that could escape a store's root ("../x", "/x", "a//b") or hide as temp files."""
    if not key or not all(_SEGMENT.fullmatch(segment) for segment in key.split("/")):
        raise ValueError(f"invalid object key {key!r}")
    return key


def _check_sha256(sha256_hex: str) -> str:
    if not isinstance(sha256_hex, str) or not _SHA256_HEX.fullmatch(sha256_hex):
        raise ValueError(f"not a lower-case SHA-256 hex digest: {sha256_hex!r}")
    return sha256_hex


def raw_key(sha256_hex: str) -> str:
    """Key of an original message: only the hash decides it, so one message is stored once."""
    h = _check_sha256(sha256_hex)
    # Two fan-out levels keep any one directory (or S3 listing page) small.
    return f"raw/{h[:2]}/{h[2:4]}/{h}.eml"


def part_key(sha256_hex: str) -> str:
    """Key of a decoded attachment, shared by every message that carries the same bytes."""
    h = _check_sha256(sha256_hex)
    return f"parts/{h[:2]}/{h[2:4]}/{h}"


def sha256_of_stream(f: IO[bytes], chunk: int = CHUNK) -> tuple[str, int]:
    """(hex digest, size) of the rest of `f`, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    size = 0
    while block := f.read(chunk):
        digest.update(block)
        size += len(block)
    return digest.hexdigest(), size


def _stored_sha256(store: ObjectStore, key: str) -> str | None:
    """Hash of what the store holds under `key`, or None if it holds nothing."""
    try:
        with store.open(key) as stream:
            return sha256_of_stream(stream)[0]
    except KeyError:
        return None


@runtime_checkable
class CheckedPut(Protocol):
    """A store that can have the bytes of a write checked against their SHA-256 on arrival
    (S3Store: the x-amz-checksum-sha256 header; LocalStore and a `GroupSync` over it: the
    bytes hashed as they are copied into the temp file, named only if they match)."""

    def put_checked(self, key: str, src: IO[bytes], size: int, sha256: str) -> bool:
        """`put`, sending `sha256` (lower-case hex) along. True: the store confirmed that the
        bytes it stored hash to `sha256` (it refuses others: StoreError). False: written but
        not checked (say, a multipart upload); only a read-back can tell."""
        ...


def put_checked(store: ObjectStore, key: str, src: IO[bytes], size: int, sha256: str) -> bool:
    """`store.put_checked` where the store has it, else `store.put` (then False)."""
    # getattr, not isinstance(store, CheckedPut): a runtime protocol check costs ~10 µs a put.
    checked = getattr(store, "put_checked", None)
    if checked is not None:
        return bool(checked(key, src, size, sha256))
    store.put(key, src, size)
    return False


def put_verified(
    store: ObjectStore,
    key: str,
    src: IO[bytes],
    sha256_hex: str,
    size: int,
    *,
    read_back: bool = True,
) -> bool:
    """Store `src` (`size` bytes) under `key` and prove that the store holds `sha256_hex`.

    Whatever is already under `key` is hashed first: an intact copy is kept (returns False,
    nothing written); an empty, torn or rotten one is rewritten. After a write (returns
    True) the proof is a read-back hashed here, or with `read_back=False` a store's own
    check on arrival (`CheckedPut`: S3 computes the SHA-256 of what it received, a local
    store of what it copied, and both refuse other bytes); a store without one is read
    back all the same.

    `read_back=False` is only for objects no DELE depends on (mail kept on its server,
    attachments): the archiver deletes a message from a server only after a `put_verified`
    of its original with `read_back=True` returned. Raises IntegrityError if the bytes read
    back hash to anything else, StoreError if the store fails or refuses them.
    """
    _check_sha256(sha256_hex)
    # One read instead of exists() + open(): a missing object shows up as ObjectNotFound.
    existing = _stored_sha256(store, key)
    if existing == sha256_hex:
        # A store that syncs names per batch (archive.store.group) syncs this one's too.
        kept = getattr(store, "kept", None)
        if kept is not None:
            kept(key)
        return False
    if existing is not None:
        # Content-addressed, so whatever is there should be these bytes: it rotted or a
        # write was torn. Rewriting heals it; the read-back below proves the heal.
        log.warning(
            "stored object %s hashes to %s, expected %s; rewriting it", key, existing, sha256_hex
        )
    if put_checked(store, key, src, size, sha256_hex) and not read_back:
        return True
    stored = _stored_sha256(store, key)
    if stored is None:
        raise StoreError(f"{store.url}: {key} is missing right after it was written")
    if stored != sha256_hex:
        raise IntegrityError(
            f"{store.url}: {key} reads back with SHA-256 {stored}, expected {sha256_hex}"
        )
    return True
