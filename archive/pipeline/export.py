"""`mailarchive export`: the messages a search finds, as mbox, a ZIP of .eml files or a
Maildir, with a manifest, optionally as a BagIt bag, to a folder or to S3.

Every original is read back verified (`spool_verified`: the bytes must hash to the SHA-256 it
is stored under) before one byte of it is written; a damaged or missing original stops the
export with `TransferError` naming it, or with `skip_damaged` is left out and listed in the
manifest (status `skipped`). Matches are read newest first, every one of them, a page at a
time inside one REPEATABLE READ snapshot: mail archived meanwhile neither shifts the pages nor
joins half an export.

The export is written to a local folder (for S3: a temporary one, then uploaded with
`put_verified`, each file read back). Layout: `messages.mbox` | `messages.zip` |
`maildir/{new,cur,tmp}`, `manifest.csv`, `manifest.csv.sha256` (`sha256sum -c` reads it);
with `bagit`, all of it under `data/` of a bag with SHA-256 manifests.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Connection, Engine, text

from archive.errors import ArchiveError, TransferError
from archive.index.search import search_page
from archive.pipeline.export_output import Output, open_output, upload_tree
from archive.pipeline.transfer_audit import record_transfer
from archive.store import ObjectStore, open_store, raw_key, spool_verified

if TYPE_CHECKING:
    from archive.config import Settings

Format = Literal["mbox", "eml-zip", "maildir"]
FORMATS: tuple[Format, ...] = ("mbox", "eml-zip", "maildir")
PAGE = 500
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = (
    "sha256",
    "size",
    "mailbox",
    "uidl",
    "archived_at",
    "message_id",
    "date",
    "from",
    "subject",
    "file",
    "status",
)
Progress = Callable[[int, int], None]
"""Called with (messages done, messages matched) after each message."""

# One row per delivery on the page: the search returns (message id, mailbox, uidl text).
_DETAILS = text(
    "SELECT DISTINCT ON (m.id, b.name, d.uidl) m.id, b.name AS mailbox, d.uidl, m.sha256, "
    "m.size, d.archived_at, m.message_id, m.sent_at, m.subject, "
    "(SELECT a.address FROM mailarchive.address a WHERE a.message_id = m.id "
    " AND a.role = 'from' ORDER BY a.ordinal LIMIT 1) AS from_address, "
    "(SELECT h.value FROM mailarchive.header_field h WHERE h.message_id = m.id "
    " AND h.name = 'return-path' AND h.part_path IS NULL ORDER BY h.ordinal LIMIT 1) "
    "AS return_path "
    "FROM mailarchive.delivery d JOIN mailarchive.message m ON m.id = d.message_id "
    "JOIN mailarchive.mailbox b ON b.id = d.mailbox_id "
    "WHERE m.id = ANY(:ids) ORDER BY m.id, b.name, d.uidl, d.archived_at"
)


@dataclass(frozen=True, slots=True)
class ExportRequest:
    query: str
    out: str
    format: Format = "mbox"
    mailbox: str | None = None
    since: date | None = None
    until: date | None = None
    skip_damaged: bool = False
    bagit: bool = False


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One matching delivery: what the manifest says of it."""

    sha256: str
    size: int
    mailbox: str
    uidl: str
    archived_at: str
    message_id: str
    date: str
    from_address: str
    subject: str
    # Return-Path (the envelope sender, RFC 5321 §4.4) for the mbox separator line.
    return_path: str = ""

    @property
    def envelope_sender(self) -> str:
        """Return-Path's address, else From's; MAILER-DAEMON for the null sender `<>`."""
        if self.return_path:
            return self.return_path.strip().strip("<>").strip() or "MAILER-DAEMON"
        return self.from_address


@dataclass(frozen=True, slots=True)
class ExportResult:
    out: str
    format: Format
    query: str
    matched: int
    exported: int
    bytes: int
    skipped: tuple[str, ...]
    manifest_sha256: str
    seconds: float
    bag: bool = False
    files: tuple[str, ...] = field(default=(), repr=False)

    @property
    def rate(self) -> float:
        return self.exported / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        skipped = f", {len(self.skipped)} damaged skipped" if self.skipped else ""
        return (
            f"exported {self.exported} of {self.matched} messages ({self.bytes} bytes) as "
            f"{self.format} to {self.out}{skipped}; manifest sha256 {self.manifest_sha256}"
            f" ({self.rate:.0f} messages/s)"
        )


def full_query(query: str, mailbox: str | None, since: date | None, until: date | None) -> str:
    """The search query with the options as terms: `mailbox:`, `after:` (since, inclusive)
    and `before:` (the day after `until`, so until is inclusive)."""
    terms = [query.strip()] if query.strip() else []
    if mailbox:
        terms.append(f'mailbox:"{mailbox}"' if " " in mailbox else f"mailbox:{mailbox}")
    if since:
        terms.append(f"after:{since.isoformat()}")
    if until:
        terms.append(f"before:{(until + timedelta(days=1)).isoformat()}")
    return " ".join(terms)


@contextmanager
def matching_rows(engine: Engine, query: str) -> Iterator[tuple[int, Iterator[ExportRow]]]:
    """How many deliveries match, and each of them, newest first (all of them), from one
    snapshot."""
    with engine.connect() as conn, conn.begin():
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        if query:
            total = conn.execute(text("SELECT archive.search_count(:q)"), {"q": query})
        else:
            total = conn.execute(text("SELECT count(*) FROM mailarchive.delivery"))
        yield int(total.scalar_one()), _rows(conn, query)


def _rows(conn: Connection, query: str) -> Iterator[ExportRow]:
    offset = 0
    while page := _page(conn, query, offset):
        yield from page
        offset += PAGE


def _page(conn: Connection, query: str, offset: int) -> list[ExportRow]:
    if query:
        hits = conn.execute(
            text("SELECT id, mailbox, uidl FROM archive.search(:q, :n, :o, 'newest')"),
            {"q": query, "n": PAGE, "o": offset},
        ).all()
    else:
        hits = conn.execute(
            text(
                "SELECT m.id, b.name, d.uidl FROM mailarchive.delivery d "
                "JOIN mailarchive.message m ON m.id = d.message_id "
                "JOIN mailarchive.mailbox b ON b.id = d.mailbox_id "
                "ORDER BY m.sent_at DESC NULLS LAST, m.id DESC, d.id LIMIT :n OFFSET :o"
            ),
            {"n": PAGE, "o": offset},
        ).all()
    if not hits:
        return []
    details = {
        (row.id, row.mailbox, row.uidl): row
        for row in conn.execute(_DETAILS, {"ids": sorted({hit[0] for hit in hits})})
    }
    rows = []
    for hit in hits:
        row = details[(hit[0], hit[1], hit[2])]
        rows.append(
            ExportRow(
                sha256=row.sha256,
                size=row.size,
                mailbox=row.mailbox,
                uidl=row.uidl,
                archived_at=row.archived_at.isoformat(),
                message_id=row.message_id or "",
                date=row.sent_at.isoformat() if row.sent_at else "",
                from_address=row.from_address or "",
                subject=row.subject or "",
                return_path=row.return_path or "",
            )
        )
    return rows


def export(
    engine: Engine, store: ObjectStore, request: ExportRequest, progress: Progress | None = None
) -> ExportResult:
    """Write the export `request` describes; raises TransferError for a damaged original
    (unless `skip_damaged`), a malformed query (QueryError) or an output that is in use."""
    started = time.monotonic()
    query = full_query(request.query, request.mailbox, request.since, request.until)
    if query:
        search_page(engine, query, limit=1)  # a malformed query: QueryError, nothing written
    remote = request.out.startswith("s3://")
    staging = Path(tempfile.mkdtemp(prefix="mailarchive-export-")) if remote else None
    root = staging if staging is not None else _local_root(request.out)
    try:
        with matching_rows(engine, query) as (total, rows):
            exported, size, skipped = _write(store, root, request, rows, total, progress)
        manifest_sha256 = hashlib.sha256((root / MANIFEST).read_bytes()).hexdigest()
        (root / f"{MANIFEST}.sha256").write_text(f"{manifest_sha256}  {MANIFEST}\n")
        if request.bagit:
            _make_bag(root, request, query, exported)
        files = tuple(str(p.relative_to(root)) for p in sorted(root.rglob("*")) if p.is_file())
        if staging is not None:
            upload_tree(staging, request.out)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    result = ExportResult(
        out=request.out,
        format=request.format,
        query=query,
        matched=total,
        exported=exported,
        bytes=size,
        skipped=tuple(skipped),
        manifest_sha256=manifest_sha256,
        seconds=time.monotonic() - started,
        bag=request.bagit,
        files=files,
    )
    record_transfer(engine, "export", result.summary())
    return result


def _local_root(out: str) -> Path:
    root = Path(out)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise TransferError(f"export: {out} exists and is not an empty folder")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _write(
    store: ObjectStore,
    root: Path,
    request: ExportRequest,
    rows: Iterator[ExportRow],
    total: int,
    progress: Progress | None,
) -> tuple[int, int, list[str]]:
    exported = size = done = 0
    skipped: list[str] = []
    with (
        open_output(root, request.format) as output,
        (root / MANIFEST).open("w", newline="", encoding="utf-8") as manifest_file,
    ):
        manifest = csv.writer(manifest_file)
        manifest.writerow(MANIFEST_COLUMNS)
        for row in rows:
            name, status = _one(store, output, row, request.skip_damaged, exported + 1)
            if status == "exported":
                exported += 1
                size += row.size
            else:
                skipped.append(row.sha256)
            manifest.writerow(_manifest_fields(row, name, status))
            done += 1
            if progress is not None:
                progress(done, total)
    return exported, size, skipped


def _one(
    store: ObjectStore, output: Output, row: ExportRow, skip_damaged: bool, number: int
) -> tuple[str, str]:
    try:
        spool = spool_verified(store, raw_key(row.sha256), row.sha256)
    except ArchiveError as exc:
        if not skip_damaged:
            raise TransferError(
                f"export stopped: message sha256 {row.sha256} (mailbox {row.mailbox!r}, "
                f"UIDL {row.uidl}) is damaged or missing: {exc}"
            ) from exc
        return "", f"skipped: {type(exc).__name__}"
    with spool:
        name = output.add(number, row, spool)
    return name, "exported"


def _manifest_fields(row: ExportRow, name: str, status: str) -> list[str]:
    return [
        row.sha256,
        str(row.size),
        row.mailbox,
        row.uidl,
        row.archived_at,
        row.message_id,
        row.date,
        row.from_address,
        row.subject,
        name,
        status,
    ]


def _make_bag(root: Path, request: ExportRequest, query: str, exported: int) -> None:
    import bagit  # type: ignore[import-untyped]

    bagit.make_bag(
        str(root),
        {
            "Source-Organization": "mailarchive",
            "External-Description": f"mailarchive export ({request.format}) of query: {query}",
            "Bag-Count": "1 of 1",
            "Internal-Sender-Identifier": f"{exported} messages",
        },
        checksums=["sha256"],
    )


def export_from_settings(
    settings: Settings, request: ExportRequest, progress: Progress | None = None
) -> ExportResult:
    """`export` over the settings' database and store (the flow's entry, which builds no
    engine or store itself)."""
    from archive.pipeline.build import open_database

    _, engine = open_database(settings, pool_size=1)
    try:
        return export(engine, open_store(settings.resolved_store_url), request, progress)
    finally:
        engine.dispose()
