"""Row inserts for one parsed message: the message row, its addresses, attachments, header
fields, defects, text chunks and thread, in the caller's transaction (`archive.index.ledger` for the
transaction that records a delivery, `archive.pipeline.reindex` for a re-parse)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert

from archive.extract import EXTRACTOR_VERSION, AttachmentTexts, Extraction
from archive.index.chunks import text_chunks
from archive.index.models import (
    Address,
    Attachment,
    Defect,
    HeaderField,
    Message,
    TextChunk,
)
from archive.index.schema import TEXT_VECTOR
from archive.index.texts import save_texts
from archive.index.threads import thread_key
from archive.mime import PARSER_VERSION, ParsedMessage


def chunk_vector(subject: str, attachment_names: str, content: str) -> str:
    """SQL of a chunk's vector, from SQL expressions of its message's subject and file names
    (so "subject word + body word" queries match in any chunk) and of the chunk's text."""
    return (
        f"setweight({TEXT_VECTOR}(coalesce({subject}, '')), 'A') || "
        f"setweight({TEXT_VECTOR}(coalesce({attachment_names}, '')), 'C') || "
        f"setweight({TEXT_VECTOR}({content}), 'B')"
    )


# Computed by PostgreSQL from the stored message row.
_INSERT_CHUNK = text(
    "INSERT INTO mailarchive.text_chunk "
    "(message_id, ordinal, part_path, start_char, content, search) "
    "SELECT m.id, :ordinal, :part_path, :start_char, :content, "
    f"{chunk_vector('m.subject', 'm.attachment_names', ':content')} "
    "FROM mailarchive.message m WHERE m.id = :message_id"
)


def clean(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; malformed mail can. Keep everything else as is."""
    if text is None:
        return None
    return text.replace("\x00", "\ufffd")


def clean_required(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def thread_values(conn: Connection, parsed: ParsedMessage) -> dict[str, object]:
    """thread_id and thread_subject, looking up the parent or an earlier same-subject message."""
    key = thread_key(parsed)
    found = None
    if key.parent:
        found = conn.execute(
            select(Message.thread_id)
            .where(Message.message_id == clean(key.parent), Message.thread_id.is_not(None))
            .limit(1)
        ).scalar()
    elif key.by_subject_only and key.subject:
        found = conn.execute(
            select(Message.thread_id)
            .where(Message.thread_subject == clean(key.subject))
            .order_by(Message.id)
            .limit(1)
        ).scalar()
    return {
        "thread_id": clean(found or key.thread_id),
        "thread_subject": clean(key.subject),
    }


def message_values(
    sha256: str, size: int, parsed: ParsedMessage, texts: AttachmentTexts | None = None
) -> dict[str, object]:
    """The message row's columns; `texts` None: attachments not extracted (reindex will)."""
    return {
        "sha256": sha256,
        "size": size,
        "message_id": clean(parsed.message_id),
        "in_reply_to": clean(parsed.in_reply_to),
        "reference_ids": [clean_required(ref) for ref in parsed.references],
        "subject": clean(parsed.subject),
        "sent_at": parsed.sent_at,
        "has_attachments": bool(parsed.attachments),
        "attachment_names": clean(
            "\n".join(a.filename for a in parsed.attachments if a.filename) or None
        ),
        "body_text": clean_required(parsed.body_text),
        "part_count": parsed.part_count,
        "parser_version": PARSER_VERSION,
        "extract_version": EXTRACTOR_VERSION if texts is not None or not parsed.attachments else 0,
    }


def replace_parse(
    conn: Connection, message_id: int, parsed: ParsedMessage, texts: AttachmentTexts | None = None
) -> None:
    """Rewrite everything derived from parsing one message (reindex), in the caller's
    transaction: the message row's columns, then its addresses, attachments, headers and
    defects and text chunks. The row keeps its id, so deliveries and the ledger are
    untouched."""
    for table in (Address, Attachment, HeaderField, Defect, TextChunk):
        conn.execute(delete(table).where(table.message_id == message_id))
    row = conn.execute(select(Message.sha256, Message.size).where(Message.id == message_id)).one()
    values = message_values(row.sha256, row.size, parsed, texts)
    # Without this row's old values, thread lookups find what the first write found.
    conn.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(thread_id=None, thread_subject=None, message_id=None)
    )
    values.update(thread_values(conn, parsed))
    conn.execute(update(Message).where(Message.id == message_id).values(**values))
    insert_children(conn, message_id, parsed, texts)


@dataclass(frozen=True, slots=True)
class ChildRows:
    """The child rows of one parsed message, each a mapping of column name to value without
    `message_id` (the writer adds it): one list per table, in ordinal order."""

    address: list[dict[str, object]]
    attachment: list[dict[str, object]]
    text_chunk: list[dict[str, object]]
    header_field: list[dict[str, object]]
    defect: list[dict[str, object]]


def child_rows(parsed: ParsedMessage, texts: AttachmentTexts | None = None) -> ChildRows:
    """What `insert_children` and the one-statement writer (`archive.index.writes`) insert;
    `texts` gives each attachment its extraction status and the chunks their text."""
    extracted = texts.by_path if texts is not None else {}
    # The top-level fields (part_path NULL), then those of each enclosed message.
    fields = [*parsed.headers, *parsed.enclosed_headers]
    return ChildRows(
        address=[
            {
                "ordinal": n,
                "role": a.role,
                "name": clean_required(a.name),
                "address": clean_required(a.address),
            }
            for n, a in enumerate(parsed.addresses)
        ],
        attachment=[
            {
                "ordinal": n,
                "part_path": a.path,
                "filename": clean(a.filename),
                "content_type": clean_required(a.content_type),
                "disposition": clean(a.disposition),
                "content_id": clean(a.content_id),
                "size": a.size,
                "sha256": a.sha256,
                "text_status": _status(extracted, a.path),
                "text_detail": _detail(extracted, a.path),
            }
            for n, a in enumerate(parsed.attachments)
        ],
        text_chunk=[
            {
                "ordinal": n,
                "part_path": c.part_path,
                "start_char": c.start_char,
                "content": clean_required(c.content),
            }
            for n, c in enumerate(text_chunks(parsed, extracted))
        ],
        header_field=[
            {
                "ordinal": n,
                "part_path": h.part_path,
                "name": clean_required(h.name.lower()),
                "value": clean_required(h.value),
            }
            for n, h in enumerate(fields)
        ],
        defect=[
            {
                "ordinal": n,
                "kind": d.kind.value,
                "part_path": d.part_path,
                "detail": clean_required(d.detail),
            }
            for n, d in enumerate(parsed.defects)
        ],
    )


def insert_children(
    conn: Connection, message_id: int, parsed: ParsedMessage, texts: AttachmentTexts | None = None
) -> None:
    """The child rows of a re-parsed message (reindex), in the caller's transaction; `texts`
    caches fresh extractions. New messages take `archive.index.writes` instead."""
    if texts is not None:
        save_texts(conn, texts.fresh)
    rows = child_rows(parsed, texts)
    for table, values in (
        (Address, rows.address),
        (Attachment, rows.attachment),
        (HeaderField, rows.header_field),
        (Defect, rows.defect),
    ):
        if values:
            conn.execute(insert(table), [{"message_id": message_id, **row} for row in values])
    if rows.text_chunk:
        conn.execute(_INSERT_CHUNK, [{"message_id": message_id, **row} for row in rows.text_chunk])


def _status(extracted: Mapping[str, Extraction], path: str) -> str | None:
    found = extracted.get(path)
    return found.status.value if found is not None else None


def _detail(extracted: Mapping[str, Extraction], path: str) -> str | None:
    found = extracted.get(path)
    return clean(found.detail) if found is not None else None
