"""Maildir (as getmail, fetchmail's MDAs and offlineimap write it): one file per message in
`new/` and `cur/`; `tmp/` holds deliveries in progress and is never read. File contents are
the originals, byte for byte."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def read_maildir(path: Path) -> Iterator[tuple[Path, bytes]]:
    """Each message file of the Maildir at `path` (new/ then cur/, by name) and its bytes."""
    for sub in ("new", "cur"):
        folder = path / sub
        if not folder.is_dir():
            continue
        for file in sorted(folder.iterdir()):
            if file.name.startswith(".") or not file.is_file():
                continue
            yield file, file.read_bytes()


def maildir_name(number: int, sha256: str) -> str:
    """A file name for `new/`: unique in the export and a valid object key (no `:2,` info,
    so readers take it as unseen mail)."""
    return f"{number:08d}.{sha256}.mailarchive"
