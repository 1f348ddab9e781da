"""A dict-backed store for tests, with switches that make puts fail or corrupt their bytes."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, BinaryIO

from archive.errors import ObjectNotFound, StoreError
from archive.store.base import StoredObject, check_key


class MemoryStore:
    """Thread-safe; `fail_puts` and `corrupt_puts` may be flipped while an archiver runs."""

    url = "memory://"

    def __init__(self, fail_puts: bool = False, corrupt_puts: bool = False) -> None:
        self.fail_puts = fail_puts
        """put raises StoreError, as an unreachable store would."""
        self.corrupt_puts = corrupt_puts
        """put stores altered bytes, so put_verified raises IntegrityError."""
        self._objects: dict[str, bytes] = {}
        self._modified: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        check_key(key)
        if self.fail_puts:
            raise StoreError(f"{self.url}: cannot write {key}: failure injected by the test")
        data = src.read()
        if len(data) != size:
            raise StoreError(f"{self.url}: {key}: source gave {len(data)} bytes, expected {size}")
        if self.corrupt_puts:
            data += b"\0corrupted"
        with self._lock:
            self._objects[key] = data
            self._modified[key] = datetime.now(UTC)

    def exists(self, key: str) -> bool:
        with self._lock:
            return check_key(key) in self._objects

    def open(self, key: str) -> BinaryIO:
        return io.BytesIO(self.get(key))

    def get(self, key: str) -> bytes:
        with self._lock:
            try:
                return self._objects[check_key(key)]
            except KeyError:
                raise ObjectNotFound(key, self.url) from None

    def keys(self) -> list[str]:
        """Every stored key, sorted: lets a test count what was written."""
        with self._lock:
            return sorted(self._objects)

    def scan(self, prefix: str) -> Iterator[StoredObject]:
        with self._lock:
            found = [
                StoredObject(key, len(data), self._modified[key])
                for key, data in self._objects.items()
                if key.startswith(prefix)
            ]
        return iter(found)

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(check_key(key), None)
            self._modified.pop(key, None)

    def replace_bytes(self, key: str, data: bytes) -> None:
        """Overwrite an object behind the archive's back, as bit rot or an operator would."""
        with self._lock:
            self._objects[check_key(key)] = data
