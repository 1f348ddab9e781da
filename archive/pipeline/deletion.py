"""Which messages a session may delete, by the mailbox's delete policy and on evidence.

- ``keep`` (default): nothing.
- ``after_archive``: every message archived in this session, and every earlier one whose
  deletion was never confirmed (a failed QUIT, a crash, a policy switched on later).
- ``older_than``: messages the archive first saw more than ``delete_older_than_days`` ago.

The policy only proposes. A message archived in this session is identified by its message
number, exact within the session (RFC 1939 §4), and its bytes were hashed and stored moments
ago. An earlier one is known only by its ledger row, and a row is not evidence: before it may
go, `archive.pipeline.evidence` shows the server's message to be the archived original (LIST
size and `TOP n 0` header block against the verified stored original), or the archiver
retrieves it and its hash must equal the row's. An earlier copy whose UIDL names several
copies, now or ever, is left on the server.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

from archive.config import MailboxConfig
from archive.pipeline.evidence import Evidence
from archive.pipeline.ledger import Deletions, SessionLedger

log = logging.getLogger(__name__)


def cutoff_of(box: MailboxConfig, now: datetime) -> datetime | None:
    """``older_than``: copies first archived before this time may go; None otherwise."""
    if box.delete_older_than_days is None:
        return None
    return now - timedelta(days=box.delete_older_than_days)


def allowed_by_policy(
    box: MailboxConfig,
    session: SessionLedger,
    archived_now: Mapping[int, int],
    *,
    now: datetime | None = None,
) -> Deletions:
    """What the policy would delete; before retrieval (`archived_now` empty) its `earlier`
    copies are the candidates whose evidence the archiver gathers."""
    if box.delete_policy == "keep":
        return Deletions()
    return session.deletions(
        dict(archived_now),
        everything=box.delete_policy == "after_archive",
        cutoff=cutoff_of(box, now or datetime.now(UTC)),
    )


def plan_deletions(
    box: MailboxConfig,
    session: SessionLedger,
    archived_now: Mapping[int, int],
    evidence: Evidence,
    *,
    withheld: Collection[int] = (),
    now: datetime | None = None,
) -> dict[int, int]:
    """Message number → ledger row id of every message to DELE in this session.

    `archived_now`: number → row of each copy retrieved, hashed and stored in this session.
    An earlier copy goes only with evidence: proven by its header block, or retrieved in
    this session as that very row. `withheld`: numbers never to delete (a stored original
    the server's copy could not repair).
    """
    allowed = allowed_by_policy(box, session, archived_now, now=now)
    targets = dict(allowed.now)
    for number, entry in allowed.earlier.items():
        retrieved_as_it = number in evidence.fetch and archived_now.get(number) == entry.id
        if evidence.proven.get(number) == entry.id or retrieved_as_it:
            targets[number] = entry.id
    if allowed.ambiguous:
        log.warning(
            "mailbox %s: %d archived messages share a UIDL with another copy; they stay on "
            "the server",
            box.name,
            allowed.ambiguous,
        )
    return {number: row for number, row in targets.items() if number not in withheld}
