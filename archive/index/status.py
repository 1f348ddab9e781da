"""What `mailarchive status` reports, read from the index: per mailbox, its last run and last
successful run (`mailarchive.mailbox_run`), when it was last logged into and last archived
to, its deliveries and what they weigh; the archive's size."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

_MAILBOXES = text(
    """
SELECT b.name, b.host, b.last_login_at, s.last_archived_at, s.messages, s.deleted_on_server,
       s.bytes, last.finished_at AS last_run_at, last.status AS last_run_status,
       last.archived AS last_run_archived, last.error AS last_run_error,
       success.finished_at AS last_success_at
FROM mailarchive.mailbox b
CROSS JOIN LATERAL (
    SELECT max(d.archived_at) AS last_archived_at, count(d.id) AS messages,
           count(d.deleted_at) AS deleted_on_server, coalesce(sum(m.size), 0)::bigint AS bytes
    FROM mailarchive.delivery d JOIN mailarchive.message m ON m.id = d.message_id
    WHERE d.mailbox_id = b.id
) s
LEFT JOIN LATERAL (
    SELECT finished_at, status, archived, error FROM mailarchive.mailbox_run r
    WHERE r.mailbox_id = b.id ORDER BY finished_at DESC, id DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT finished_at FROM mailarchive.mailbox_run r
    WHERE r.mailbox_id = b.id AND r.status = 'ok' ORDER BY finished_at DESC, id DESC LIMIT 1
) success ON true
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
    to it, each counted once per delivery; `last_run_*`: the run that ended last (an
    attempt: a retried run's last attempt), whatever its status; `last_success_at`: the
    last run that ended `ok`."""

    name: str
    host: str
    last_login_at: datetime | None
    last_archived_at: datetime | None
    messages: int
    deleted_on_server: int
    bytes: int
    last_run_at: datetime | None = None
    last_run_status: str | None = None
    last_run_archived: int | None = None
    last_run_error: str | None = None
    last_success_at: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "last_run": (
                {
                    "finished_at": self.last_run_at.isoformat(),
                    "status": self.last_run_status,
                    "archived": self.last_run_archived,
                    "error": self.last_run_error,
                }
                if self.last_run_at
                else None
            ),
            "last_success_at": _iso(self.last_success_at),
            "last_login_at": _iso(self.last_login_at),
            "last_archived_at": _iso(self.last_archived_at),
            "messages": self.messages,
            "deleted_on_server": self.deleted_on_server,
            "bytes": self.bytes,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


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
