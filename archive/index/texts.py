"""The archive-wide cache of attachment text, keyed by SHA-256 (`mailarchive.extracted_text`):
each distinct attachment is extracted once, whichever message or mailbox brings it."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert

from archive.extract import EXTRACTOR_VERSION, Extraction, Status
from archive.index.models import ExtractedText


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def cached_texts(conn: Connection, sha256s: Collection[str]) -> dict[str, Extraction]:
    """The cached outcomes of these SHA-256s, from the current extractor version only."""
    if not sha256s:
        return {}
    rows = conn.execute(
        select(
            ExtractedText.sha256, ExtractedText.status, ExtractedText.content, ExtractedText.detail
        ).where(
            ExtractedText.sha256.in_(sorted(set(sha256s))),
            ExtractedText.extractor_version >= EXTRACTOR_VERSION,
        )
    )
    return {row.sha256: Extraction(Status(row.status), row.content, row.detail) for row in rows}


def save_texts(conn: Connection, fresh: Mapping[str, Extraction]) -> None:
    """Cache new outcomes, in the caller's transaction; an older version's row is replaced."""
    if not fresh:
        return
    statement = insert(ExtractedText).values(
        [
            {
                "sha256": sha256,
                "status": result.status.value,
                "detail": _clean(result.detail) if result.detail else None,
                "content": _clean(result.text),
                "extractor_version": EXTRACTOR_VERSION,
            }
            for sha256, result in sorted(fresh.items())
        ]
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[ExtractedText.sha256],
            set_={
                "status": statement.excluded.status,
                "detail": statement.excluded.detail,
                "content": statement.excluded.content,
                "extractor_version": statement.excluded.extractor_version,
                "extracted_at": statement.excluded.extracted_at,
            },
            where=ExtractedText.extractor_version < statement.excluded.extractor_version,
        )
    )
