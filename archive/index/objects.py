"""Which stored objects the index references: the originals of `message` rows and the
decoded attachments of `attachment` rows. `verify` and `gc` compare these with the store."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection, text


@dataclass(frozen=True, slots=True)
class Reference:
    """An object the index needs: `kind` is "original" or "part", `sha256` names its bytes,
    `size` in bytes, and `label` says where it is used (mailbox and UIDL, or the message)."""

    kind: str
    sha256: str
    size: int
    label: str


_ORIGINALS = """
SELECT m.sha256, m.size,
       coalesce(min(b.name || ' UIDL ' || d.uidl), 'message ' || m.id) AS label
FROM mailarchive.message m
LEFT JOIN mailarchive.delivery d ON d.message_id = m.id
LEFT JOIN mailarchive.mailbox b ON b.id = d.mailbox_id
{where}
GROUP BY m.id, m.sha256, m.size
"""

_PARTS = """
SELECT a.sha256, min(a.size) AS size,
       min(coalesce(a.filename, a.content_type) || ' in message ' || m.sha256) AS label
FROM mailarchive.attachment a
JOIN mailarchive.message m ON m.id = a.message_id
{where}
GROUP BY a.sha256
"""

_IN_MAILBOX = """WHERE m.id IN (SELECT d2.message_id FROM mailarchive.delivery d2
                 JOIN mailarchive.mailbox b2 ON b2.id = d2.mailbox_id WHERE b2.name = :mailbox)"""


def references(conn: Connection, mailbox: str | None = None) -> Iterator[Reference]:
    """Every object the index references (or those of one mailbox's messages), streamed."""
    where = _IN_MAILBOX if mailbox is not None else ""
    params = {"mailbox": mailbox} if mailbox is not None else {}
    for kind, sql in (("original", _ORIGINALS), ("part", _PARTS)):
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            text(sql.format(where=where)), params
        )
        for sha256, size, label in result:
            yield Reference(kind, sha256, int(size), label)


def count_references(conn: Connection, mailbox: str | None = None) -> int:
    """How many objects `references` yields, for a progress bar."""
    where = _IN_MAILBOX if mailbox is not None else ""
    params = {"mailbox": mailbox} if mailbox is not None else {}
    total = 0
    for sql in (_ORIGINALS, _PARTS):
        total += int(
            conn.execute(
                text(f"SELECT count(*) FROM ({sql.format(where=where)}) q"), params
            ).scalar_one()
        )
    return total


def is_referenced(conn: Connection, kind: str, sha256: str) -> bool:
    """Whether any row references this object now (checked again by gc before each delete)."""
    table = "message" if kind == "original" else "attachment"
    found = conn.execute(
        text(f"SELECT EXISTS (SELECT 1 FROM mailarchive.{table} WHERE sha256 = :sha)"),
        {"sha": sha256},
    ).scalar_one()
    return bool(found)


def message_ids(conn: Connection, shas: Iterable[str]) -> dict[str, str | None]:
    """The indexed Message-ID of each original in `shas` (None where it had none)."""
    rows = conn.execute(
        text("SELECT sha256, message_id FROM mailarchive.message WHERE sha256 = ANY(:shas)"),
        {"shas": sorted(set(shas))},
    )
    return {str(sha): message_id for sha, message_id in rows}


def originals_with_prefix(conn: Connection, prefix: str, limit: int = 2) -> list[str]:
    """The SHA-256s of stored originals starting with `prefix` (lowercase hex), at most
    `limit`: `cat` takes a unique prefix, as git does. A range on the unique index, not LIKE,
    so any collation uses it."""
    rest = 64 - len(prefix)
    rows = conn.execute(
        text(
            "SELECT sha256 FROM mailarchive.message WHERE sha256 BETWEEN :lo AND :hi "
            "ORDER BY sha256 LIMIT :limit"
        ),
        {"lo": prefix + "0" * rest, "hi": prefix + "f" * rest, "limit": limit},
    )
    return [row[0] for row in rows if row[0].startswith(prefix)]
