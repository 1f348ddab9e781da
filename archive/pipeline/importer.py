"""`mailarchive import mbox|maildir PATH --mailbox NAME`: existing mail into the archive by the
archiver's own path: `put_verified` (written, read back, SHA-256 compared), parsed, attachments
stored, indexed with its ledger row in one transaction, so it is searchable at once.

Each imported message is a delivery row of mailbox NAME whose unique-id is
`import:<sha256>` (occurrence 0). That can never be a POP3 unique-id: RFC 1939 §7 allows 1 to 70
characters and it has 71, so no compliant server lists it, and a POP3 run of a mailbox of the
same name therefore finds no listed message for the row, never proposes it for DELE, and never
counts it as evidence (archive.pipeline.evidence works from listed unique-ids). The pipeline's
ledger also never takes an imported row for a renamed POP3 copy (`is_imported` in
archive.pipeline.ledger).

Idempotent and resumable by SHA-256: a message whose row exists in the mailbox is skipped, and
each message commits on its own, so an interrupted import continues where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from archive.defaults import PARSE_MAX_BYTES
from archive.errors import TransferError
from archive.extract import AttachmentTexts, Extractor
from archive.index.ledger import IndexWriter
from archive.index.models import Mailbox
from archive.mime import ParsedMessage, ParseLimits
from archive.pipeline.ingest import parse_original, store_attachments
from archive.pipeline.ledger import IMPORTED_PREFIX
from archive.pipeline.texts import extract_texts
from archive.pipeline.transfer_audit import record_transfer
from archive.store import ObjectStore, put_verified, raw_key
from archive.transfer import read_maildir, read_mbox

SourceKind = Literal["mbox", "maildir"]
IMPORT_HOST = "import"
Progress = Callable[[int], None]


def imported_uidl(sha256: str) -> bytes:
    return IMPORTED_PREFIX + sha256.encode("ascii")


@dataclass(frozen=True, slots=True)
class ImportResult:
    mailbox: str
    source: str
    found: int
    imported: int
    duplicates: int
    already: int
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.found / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        return (
            f"imported {self.imported} new messages into mailbox {self.mailbox!r} from "
            f"{self.source} ({self.found} found, {self.duplicates} already archived elsewhere, "
            f"{self.already} imported before; {self.rate:.0f} messages/s)"
        )


def read_source(kind: SourceKind, path: Path) -> Iterator[bytes]:
    """The originals of an mbox file or a Maildir folder."""
    if not path.exists():
        raise TransferError(f"import: {path} does not exist")
    if kind == "mbox":
        if not path.is_file():
            raise TransferError(f"import: {path} is not an mbox file")
        with path.open("rb") as file:
            yield from read_mbox(file)
    elif kind == "maildir":
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise TransferError(f"import: {path} is not a Maildir (no cur/ or new/)")
        for _, raw in read_maildir(path):
            yield raw
    else:
        raise TransferError(f"import: unknown source kind {kind!r} (mbox, maildir)")


@dataclass(frozen=True)
class Importer:
    writer: IndexWriter
    store: ObjectStore
    parse_limits: ParseLimits = ParseLimits()
    parse_max_bytes: int = PARSE_MAX_BYTES
    extractor: Extractor | None = None

    def run(
        self, kind: SourceKind, path: Path, mailbox: str, progress: Progress | None = None
    ) -> ImportResult:
        started = time.monotonic()
        found = imported = duplicates = already = size = 0
        host, username = self._mailbox_owner(mailbox)
        with self.writer.mailbox(mailbox, host, username) as index:
            with index.lock(mailbox) as locked:
                if not locked:
                    raise TransferError(
                        f"import: mailbox {mailbox!r} is being archived or imported now; "
                        "try again when that run ends"
                    )
                have = {entry.uidl for entry in index.ledger()}
                for raw in read_source(kind, path):
                    found += 1
                    sha256 = hashlib.sha256(raw).hexdigest()
                    uidl = imported_uidl(sha256)
                    if uidl in have:
                        already += 1
                    else:
                        put_verified(self.store, raw_key(sha256), io.BytesIO(raw), sha256, len(raw))
                        parsed: ParsedMessage | None = None
                        texts: AttachmentTexts | None = None
                        if index.find_message(sha256) is None:
                            parsed = parse_original(
                                io.BytesIO(raw), len(raw), self.parse_limits, self.parse_max_bytes
                            )
                            store_attachments(self.store, parsed)
                            if self.extractor is not None:
                                texts = extract_texts(parsed, self.extractor, index.extracted_texts)
                        recorded = index.record((uidl, 0), sha256, len(raw), parsed, texts=texts)
                        have.add(uidl)
                        imported += recorded.created
                        duplicates += not recorded.created
                        size += len(raw)
                    if progress is not None:
                        progress(found)
        result = ImportResult(
            mailbox=mailbox,
            source=f"{kind} {path}",
            found=found,
            imported=imported,
            duplicates=duplicates,
            already=already,
            bytes=size,
            seconds=time.monotonic() - started,
        )
        record_transfer(self.writer.engine, "import", result.summary())
        return result

    def _mailbox_owner(self, name: str) -> tuple[str, str]:
        """An existing mailbox keeps its POP3 host and user; a new one is marked `import`."""
        with self.writer.engine.connect() as conn:
            row = conn.execute(
                select(Mailbox.host, Mailbox.username).where(Mailbox.name == name)
            ).first()
        return (str(row[0]), str(row[1])) if row is not None else (IMPORT_HOST, "")
