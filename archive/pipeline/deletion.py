"""Which messages a session may delete, by the mailbox's delete policy.

- ``keep`` (default): nothing.
- ``after_archive``: every message archived in this session, and every earlier one whose
  deletion was never confirmed (a failed QUIT, a crash, a policy switched on later).
- ``older_than``: messages the archive first saw more than ``delete_older_than_days`` ago.

A message archived in this session is identified by its message number, which is exact
within the session (RFC 1939 §4), and its copy was verified moments ago. An earlier one is
identified only by its UIDL, so it is deleted only if its UIDL names one copy, and only after
its stored copy is read back again with the right SHA-256.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from archive.config import MailboxConfig
from archive.errors import ArchiveError, IntegrityError
from archive.index.ledger import LedgerEntry
from archive.store import ObjectStore, raw_key, sha256_of_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A message on the server now (`number`) that the ledger says was archived earlier."""

    number: int
    entry: LedgerEntry


def plan_deletions(
    box: MailboxConfig,
    store: ObjectStore,
    archived_now: dict[int, int],
    earlier: list[Candidate],
    ambiguous: set[str],
) -> dict[int, int]:
    """Message number → ledger row id of every message to DELE in this session."""
    policy = box.delete_policy
    if policy == "keep":
        return {}
    targets = dict(archived_now) if policy == "after_archive" else {}
    cutoff = (
        datetime.now(UTC) - timedelta(days=box.delete_older_than_days)
        if box.delete_older_than_days is not None
        else None
    )
    skipped = 0
    for candidate in earlier:
        entry = candidate.entry
        if candidate.number in targets or entry.deleted_at is not None:
            continue
        if cutoff is not None and entry.archived_at > cutoff:
            continue
        if entry.uidl in ambiguous:
            skipped += 1
            continue
        if copy_is_intact(store, entry.sha256):
            targets[candidate.number] = entry.id
    if skipped:
        log.warning(
            "mailbox %s: %d archived messages share a UIDL with another copy; they stay on "
            "the server",
            box.name,
            skipped,
        )
    return targets


def copy_is_intact(store: ObjectStore, sha256: str) -> bool:
    """Read the stored raw message back; True only if it hashes to `sha256`."""
    try:
        with store.open(raw_key(sha256)) as stream:
            actual, _ = sha256_of_stream(stream)
    except (KeyError, ArchiveError, OSError) as exc:
        log.warning(
            "stored copy %s unreadable (%s); not deleting it from the server",
            sha256,
            type(exc).__name__,
        )
        return False
    if actual != sha256:
        log.error("%s", IntegrityError(f"stored copy {sha256} hashes to {actual}"))
        return False
    return True
