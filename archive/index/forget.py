"""Forgetting a mailbox: its ledger and the rows of messages no other mailbox has.

What stays: messages also delivered to another mailbox (their rows, with that mailbox's
ledger), and every stored object. An original or attachment nothing references any more is
left for `mailarchive gc`, which deletes objects only while no run is writing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from archive.errors import ArchiveError
from archive.index import audit, holds
from archive.index.locks import mailbox_lock
from archive.index.schema import SCHEMA

__all__ = ["ForgetPlan", "Forgotten", "MailboxBusy", "MailboxHeld", "forget_mailbox", "plan_forget"]


class MailboxBusy(ArchiveError):
    """A run holds the mailbox's lock: forgetting now would race its ledger writes."""


class MailboxHeld(ArchiveError):
    """Messages only this mailbox has are under a legal hold: nothing is forgotten."""


@dataclass(frozen=True)
class ForgetPlan:
    """What forgetting `name` would remove, for the confirmation prompt."""

    name: str
    mailbox_id: int
    deliveries: int
    messages_only_here: int
    messages_shared: int


@dataclass(frozen=True)
class Forgotten:
    name: str
    deliveries: int
    messages: int


def plan_forget(conn: Connection, name: str) -> ForgetPlan | None:
    """Counts for `name`; None if the archive has no mailbox of that name."""
    mailbox_id = conn.execute(
        text(f"SELECT id FROM {SCHEMA}.mailbox WHERE name = :name"), {"name": name}
    ).scalar_one_or_none()
    if mailbox_id is None:
        return None
    row = conn.execute(
        text(
            f"""
            SELECT count(*) AS deliveries,
                   count(DISTINCT d.message_id) FILTER (WHERE NOT shared) AS only_here,
                   count(DISTINCT d.message_id) FILTER (WHERE shared) AS shared
              FROM (SELECT d.message_id, EXISTS (
                       SELECT 1 FROM {SCHEMA}.delivery o
                        WHERE o.message_id = d.message_id AND o.mailbox_id <> d.mailbox_id
                    ) AS shared
                      FROM {SCHEMA}.delivery d WHERE d.mailbox_id = :id) d
            """
        ),
        {"id": mailbox_id},
    ).one()
    return ForgetPlan(name, mailbox_id, row.deliveries, row.only_here, row.shared)


def held_messages_of(conn: Connection, mailbox_id: int) -> list[str]:
    """SHA-256s of the held messages delivered to this mailbox (`archive.holds`): while there
    are any, `forget` refuses, naming them. Shared messages count too: the hold triggers
    refuse to delete any delivery of a held message."""
    return holds.held_in_mailbox(conn, mailbox_id)


_ONLY_HERE = f"""
    SELECT DISTINCT d.message_id FROM {SCHEMA}.delivery d
     WHERE d.mailbox_id = :id
       AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.delivery o
                        WHERE o.message_id = d.message_id AND o.mailbox_id <> :id)
"""
_FORGET_EXTRACTED = f"""
    DELETE FROM {SCHEMA}.extracted_text e
     WHERE e.sha256 IN (SELECT a.sha256 FROM {SCHEMA}.attachment a
                         WHERE a.message_id IN (SELECT message_id FROM forgotten))
       AND NOT EXISTS (SELECT 1 FROM {SCHEMA}.attachment a
                        WHERE a.sha256 = e.sha256
                          AND a.message_id NOT IN (SELECT message_id FROM forgotten))
"""
_FORGET_MESSAGES = f"DELETE FROM {SCHEMA}.message WHERE id IN (SELECT message_id FROM forgotten)"


def forget_mailbox(conn: Connection, name: str) -> Forgotten:
    """Remove `name`'s ledger and the rows of the messages only it has, in one transaction,
    while holding the mailbox's lock (a run of it cannot start meanwhile).

    Raises MailboxBusy if a run holds the lock, MailboxHeld if a hold keeps any of them,
    ArchiveError if there is no such mailbox.
    """
    with mailbox_lock(conn, name) as held:
        if not held:
            raise MailboxBusy(
                f"mailbox {name!r} is being archived right now (its lock is held); "
                "forget it when that run has ended"
            )
        with conn.begin():
            plan = plan_forget(conn, name)
            if plan is None:
                raise ArchiveError(f"the archive has no mailbox named {name!r}")
            held_messages = held_messages_of(conn, plan.mailbox_id)
            if held_messages:
                shown = ", ".join(sha[:12] for sha in held_messages[:5])
                raise MailboxHeld(
                    f"mailbox {name!r}: {len(held_messages)} of its message(s) are under a "
                    f"legal hold ({shown}); nothing was forgotten"
                )
            conn.execute(
                text(f"CREATE TEMPORARY TABLE forgotten ON COMMIT DROP AS {_ONLY_HERE}"),
                {"id": plan.mailbox_id},
            )
            deliveries = conn.execute(
                text(f"DELETE FROM {SCHEMA}.delivery WHERE mailbox_id = :id"),
                {"id": plan.mailbox_id},
            ).rowcount
            # Messages no other mailbox has go, and their addresses, attachments, headers
            # and text with them (ON DELETE CASCADE); the text extracted from an attachment
            # goes with its last message. Shared messages keep every row.
            conn.execute(text(_FORGET_EXTRACTED))
            messages = conn.execute(text(_FORGET_MESSAGES)).rowcount
            conn.execute(
                text(f"DELETE FROM {SCHEMA}.mailbox WHERE id = :id"), {"id": plan.mailbox_id}
            )
            audit.record(
                conn, "forget", {"mailbox": name, "deliveries": deliveries, "messages": messages}
            )
    return Forgotten(name, deliveries=deliveries, messages=messages)
