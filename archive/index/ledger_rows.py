"""The ledger's values as the index hands them out: a ledger row, what a record did, and
the mailbox's login state (RFC 2449 LOGIN-DELAY)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

LedgerKey = tuple[bytes, int]
"""(UIDL octets, occurrence): the n-th copy of a unique-id in a listing, counted from 0."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger row: copy `occurrence` of unique-id `uidl` (octets) delivered content
    `sha256` of `size` octets (message row `message_id`); first archived at `archived_at`;
    DELE acknowledged at `delete_requested_at`; deletion confirmed (QUIT +OK, or gone) at
    `deleted_at`."""

    id: int
    uidl: bytes
    occurrence: int
    message_id: int
    sha256: str
    size: int
    archived_at: datetime
    delete_requested_at: datetime | None
    deleted_at: datetime | None

    @property
    def key(self) -> LedgerKey:
        return (self.uidl, self.occurrence)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `MailboxIndex.record` did: `created` new content, or `relabelled` a copy;
    `entry` is the ledger row as now stored."""

    message_id: int
    delivery_id: int
    created: bool
    relabelled: bool
    entry: LedgerEntry


@dataclass(frozen=True, slots=True)
class LoginState:
    last_login_at: datetime | None
    login_delay_seconds: int | None
    listing_limited: bool | None
    now: datetime

    def seconds_until_login(self) -> float:
        """How long the server's LOGIN-DELAY still forbids a new login (0 when allowed)."""
        if self.last_login_at is None or not self.login_delay_seconds:
            return 0.0
        elapsed = (self.now - self.last_login_at).total_seconds()
        return max(0.0, self.login_delay_seconds - elapsed)
