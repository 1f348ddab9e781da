"""What `mailarchive status` reports, read from the index: per mailbox, when it was last
logged into and last archived to, its deliveries and what they weigh; the archive's size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

_MAILBOXES = text(
    """
SELECT b.name, b.host, b.last_login_at, max(d.archived_at) AS last_archived_at,
       count(d.id) AS messages, count(d.deleted_at) AS deleted_on_server,
       coalesce(sum(m.size), 0)::bigint AS bytes
FROM mailarchive.mailbox b
LEFT JOIN mailarchive.delivery d ON d.mailbox_id = b.id
LEFT JOIN mailarchive.message m ON m.id = d.message_id
GROUP BY b.id
ORDER BY b.name
"""
)
_ORIGINALS = text("SELECT count(*), coalesce(sum(size), 0) FROM mailarchive.message")
_PARTS = text(
    "SELECT count(*), coalesce(sum(size), 0) FROM "
    "(SELECT DISTINCT ON (sha256) size FROM mailarchive.attachment ORDER BY sha256) p"
)


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """One mailbox as the index knows it. `last_login_at`: the last session that logged in
    (a run that failed before login leaves it unchanged); `bytes`: the originals delivered
    to it, each counted once per delivery."""

    name: str
    host: str
    last_login_at: datetime | None
    last_archived_at: datetime | None
    messages: int
    deleted_on_server: int
    bytes: int

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
            "last_archived_at": (
                self.last_archived_at.isoformat() if self.last_archived_at else None
            ),
            "messages": self.messages,
            "deleted_on_server": self.deleted_on_server,
            "bytes": self.bytes,
        }


@dataclass(frozen=True, slots=True)
class ArchiveSize:
    """Distinct stored objects: originals and attachment parts, each stored once."""

    originals: int
    original_bytes: int
    parts: int
    part_bytes: int


def mailbox_status(conn: Connection) -> list[MailboxStatus]:
    return [MailboxStatus(**row._asdict()) for row in conn.execute(_MAILBOXES)]


def archive_size(conn: Connection) -> ArchiveSize:
    originals, original_bytes = conn.execute(_ORIGINALS).one()
    parts, part_bytes = conn.execute(_PARTS).one()
    return ArchiveSize(int(originals), int(original_bytes), int(parts), int(part_bytes))
