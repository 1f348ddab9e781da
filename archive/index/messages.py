"""Row inserts for one parsed message: the message row, its addresses, attachments, header
fields, defects, text chunks and thread, in the caller's transaction (`archive.index.ledger` for the
transaction that records a delivery, `archive.pipeline.reindex` for a re-parse)."""

from __future__ import annotations

from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert

from archive.index.chunks import text_chunks
from archive.index.models import (
    TEXT_CONFIG,
    Address,
    Attachment,
    Defect,
    HeaderField,
    Message,
    TextChunk,
)
from archive.index.threads import thread_key
from archive.mime import PARSER_VERSION, ParsedMessage

# The vector of a chunk: the message's subject (so "subject word + body word" queries
# match in any chunk) and the chunk's text, computed by PostgreSQL from the stored subject.
_INSERT_CHUNK = text(
    "INSERT INTO mailarchive.text_chunk "
    "(message_id, ordinal, part_path, start_char, content, search) "
    "SELECT m.id, :ordinal, :part_path, :start_char, :content, "
    f"setweight(to_tsvector('{TEXT_CONFIG}', coalesce(m.subject, '')), 'A') || "
    f"setweight(to_tsvector('{TEXT_CONFIG}', :content), 'B') "
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


def message_values(sha256: str, size: int, parsed: ParsedMessage) -> dict[str, object]:
    return {
        "sha256": sha256,
        "size": size,
        "message_id": clean(parsed.message_id),
        "in_reply_to": clean(parsed.in_reply_to),
        "reference_ids": [clean_required(ref) for ref in parsed.references],
        "subject": clean(parsed.subject),
        "sent_at": parsed.sent_at,
        "has_attachments": bool(parsed.attachments),
        "body_text": clean_required(parsed.body_text),
        "part_count": parsed.part_count,
        "parser_version": PARSER_VERSION,
    }


def replace_parse(conn: Connection, message_id: int, parsed: ParsedMessage) -> None:
    """Rewrite everything derived from parsing one message (reindex), in the caller's
    transaction: the message row's columns, then its addresses, attachments, headers and
    defects and text chunks. The row keeps its id, so deliveries and the ledger are
    untouched."""
    for table in (Address, Attachment, HeaderField, Defect, TextChunk):
        conn.execute(delete(table).where(table.message_id == message_id))
    row = conn.execute(select(Message.sha256, Message.size).where(Message.id == message_id)).one()
    values = message_values(row.sha256, row.size, parsed)
    # Without this row's old values, thread lookups find what the first write found.
    conn.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(thread_id=None, thread_subject=None, message_id=None)
    )
    values.update(thread_values(conn, parsed))
    conn.execute(update(Message).where(Message.id == message_id).values(**values))
    insert_children(conn, message_id, parsed)


def insert_children(conn: Connection, message_id: int, parsed: ParsedMessage) -> None:
    if parsed.addresses:
        conn.execute(
            insert(Address),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "role": a.role,
                    "name": clean_required(a.name),
                    "address": clean_required(a.address),
                }
                for n, a in enumerate(parsed.addresses)
            ],
        )
    if parsed.attachments:
        conn.execute(
            insert(Attachment),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "part_path": a.path,
                    "filename": clean(a.filename),
                    "content_type": clean_required(a.content_type),
                    "disposition": clean(a.disposition),
                    "content_id": clean(a.content_id),
                    "size": a.size,
                    "sha256": a.sha256,
                }
                for n, a in enumerate(parsed.attachments)
            ],
        )
    chunks = text_chunks(parsed)
    if chunks:
        conn.execute(
            _INSERT_CHUNK,
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "part_path": c.part_path,
                    "start_char": c.start_char,
                    "content": clean_required(c.content),
                }
                for n, c in enumerate(chunks)
            ],
        )
    # The top-level fields (part_path NULL), then those of each enclosed message.
    fields = [*parsed.headers, *parsed.enclosed_headers]
    if fields:
        conn.execute(
            insert(HeaderField),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "part_path": h.part_path,
                    "name": clean_required(h.name.lower()),
                    "value": clean_required(h.value),
                }
                for n, h in enumerate(fields)
            ],
        )
    if parsed.defects:
        conn.execute(
            insert(Defect),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "kind": d.kind.value,
                    "part_path": d.part_path,
                    "detail": clean_required(d.detail),
                }
                for n, d in enumerate(parsed.defects)
            ],
        )
