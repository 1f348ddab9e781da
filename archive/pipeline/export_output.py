"""Where an export's messages go: one writer per format behind `Output`, and the upload of a
finished export folder to S3."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from archive.errors import TransferError
from archive.store import S3Store, open_store, put_verified
from archive.transfer import maildir_name, write_mbox_entry

if TYPE_CHECKING:
    from archive.pipeline.export import ExportRow


ZIP64_LIMIT = (1 << 31) - 1


def _zip_time(archived_at: str) -> tuple[int, int, int, int, int, int]:
    """The member's time: when the message was archived (ZIP holds no time zone; UTC)."""
    when = datetime.fromisoformat(archived_at).astimezone(UTC)
    return (max(when.year, 1980), when.month, when.day, when.hour, when.minute, when.second)


class Output(Protocol):
    def add(self, number: int, row: ExportRow, original: IO[bytes]) -> str:
        """Write one original (verified, at position 0); returns where it went (the
        manifest's `file`)."""
        ...


class _Mbox:
    name = "messages.mbox"

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def add(self, number: int, row: ExportRow, original: IO[bytes]) -> str:
        when = datetime.fromisoformat(row.archived_at)
        write_mbox_entry(self._file, original, row.envelope_sender, when)
        return f"{self.name}#{number}"


class _EmlZip:
    def __init__(self, archive: zipfile.ZipFile) -> None:
        self._zip = archive

    def add(self, number: int, row: ExportRow, original: IO[bytes]) -> str:
        name = f"{number:08d}-{row.sha256}.eml"
        # Stored, not deflated: .eml readers and hash checks see the originals as they are.
        info = zipfile.ZipInfo(name, date_time=_zip_time(row.archived_at))
        info.compress_type = zipfile.ZIP_STORED
        with self._zip.open(info, "w", force_zip64=row.size >= ZIP64_LIMIT) as member:
            shutil.copyfileobj(original, member, 1 << 20)
        return f"messages.zip/{name}"


class _Maildir:
    def __init__(self, root: Path) -> None:
        self._new = root / "new"

    def add(self, number: int, row: ExportRow, original: IO[bytes]) -> str:
        path = self._new / maildir_name(number, row.sha256)
        with path.open("xb") as file:
            shutil.copyfileobj(original, file, 1 << 20)
        return f"maildir/new/{path.name}"


@contextmanager
def open_output(root: Path, format: str) -> Iterator[Output]:
    if format == "mbox":
        with (root / _Mbox.name).open("xb") as file:
            yield _Mbox(file)
    elif format == "eml-zip":
        with zipfile.ZipFile(root / "messages.zip", "x", allowZip64=True) as archive:
            yield _EmlZip(archive)
    elif format == "maildir":
        for sub in ("new", "cur", "tmp"):
            (root / "maildir" / sub).mkdir(parents=True)
        yield _Maildir(root / "maildir")
    else:
        raise TransferError(f"export: unknown format {format!r} (mbox, eml-zip, maildir)")


def upload_tree(root: Path, url: str) -> None:
    """Every file under `root` to `url` (s3://bucket/prefix), each read back and compared
    by SHA-256 (`put_verified`)."""
    store = open_store(url)
    if not isinstance(store, S3Store):
        raise TransferError(f"export: {url.split('://')[0]}:// is not an export destination")
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
        with path.open("rb") as file:
            put_verified(
                store,
                path.relative_to(root).as_posix(),
                file,
                digest.hexdigest(),
                path.stat().st_size,
            )
