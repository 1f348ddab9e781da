"""Durability barriers for files: `fsync` one file or directory, `syncfs` a whole file system.

`syncfs(2)` (Linux) writes back every dirty page and inode of one file system and commits
its journal: one call makes a batch of files durable, names and bytes, where a file-by-file
barrier costs an fsync per file plus one per directory. It is used only where it reports
writeback errors: Linux 5.8 and later (before, it returned 0 whatever happened). Elsewhere,
and where libc has no `syncfs`, callers fall back to `fsync_path` on each file and directory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

__all__ = ["fsync_path", "syncfs", "syncfs_available"]

# Linux 5.8 made syncfs return writeback errors (errseq_t on the superblock).
_SYNCFS_REPORTS_ERRORS = (5, 8)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    release = re.match(r"(\d+)\.(\d+)", platform.release())
    if release is None or (int(release[1]), int(release[2])) < _SYNCFS_REPORTS_ERRORS:
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast(Callable[[int], int], function)


def syncfs_available() -> bool:
    """True where `syncfs` works and reports errors (Linux ≥ 5.8 with a libc that has it)."""
    return _libc_syncfs() is not None


def syncfs(directory: str | Path) -> None:
    """Make everything written to the file system holding `directory` durable.

    Raises OSError (the errno of the failed writeback, EIO say) on failure, and
    OSError(ENOSYS) where `syncfs_available()` is False."""
    function = _libc_syncfs()
    if function is None:
        raise OSError(errno.ENOSYS, "syncfs is not available here", str(directory))
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if function(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), str(directory))
    finally:
        os.close(fd)


def fsync_path(path: str | Path, *, directory: bool = False) -> None:
    """fsync one file, or one directory (its entries: a new name or rename in it).

    Windows cannot open a directory to sync it; there a directory is skipped. Raises OSError."""
    if directory and os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
