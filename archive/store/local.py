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

A write given the object's SHA-256 (`put_checked`, `put_unsynced(..., sha256=...)`) hashes
the bytes as it copies them into the temp file and names the object only if they hash to
it (else IntegrityError, nothing named): the check on arrival that `put_verified` accepts
in place of a read-back where no DELE depends on the object. Paths are handled as strings:
pathlib costs ~10 µs per operation, several per object.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

from archive.errors import IntegrityError, ObjectNotFound, StoreError
from archive.store import durability
from archive.store.base import CHUNK, StoredObject, check_key

# Temp files: ".<name>.<pid>.<n>.tmp" beside the object, created with O_EXCL. The pid and a
# per-process counter make the name unique among live processes (a fork has its own pid);
# one left behind by a dead process of the same pid is skipped by the next number. Cheaper
# than tempfile.mkstemp (random names, Python-level retries, then an fchmod): ~40 µs less
# per object on the benchmark machine (docs/benchmarks.md).
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
# Owner only: the store holds other people's mail (docs/SECURITY.md). Objects and folders
# made before this rule keep their modes.
_MODE = 0o600
_DIR_MODE = 0o700
_NAMES = itertools.count()
_TRIES = 100


@dataclass(frozen=True, slots=True)
class Unsynced:
    """An object named in the store whose bytes and name may not be durable yet: `path`, its
    file system (`device`, st_dev) and the directories, from its own up, whose entries are
    not known to be durable (`new_dirs`: each one's entry lives in its parent). Paths are
    absolute strings."""

    path: str
    device: int
    new_dirs: tuple[str, ...]

    def dirs_to_sync(self) -> list[str]:
        """The directories to fsync for the object's name to be durable: its own (the
        rename's entry) and the parent of each directory in `new_dirs`."""
        return [os.path.dirname(self.path), *map(os.path.dirname, self.new_dirs)]


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
        self._root = str(self.root)
        # Directories that exist with a durable entry in their parent: a put into one needs
        # no mkdir, no stat and no parent fsync (0.3-0.7 ms per object, mostly new fan-out
        # directories). Added only after a barrier covered them; shared by the threads of
        # a run (set operations are atomic).
        self._durable_dirs: set[str] = set()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _file(self, key: str) -> str:
        """The absolute path of `key`, as a string."""
        key = check_key(key)
        return f"{self._root}{os.sep}{key if os.sep == '/' else key.replace('/', os.sep)}"

    def put(self, key: str, src: IO[bytes], size: int) -> None:
        """Write the object durably before returning: bytes fsynced before the rename, then
        the directories its name depends on."""
        self._put_durably(key, src, size, None)

    def put_checked(self, key: str, src: IO[bytes], size: int, sha256: str) -> bool:
        """`put`, checking the bytes on arrival (`archive.store.base.CheckedPut`): they are
        hashed as they are copied, and the object is named only if they hash to `sha256`
        (lower-case hex); else IntegrityError, and nothing is written under `key`. Always
        True: what was written is what was hashed."""
        self._put_durably(key, src, size, sha256)
        return True

    def _put_durably(self, key: str, src: IO[bytes], size: int, sha256: str | None) -> None:
        written = self._write(key, src, size, sync=True, sha256=sha256)
        try:
            for directory in written.dirs_to_sync():
                durability.fsync_path(directory, directory=True)
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot sync {key}: {_reason(exc)}") from exc
        self._durable_dirs.update(written.new_dirs)

    def put_unsynced(
        self, key: str, src: IO[bytes], size: int, sha256: str | None = None
    ) -> Unsynced:
        """`put` (or with `sha256`, `put_checked`), without any fsync: the object is named
        and readable at once, durable only after `make_durable([...])` of what this
        returns. Nothing may refer to it before."""
        return self._write(key, src, size, sync=False, sha256=sha256)

    def unsynced(self, key: str) -> Unsynced:
        """An object already in the store, to be made durable with a batch (a run killed
        between its write and its barrier leaves one). Raises ObjectNotFound, StoreError."""
        path = self._file(key)
        try:
            device = os.stat(path).st_dev
        except FileNotFoundError:
            raise ObjectNotFound(key, self.url) from None
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot check {key}: {_reason(exc)}") from exc
        return Unsynced(path, device, self._new_dirs(os.path.dirname(path)))

    def make_durable(self, objects: Sequence[Unsynced]) -> None:
        """One barrier for every object in `objects`, bytes and names: one syncfs per file
        system, or an fsync of each file and then of each directory once. Raises StoreError;
        then none of them may be referred to (they may be rewritten by the next put)."""
        if not objects:
            return
        try:
            if self.use_syncfs:
                for first in {item.device: item for item in objects}.values():
                    durability.syncfs(os.path.dirname(first.path))
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

    def _new_dirs(self, directory: str) -> tuple[str, ...]:
        """`directory` and its ancestors up to the root, as far as they are not known
        durable (the root's entry counts too: its parent is synced once)."""
        found: list[str] = []
        while directory not in self._durable_dirs:
            found.append(directory)
            if directory == self._root or not directory.startswith(self._root + os.sep):
                break
            directory = os.path.dirname(directory)
        return tuple(found)

    def _write(
        self, key: str, src: IO[bytes], size: int, *, sync: bool, sha256: str | None
    ) -> Unsynced:
        path = self._file(key)
        directory, name = os.path.split(path)
        try:
            fd, tmp, new_dirs = self._temp_file(directory, name)
            try:
                try:
                    copied, digest = _copy(src, fd, hashed=sha256 is not None)
                    if copied != size:
                        raise StoreError(
                            f"{self.url}: {key}: source gave {copied} bytes, expected {size}"
                        )
                    if digest is not None and digest != sha256:
                        raise IntegrityError(
                            f"{self.url}: {key}: the bytes to store hash to {digest}, "
                            f"expected {sha256}; nothing stored"
                        )
                    if sync:
                        # Data on disk before the rename, or a crash could leave a named
                        # empty file.
                        os.fsync(fd)
                    info = os.fstat(fd)
                    if stat.S_IMODE(info.st_mode) != _MODE:  # a umask took bits off
                        os.fchmod(fd, _MODE)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise StoreError(f"{self.url}: cannot write {key}: {_reason(exc)}") from exc
        return Unsynced(path, info.st_dev, new_dirs)

    def _temp_file(self, directory: str, name: str) -> tuple[int, str, tuple[str, ...]]:
        """A temp file beside the object (os.replace is only atomic within one file system)
        and the directories not known durable; the fan-out directories are made the first
        time the temp file cannot be created for want of them (no stat per put)."""
        new_dirs = self._new_dirs(directory)
        try:
            fd, tmp = _create(directory, name)
        except FileNotFoundError:
            created = _make_dirs(directory)
            if self._durable_dirs.intersection(created):
                # Removed behind our back, so what we knew is wrong: forget it.
                self._durable_dirs.clear()
                new_dirs = self._new_dirs(directory)
            fd, tmp = _create(directory, name)
        return fd, tmp, new_dirs

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._file(key))

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._file(key), "rb")
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
                if name.startswith("."):  # a put in progress (its temp file)
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


def _create(directory: str, name: str) -> tuple[int, str]:
    """A new temp file for `name` in `directory`, mode 0600 less the umask (the caller
    restores bits a umask took off; a umask never adds any): (fd, path).
    Raises FileNotFoundError if `directory` is missing."""
    pid = os.getpid()
    for _ in range(_TRIES):
        tmp = f"{directory}{os.sep}.{name}.{pid}.{next(_NAMES)}.tmp"
        try:
            return os.open(tmp, _CREATE, _MODE), tmp
        except FileExistsError:
            continue  # left by a dead process that had this pid
    raise FileExistsError(f"no free temp file name for {name} in {directory}")


def _copy(src: IO[bytes], fd: int, *, hashed: bool) -> tuple[int, str | None]:
    """Copy `src` to its end into `fd`: (bytes copied, their SHA-256 if `hashed`). Counting:
    a short source must not become a short object."""
    digest = hashlib.sha256() if hashed else None
    copied = 0
    while block := src.read(CHUNK):
        if digest is not None:
            digest.update(block)
        view = memoryview(block)
        while view:
            view = view[os.write(fd, view) :]
        copied += len(block)
    return copied, None if digest is None else digest.hexdigest()


def _make_dirs(directory: str) -> list[str]:
    """mkdir -p, each new folder 0700 (owner only; a umask can only take bits off, and a
    umask that takes the owner's off would break the store anyway); returns the
    directories it made, deepest first."""
    try:
        os.mkdir(directory, _DIR_MODE)
    except FileExistsError:  # a concurrent put made it first
        return []
    except FileNotFoundError:
        parent = os.path.dirname(directory)
        if parent == directory:
            raise
        made = _make_dirs(parent)
        try:
            # A second FileNotFoundError (a dangling link, say) is raised.
            os.mkdir(directory, _DIR_MODE)
        except FileExistsError:
            return made
        return [directory, *made]
    return [directory]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
