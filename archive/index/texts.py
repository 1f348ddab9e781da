"""The archive-wide cache of attachment text, keyed by SHA-256 (`mailarchive.extracted_text`):
each distinct attachment is extracted once, whichever message or mailbox brings it.

Both statements are fixed texts on the driver's cursor (`archive.index.prepared`): the
lookup takes the SHA-256s as one array, the save its rows as one JSON text, as the message's
own statement does (`archive.index.writes`)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping

from sqlalchemy import Connection, Table

from archive.extract import EXTRACTOR_VERSION, Extraction, Status
from archive.index import prepared
from archive.index.models import ExtractedText

_TABLE: Table = ExtractedText.__table__  # type: ignore[assignment]

CACHED = (
    f"SELECT sha256, status, content, detail FROM {_TABLE.fullname} "
    "WHERE sha256 = ANY(%(sha256s)s::varchar[]) AND extractor_version >= %(version)s"
)

# extracted_at: the server's default, in a replaced row too (`excluded` carries it).
SAVE = (
    f"INSERT INTO {_TABLE.fullname} AS x (sha256, status, detail, content, extractor_version) "
    "SELECT r.sha256, r.status, r.detail, r.content, %(version)s "
    "FROM json_to_recordset(%(rows)s::json) AS r(sha256 varchar, status varchar, detail text, "
    "content text) "
    "ON CONFLICT (sha256) DO UPDATE SET status = excluded.status, detail = excluded.detail, "
    "content = excluded.content, extractor_version = excluded.extractor_version, "
    "extracted_at = excluded.extracted_at "
    "WHERE x.extractor_version < excluded.extractor_version"
)


def _clean(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def cached_texts(conn: Connection, sha256s: Collection[str]) -> dict[str, Extraction]:
    """The cached outcomes of these SHA-256s (hex), from the current extractor version only;
    SHA-256 → outcome, for those found."""
    if not sha256s:
        return {}
    rows = prepared.fetch_all(
        conn, CACHED, {"sha256s": sorted(set(sha256s)), "version": EXTRACTOR_VERSION}
    )
    return {
        sha256: Extraction(Status(status), content, detail)
        for sha256, status, content, detail in rows
    }


def save_texts(conn: Connection, fresh: Mapping[str, Extraction]) -> None:
    """Cache new outcomes (SHA-256 → outcome), in the caller's transaction; an older
    version's row is replaced, a current one kept."""
    if not fresh:
        return
    # Sorted: two mailboxes saving the same texts take the rows' locks in the same order.
    rows = [
        {
            "sha256": sha256,
            "status": result.status.value,
            "detail": _clean(result.detail) if result.detail else None,
            "content": _clean(result.text),
        }
        for sha256, result in sorted(fresh.items())
    ]
    prepared.execute(
        conn,
        SAVE,
        {
            "rows": json.dumps(rows, ensure_ascii=False, separators=(",", ":")),
            "version": EXTRACTOR_VERSION,
        },
    )
