"""Retention: remove the rows of messages older than their mailbox's policy.

A policy (the mailbox file: `retention_days` or `retention_years`, `retention_from` per
`[[mailbox]]`, or the file's top-level default) keeps a mailbox's messages N days or years
from the date sent (the Date header; an undated message counts from when it was archived)
or from the date archived. `run` is a dry run unless `apply`: it lists what would go, per
mailbox. Applied, it removes the expired deliveries of each mailbox, and a message with its
last delivery (its addresses, headers, attachments rows and text), a batch per transaction.

Held messages (archive.held_messages) are never removed. The stored objects the removed rows
referenced become orphans: `mailarchive gc` removes them under its own rules (older than its
grace period, never while an archive run writes), so retention never deletes from the store
itself. Each run, dry or applied, is recorded in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from archive.config import MailboxFile
from archive.config.mailboxes import RetentionFrom
from archive.index import audit, expiry, locks

BATCH = 500


@dataclass(frozen=True, slots=True)
class Policy:
    mailbox: str
    years: int
    days: int
    count_from: RetentionFrom
    # The server keeps the mail (no delete policy): what retention removes from the archive
    # is still there and the next run archives it again.
    server_keeps: bool

    def describe(self) -> str:
        span = f"{self.years} years" if self.years else f"{self.days} days"
        return f"{span} from the date {self.count_from}"


def policies(archive_file: MailboxFile) -> list[Policy]:
    """Each mailbox's effective policy; mailboxes with none are kept forever (not listed)."""
    found = []
    for box in archive_file.mailbox:
        if box.retention_days is not None or box.retention_years is not None:
            years, days = box.retention_years or 0, box.retention_days or 0
        elif archive_file.retention_days is not None or archive_file.retention_years is not None:
            years, days = archive_file.retention_years or 0, archive_file.retention_days or 0
        else:
            continue
        found.append(
            Policy(
                mailbox=box.name,
                years=years,
                days=days,
                count_from=box.retention_from or archive_file.retention_from,
                server_keeps=box.delete_policy == "keep",
            )
        )
    return found


@dataclass
class MailboxRetention:
    policy: Policy
    cutoff: datetime | None
    expired: int
    held: int
    busy: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "mailbox": self.policy.mailbox,
            "policy": self.policy.describe(),
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "expired_deliveries": self.expired,
            "held": self.held,
            "busy": self.busy,
            "server_keeps_mail": self.policy.server_keeps,
        }


@dataclass
class RetentionReport:
    applied: bool
    mailboxes: list[MailboxRetention] = field(default_factory=list)
    messages: int = 0
    """Messages removed (applied) or that would be (dry run): all their deliveries expired."""
    deliveries_removed: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "mailboxes": [box.as_json() for box in self.mailboxes],
            "messages": self.messages,
            "deliveries_removed": self.deliveries_removed,
            "held": sum(box.held for box in self.mailboxes),
        }


def run(
    engine: Engine, archive_file: MailboxFile, *, apply: bool = False, batch: int = BATCH
) -> RetentionReport:
    """Dry run, or (`apply`) remove what the policies expire. A mailbox an archive run holds
    is skipped (`busy`) when applying: the run's ledger must not change under it."""
    report = RetentionReport(applied=apply)
    with engine.connect() as conn:
        try:
            for policy in policies(archive_file):
                with locks.mailbox_lock(conn, policy.mailbox) as held:
                    with conn.begin():
                        found = expiry.collect(
                            conn,
                            policy.mailbox,
                            policy.years,
                            policy.days,
                            policy.count_from == "sent",
                        )
                    box = MailboxRetention(policy, found.cutoff, found.deliveries, found.held)
                    report.mailboxes.append(box)
                    if apply and not held:
                        box.busy = True
                        with conn.begin():
                            expiry.discard(conn)
                        continue
                    if apply:
                        while True:
                            with conn.begin():
                                removed = expiry.remove_batch(conn, batch)
                            if removed is None:
                                break
                            report.deliveries_removed += removed.deliveries
                            report.messages += removed.messages
            if not apply:
                with conn.begin():
                    report.messages = expiry.messages_to_remove(conn)
        finally:
            with conn.begin():
                audit.record(conn, "retention", report.as_json())
            with conn.begin():
                expiry.drop(conn)
    return report
