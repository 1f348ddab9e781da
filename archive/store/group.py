"""`GroupSync`: a store whose writes are made durable together, once per batch.

A local write costs a file fsync, then a directory fsync for the rename and one per new
fan-out directory: 2–4 flushes per object, paid again for every attachment. Wrapped in a
`GroupSync`, a `LocalStore` still syncs each file's bytes before its rename (a named object
never holds unsynced data), but the directory fsyncs wait for `sync()`, which the archiver
calls once per batch just before the transaction that refers to the objects commits
(`archive.pipeline.batch`), so before any DELE. Each directory is synced once per batch;
after the first, most find their entries already on disk and cost little.

`put_verified` still reads every object back before it returns, so the bytes are proven
as before; only the point where their names are durable moves, from the write to the
commit that first refers to them. An object found intact and left as it is
(`put_verified` wrote nothing) has its directories synced too: a run killed between a
write and its sync leaves such an object, named but perhaps not durable.

Stores without deferred directory syncs (S3, memory) are written through at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from archive.store.base import ObjectStore, StoredObject
from archive.store.local import LocalStore

__all__ = ["GroupSync"]


class GroupSync:
    """An `ObjectStore` over `store` that defers a `LocalStore`'s directory fsyncs to `sync()`."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.url = store.url
        self._local = store if isinstance(store, LocalStore) else None
        self._dirs: dict[Path, None] = {}

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        if self._local is None:
            self.store.put(key, src, size)
            return
        self._dirs.update(dict.fromkeys(self._local.put_deferring_dirs(key, src, size)))

    def kept(self, key: str) -> None:
        """`key` was found intact and not rewritten: sync its names with the batch too."""
        if self._local is not None:
            self._dirs.update(dict.fromkeys(self._local.dirs_of(key)))

    def sync(self) -> None:
        """Make every object written (or kept) since the last sync durable by name."""
        dirs, self._dirs = list(self._dirs), {}
        if self._local is not None and dirs:
            self._local.sync_dirs(dirs)

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
