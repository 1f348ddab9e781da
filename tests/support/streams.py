"""Streams and helpers shared by the object-store tests (unit and S3)."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

MiB = 1 << 20
BUCKET = "mail-archive"
SECRET = "s3cr3t-V4lue-that-must-never-leak"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


class GeneratedStream(io.RawIOBase):
    """`size` pseudo-random bytes, produced 1 MiB at a time: never held whole in memory."""

    def __init__(self, size: int, seed: int = 7) -> None:
        self._left = size
        self._rng = random.Random(seed)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._buffer and self._left:
            self._buffer = self._rng.randbytes(min(MiB, self._left))
            self._left -= len(self._buffer)
        n = min(len(buffer), len(self._buffer))
        buffer[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n


class FailingStream(io.RawIOBase):
    """Gives `good` bytes, then fails like a dropped connection."""

    def __init__(self, good: bytes) -> None:
        self._good = io.BytesIO(good)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._good.readinto(buffer)
        if n == 0:
            raise OSError(104, "Connection reset by peer")
        return n


class UnreadableStream(io.RawIOBase):
    """A source that must not be read at all."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        raise AssertionError("the source was read although an intact copy exists")
