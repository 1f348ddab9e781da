"""The audit trail (migration 0009): `record` appends a row, `verify_chain` checks the hash
chain, `entries` reads the newest rows.

The table `mailarchive.audit_log` is append-only: a trigger refuses UPDATE, DELETE and
TRUNCATE, and another fills the timestamp, the database role (`session_user`), the client
address and the chain on every insert: `sha256` covers the row's fields and the previous
row's `sha256`, so an edited row, or a removed one with rows after it, breaks the chain.
`archive.search` and `archive.search_count` record themselves, from psql too.

`record` writes in the caller's transaction: the row commits or rolls back with the change
it describes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, text

from archive.index.identity import OS_USER_SQL, os_user

Action = Literal[
    "search",
    "search_count",
    "export",
    "import",
    "hold_create",
    "hold_release",
    "retention",
    "forget",
]

_RECORD = text("SELECT mailarchive.audit_record(:action, CAST(:details AS jsonb))")
_OS_USER = text(OS_USER_SQL)


def identify(conn: Connection) -> None:
    """Name this process's OS user to the database for the rest of the transaction, so rows
    the SQL functions record (searches) carry it too."""
    conn.execute(_OS_USER, {"user": os_user()})


def record(conn: Connection, action: Action | str, details: Mapping[str, Any]) -> int:
    """Append one audit row in `conn`'s transaction; returns its id. `details` must be
    JSON-serialisable (dates as ISO strings)."""
    identify(conn)
    row = conn.execute(
        _RECORD, {"action": action, "details": json.dumps(dict(details), default=str)}
    )
    return int(row.scalar_one())


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    at: datetime
    action: str
    db_role: str
    os_user: str | None
    details: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "action": self.action,
            "db_role": self.db_role,
            "os_user": self.os_user,
            "details": self.details,
        }


def entries(conn: Connection, limit: int = 50, action: str | None = None) -> list[Entry]:
    """The newest `limit` rows, newest first, optionally of one action."""
    rows = conn.execute(
        text(
            "SELECT id, at, action, db_role, os_user, details FROM mailarchive.audit_log "
            "WHERE CAST(:action AS text) IS NULL OR action = :action ORDER BY id DESC LIMIT :n"
        ),
        {"action": action, "n": limit},
    )
    return [Entry(**row._asdict()) for row in rows]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """`rows` checked; `broken`: ids whose hash does not match their fields, or whose
    `prev_sha256` is not the hash of the row before."""

    rows: int
    broken: list[int]

    @property
    def ok(self) -> bool:
        return not self.broken


def verify_chain(conn: Connection) -> ChainReport:
    """Recompute every row's hash in id order and follow the chain.

    Detects an edited row and a removed row that had rows after it. It cannot detect the
    removal of the newest rows (the chain then simply ends earlier), nor a rewrite of the
    whole chain by someone who can disable the triggers (a superuser or the table's owner):
    copy `archive.audit` elsewhere, or its newest `sha256`, to prove those too.
    """
    rows = conn.execute(
        text(
            "SELECT id, prev_sha256, sha256, mailarchive.audit_row_hash(prev_sha256, at, action, "
            "db_role, os_user, client, details) AS computed FROM mailarchive.audit_log ORDER BY id"
        )
    )
    broken: list[int] = []
    previous: str | None = None
    count = 0
    for row in rows:
        count += 1
        if row.sha256 != row.computed or row.prev_sha256 != previous:
            broken.append(int(row.id))
        previous = row.sha256
    return ChainReport(rows=count, broken=broken)
