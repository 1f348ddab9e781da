"""The SQL of retention: which deliveries a policy expires, and their removal in batches.

Expired deliveries are collected in a session temporary table (`retention_expired`), so the
dry run and the removal count the same rows. A message is removed with its last delivery;
held messages are never collected, and the DELETEs check holds again (a hold placed during
the run wins; the triggers of migration 0009 are the last word).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

_CREATE = text(
    "CREATE TEMPORARY TABLE IF NOT EXISTS retention_expired "
    "(delivery_id bigint PRIMARY KEY, message_id bigint NOT NULL, mailbox_id integer NOT NULL)"
)
_AGE = (
    "CASE WHEN :from_sent THEN coalesce(m.sent_at, d.archived_at) ELSE d.archived_at END "
    "< now() - make_interval(years => :years, days => :days)"
)


@dataclass(frozen=True, slots=True)
class Expired:
    """What a policy expires in one mailbox: deliveries to remove, and held ones kept."""

    mailbox: str
    cutoff: datetime | None
    deliveries: int
    held: int


def collect(conn: Connection, mailbox: str, years: int, days: int, from_sent: bool) -> Expired:
    """Add the mailbox's expired, unheld deliveries to `retention_expired`."""
    conn.execute(_CREATE)
    params = {"mailbox": mailbox, "years": years, "days": days, "from_sent": from_sent}
    cutoff = conn.execute(
        text("SELECT now() - make_interval(years => :years, days => :days)"), params
    ).scalar_one()
    base = (
        "FROM mailarchive.delivery d JOIN mailarchive.mailbox b ON b.id = d.mailbox_id "
        f"JOIN mailarchive.message m ON m.id = d.message_id WHERE b.name = :mailbox AND {_AGE}"
    )
    added = conn.execute(
        text(
            "INSERT INTO retention_expired SELECT d.id, d.message_id, d.mailbox_id "
            f"{base} AND NOT mailarchive.is_held(d.message_id) ON CONFLICT DO NOTHING"
        ),
        params,
    ).rowcount
    held = conn.execute(
        text(f"SELECT count(*) {base} AND mailarchive.is_held(d.message_id)"), params
    ).scalar_one()
    return Expired(mailbox=mailbox, cutoff=cutoff, deliveries=added, held=int(held))


def messages_to_remove(conn: Connection) -> int:
    """Messages every delivery of which is expired: removed with them."""
    return int(
        conn.execute(
            text(
                "SELECT count(DISTINCT e.message_id) FROM retention_expired e WHERE NOT EXISTS "
                "(SELECT FROM mailarchive.delivery d WHERE d.message_id = e.message_id "
                "AND d.id NOT IN (SELECT delivery_id FROM retention_expired))"
            )
        ).scalar_one()
    )


@dataclass(frozen=True, slots=True)
class Removed:
    deliveries: int
    messages: int


def remove_batch(conn: Connection, size: int) -> Removed | None:
    """Remove up to `size` collected deliveries, and the messages left without any delivery,
    in `conn`'s transaction; None when nothing is left to remove."""
    batch = conn.execute(
        text(
            "DELETE FROM retention_expired WHERE delivery_id IN (SELECT delivery_id FROM "
            "retention_expired ORDER BY delivery_id LIMIT :n) RETURNING delivery_id, message_id"
        ),
        {"n": size},
    ).all()
    if not batch:
        return None
    deliveries = conn.execute(
        text(
            "DELETE FROM mailarchive.delivery WHERE id = ANY(:ids) "
            "AND NOT mailarchive.is_held(message_id)"
        ),
        {"ids": [row.delivery_id for row in batch]},
    ).rowcount
    candidates = sorted({row.message_id for row in batch})
    # The text extracted from an attachment goes when no remaining attachment has its bytes.
    attachments = list(
        conn.execute(
            text("SELECT DISTINCT sha256 FROM mailarchive.attachment WHERE message_id = ANY(:ids)"),
            {"ids": candidates},
        ).scalars()
    )
    messages = conn.execute(
        text(
            "DELETE FROM mailarchive.message m WHERE m.id = ANY(:ids) AND NOT EXISTS "
            "(SELECT FROM mailarchive.delivery d WHERE d.message_id = m.id) "
            "AND NOT mailarchive.is_held(m.id)"
        ),
        {"ids": candidates},
    ).rowcount
    if attachments:
        conn.execute(
            text(
                "DELETE FROM mailarchive.extracted_text x WHERE x.sha256 = ANY(:hashes) "
                "AND NOT EXISTS (SELECT FROM mailarchive.attachment a WHERE a.sha256 = x.sha256)"
            ),
            {"hashes": attachments},
        )
    return Removed(deliveries=deliveries, messages=messages)


def discard(conn: Connection) -> None:
    """Forget what was collected (a mailbox skipped because a run holds it)."""
    conn.execute(text("DELETE FROM retention_expired"))


def drop(conn: Connection) -> None:
    conn.execute(text("DROP TABLE IF EXISTS retention_expired"))
