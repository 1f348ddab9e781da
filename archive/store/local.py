"""Objects as files under a root folder, written atomically: durable at once (`put`), or
durable together with a batch (`put_unsynced` for each object, then one `make_durable`).

A batch's barrier is one `syncfs(2)` of the store's file system where that reports errors
(Linux ≥ 5.8, `archive.store.durability`), else an fsync of each file, then of each
directory its name depends on. Until the barrier, a named object may be empty or torn after
a crash of the machine (not of the process: the kernel still writes back what a killed
process wrote). Nothing refers to it then: the caller commits the rows that name objects
only after `make_durable` returned (`archive.store.group.GroupSync`), and `put_verified`
hashes whatever it finds under a key before trusting it, so the next put of the same bytes
rewrites a torn copy. Every read of an object by its hash is verified
(`archive.store.verified`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

from archive.errors import ObjectNotFound, StoreError
from archive.store import durability
from archive.store.base import CHUNK, StoredObject, check_key


@dataclass(frozen=True, slots=True)
class Unsynced:
    """An object named in the store whose bytes and name may not be durable yet: `path`, its
    file system (`device`, st_dev) and the directories, from its own up, whose entries are
    not known to be durable (`new_dirs`: each one's entry lives in its parent)."""

    path: Path
    device: int
    new_dirs: tuple[Path, ...]

    def dirs_to_sync(self) -> list[Path]:
        """The directories to fsync for the object's name to be durable: its own (the
        rename's entry) and the parent of each directory in `new_dirs`."""
        return [self.path.parent, *(directory.parent for directory in self.new_dirs)]


class LocalStore:
    """`root/<key>`; every put goes through a temp file and os.replace, so it is all or nothing.

    `use_syncfs`: batches are made durable by one syncfs of the file system (True), or by an
    fsync of each file and directory (False); None (the default) uses syncfs where it
    reports errors. syncfs also writes back what other programs left dirty on that file
    system, so a store that shares a busy file system may be faster with False.
    """

    def __init__(self, root: Path, *, use_syncfs: bool | None = None) -> None:
        self.root = Path(root).absolute()
        self.url = self.root.as_uri()
        self.use_syncfs = durability.syncfs_available() if use_syncfs is None else use_syncfs
        # Directories that exist with a durable entry in their parent: a put into one needs
        # no mkdir, no stat and no parent fsync (0.3-0.7 ms per object, mostly new fan-out
        # directories). Added only after a barrier covered them; shared by the threads of
        # a run (set operations are atomic).
        self._durable_dirs: set[Path] = set()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        """Write the object durably before returning: bytes fsynced before the rename, then
        the directories its name depends on."""
        written = self._write(key, src, size, sync=True)
        try:
            for directory in written.dirs_to_sync():
                durability.fsync_path(directory, directory=True)
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot sync {key}: {_reason(exc)}") from exc
        self._durable_dirs.update(written.new_dirs)

    def put_unsynced(self, key: str, src: IO[bytes], size: int) -> Unsynced:
        """`put`, without any fsync: the object is named and readable at once, durable only
        after `make_durable([...])` of what this returns. Nothing may refer to it before."""
        return self._write(key, src, size, sync=False)

    def unsynced(self, key: str) -> Unsynced:
        """An object already in the store, to be made durable with a batch (a run killed
        between its write and its barrier leaves one). Raises ObjectNotFound, StoreError."""
        path = self._path(key)
        try:
            device = path.stat().st_dev
        except FileNotFoundError:
            raise ObjectNotFound(key, self.url) from None
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot check {key}: {_reason(exc)}") from exc
        return Unsynced(path, device, self._new_dirs(path.parent))

    def make_durable(self, objects: Sequence[Unsynced]) -> None:
        """One barrier for every object in `objects`, bytes and names: one syncfs per file
        system, or an fsync of each file and then of each directory once. Raises StoreError;
        then none of them may be referred to (they may be rewritten by the next put)."""
        if not objects:
            return
        try:
            if self.use_syncfs:
                for first in {item.device: item for item in objects}.values():
                    durability.syncfs(first.path.parent)
            else:
                for path in dict.fromkeys(item.path for item in objects):
                    durability.fsync_path(path)
                for directory in dict.fromkeys(d for item in objects for d in item.dirs_to_sync()):
                    durability.fsync_path(directory, directory=True)
        except OSError as exc:
            raise StoreError(
                f"{self.url}: cannot make {len(objects)} objects durable: {_reason(exc)}"
            ) from exc
        for item in objects:
            self._durable_dirs.update(item.new_dirs)

    def _new_dirs(self, directory: Path) -> tuple[Path, ...]:
        """`directory` and its ancestors up to the root, as far as they are not known
        durable (the root's entry counts too: its parent is synced once)."""
        found: list[Path] = []
        while directory not in self._durable_dirs:
            found.append(directory)
            if directory == self.root or self.root not in directory.parents:
                break
            directory = directory.parent
        return tuple(found)

    def _write(self, key: str, src: IO[bytes], size: int, *, sync: bool) -> Unsynced:
        path = self._path(key)
        try:
            fd, tmp, new_dirs = self._temp_file(path)
            try:
                os.fchmod(fd, 0o644)  # mkstemp makes 0600; archived mail is read by other tools
                with os.fdopen(fd, "wb") as out:
                    copied = _copy(src, out)
                    out.flush()
                    if sync:
                        # Data on disk before the rename, or a crash could leave a named
                        # empty file.
                        os.fsync(out.fileno())
                    device = os.fstat(out.fileno()).st_dev
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
        return Unsynced(path, device, new_dirs)

    def _temp_file(self, path: Path) -> tuple[int, str, tuple[Path, ...]]:
        """A temp file beside `path` (os.replace is only atomic within one file system) and
        the directories not known durable; the fan-out directories are made the first time
        mkstemp finds them missing (no stat per put)."""
        new_dirs = self._new_dirs(path.parent)
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except FileNotFoundError:
            created = _make_dirs(path.parent)
            if self._durable_dirs.intersection(created):
                # Removed behind our back, so what we knew is wrong: forget it.
                self._durable_dirs.clear()
                new_dirs = self._new_dirs(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        return fd, tmp, new_dirs

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
    """mkdir -p; returns the directories it made."""
    missing: list[Path] = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # a concurrent put made it first
            new.mkdir()
    return missing


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
