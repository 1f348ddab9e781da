"""Objects as files under a root folder, written atomically and durably."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

from archive.errors import ObjectNotFound, StoreError
from archive.store.base import CHUNK, StoredObject, check_key


class LocalStore:
    """`root/<key>`; every put goes through a temp file and os.replace, so it is all or nothing."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        self.sync_dirs(self.put_deferring_dirs(key, src, size))

    def put_deferring_dirs(self, key: str, src: IO[bytes], size: int) -> list[Path]:
        """`put`, except that the directories whose listing changed (the renamed entry's, and
        any fan-out directory's parent) are returned unsynced: `sync_dirs` them before
        anything refers to the object. The file's bytes are synced before its rename, as in
        `put`, so a named object never holds unsynced data. One caller syncing a batch of
        objects' directories at once (`archive.store.group.GroupSync`) replaces 2–4 fsyncs
        per object by one."""
        path = self._path(key)
        try:
            dirs = _make_dirs(path.parent)
            # Same directory as the target: os.replace is only atomic within one file system.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                os.fchmod(fd, 0o644)  # mkstemp makes 0600; archived mail is read by other tools
                with os.fdopen(fd, "wb") as out:
                    copied = _copy(src, out)
                    out.flush()
                    # Data on disk before the rename, or a crash could leave a named empty file.
                    os.fsync(out.fileno())
                if copied != size:
                    raise StoreError(
                        f"{self.url}: {key}: source gave {copied} bytes, expected {size}"
                    )
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot write {key}: {_reason(exc)}") from exc
        # The rename itself lives in the directory: synced so the object survives a crash.
        return [*dirs, path.parent]

    def dirs_of(self, key: str) -> list[Path]:
        """The directories an existing object's name depends on, up to the root."""
        path = self._path(key).parent
        chain = [path]
        while path != self.root and self.root in path.parents:
            path = path.parent
            chain.append(path)
        return chain

    def sync_dirs(self, dirs: list[Path]) -> None:
        """fsync each directory once (a new entry or rename in it is then durable)."""
        try:
            for directory in dict.fromkeys(dirs):
                _fsync_dir(directory)
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot sync {directory}: {_reason(exc)}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(key, self.url) from None
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot read {key}: {_reason(exc)}") from exc

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            try:
                return stream.read()
            except OSError as exc:
                raise StoreError(f"{self.url}: cannot read {key}: {_reason(exc)}") from exc

    def scan(self, prefix: str) -> Iterator[StoredObject]:
        top = self.root / prefix.rstrip("/") if prefix.strip("/") else self.root
        for directory, _, files in os.walk(top):
            for name in files:
                if name.startswith("."):  # a put in progress (mkstemp's temp file)
                    continue
                path = Path(directory) / name
                try:
                    info = path.stat()
                except FileNotFoundError:
                    continue
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield StoredObject(
                        key, info.st_size, datetime.fromtimestamp(info.st_mtime, UTC)
                    )

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot delete {key}: {_reason(exc)}") from exc


def _copy(src: IO[bytes], out: IO[bytes]) -> int:
    """shutil.copyfileobj, but counting: a short source must not become a short object."""
    copied = 0
    while block := src.read(CHUNK):
        out.write(block)
        copied += len(block)
    return copied


def _make_dirs(directory: Path) -> list[Path]:
    """mkdir -p; returns each parent whose listing gained a new directory, to be synced."""
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent put made it first
            new.mkdir()
    return [new.parent for new in reversed(missing)]


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # Windows cannot open a directory for fsync
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
