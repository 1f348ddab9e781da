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
from datetime import UTC, datetime, timedelta

from archive.config import MailboxConfig
from archive.errors import ArchiveError, IntegrityError
from archive.pipeline.ledger import SessionLedger
from archive.store import ObjectStore, raw_key, sha256_of_stream

log = logging.getLogger(__name__)


def cutoff_of(box: MailboxConfig, now: datetime) -> datetime | None:
    """``older_than``: copies first archived before this time may go; None otherwise."""
    if box.delete_older_than_days is None:
        return None
    return now - timedelta(days=box.delete_older_than_days)


def plan_deletions(
    box: MailboxConfig,
    store: ObjectStore,
    session: SessionLedger,
    archived_now: dict[int, int],
    *,
    now: datetime | None = None,
) -> dict[int, int]:
    """Message number → ledger row id of every message to DELE in this session.

    The ledger decides what the policy allows (`SessionLedger.deletions`); an earlier copy
    is kept unless its stored original hashes right again (`copy_is_intact`).
    """
    policy = box.delete_policy
    if policy == "keep":
        return {}
    allowed = session.deletions(
        archived_now,
        everything=policy == "after_archive",
        cutoff=cutoff_of(box, now or datetime.now(UTC)),
    )
    targets = dict(allowed.now)
    for number, entry in allowed.earlier.items():
        if copy_is_intact(store, entry.sha256):
            targets[number] = entry.id
    if allowed.ambiguous:
        log.warning(
            "mailbox %s: %d archived messages share a UIDL with another copy; they stay on "
            "the server",
            box.name,
            allowed.ambiguous,
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
