"""`GroupSync`: a store whose writes are made durable together, once per batch.

A durable local write costs a file fsync before the rename, then a directory fsync for the
rename and one per new fan-out directory: 2-4 flushes per object, paid again for every
attachment. Wrapped in a `GroupSync`, a `LocalStore` writes and renames each object without
any fsync (`LocalStore.put_unsynced`), and `sync()` makes all of them durable with one
barrier (`LocalStore.make_durable`: one syncfs(2) of the file system, or an fsync of each
file then each directory). The archiver calls `sync()` once per batch, just before the
transaction that refers to the objects commits (`archive.pipeline.batch`), so before any
DELE.

The bytes are proven as before: `put_verified` reads an object back before it returns, or,
where no DELE depends on it, trusts the store's check on arrival (`put_checked`: a local
write hashes the bytes as it copies them and names the object only if they hash to the
expected SHA-256). Only the point where bytes and names are durable moves, from the write
to the commit that first refers to them. If the machine crashes before the barrier, an
object may be left named but empty or torn: no committed row refers to it, and the next
`put_verified` of those bytes hashes it, finds it wrong and rewrites it.
An object found intact and left as it is (`put_verified` wrote nothing) is made durable
with the batch too: a run killed between a write and its barrier leaves such an object.

Stores without deferred syncs (S3, memory) are written through at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, BinaryIO

from archive.store.base import ObjectStore, StoredObject, put_checked
from archive.store.local import LocalStore, Unsynced

__all__ = ["GroupSync"]


class GroupSync:
    """An `ObjectStore` over `store` that defers a `LocalStore`'s fsyncs to `sync()`."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.url = store.url
        self._local = store if isinstance(store, LocalStore) else None
        self._pending: list[Unsynced] = []

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        if self._local is None:
            self.store.put(key, src, size)
            return
        self._pending.append(self._local.put_unsynced(key, src, size))

    def put_checked(self, key: str, src: IO[bytes], size: int, sha256: str) -> bool:
        """`CheckedPut.put_checked` of the store below. A local write is checked on arrival
        (True; IntegrityError and nothing named if the bytes do not hash to `sha256`) and
        made durable by the next `sync()`."""
        if self._local is None:
            return put_checked(self.store, key, src, size, sha256)
        self._pending.append(self._local.put_unsynced(key, src, size, sha256))
        return True

    def kept(self, key: str) -> None:
        """`key` was found intact and not rewritten: make it durable with the batch too."""
        if self._local is not None:
            self._pending.append(self._local.unsynced(key))

    def sync(self) -> None:
        """Make every object written (or kept) since the last sync durable, bytes and names.
        Raises StoreError; the caller must then not commit anything that refers to them."""
        pending, self._pending = self._pending, []
        if self._local is not None and pending:
            self._local.make_durable(pending)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def open(self, key: str) -> BinaryIO:
        return self.store.open(key)

    def get(self, key: str) -> bytes:
        return self.store.get(key)

    def scan(self, prefix: str) -> Iterator[StoredObject]:
        return self.store.scan(prefix)

    def delete(self, key: str) -> None:
        self.store.delete(key)
