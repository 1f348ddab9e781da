"""A POP3 listing held against the ledger: what is new, under which key, what may follow.

Keys are (UIDL, occurrence): the n-th copy of a UIDL in the listing. RFC 1939 §7 wants UIDLs
unique, but servers give identical messages one UIDL, so copies under a shared UIDL are
always read again and told apart by their SHA-256.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from archive.index.ledger import LedgerEntry, LedgerKey
from archive.pop3.client import Listed


@dataclass
class SessionOutcome:
    """What one POP3 session found and did, for deciding whether to open another."""

    listed: int = 0
    new: int = 0
    capped: bool = False


@dataclass
class Plan:
    """One listing against the ledger: which message numbers are new, under which keys."""

    key_of: dict[int, LedgerKey]
    shared: Counter[str]
    wanted: list[Listed]
    _assigned: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(cls, listing: list[Listed], ledger: dict[LedgerKey, LedgerEntry]) -> Plan:
        shared = Counter(item.uidl for item in listing)
        seen: Counter[str] = Counter()
        key_of: dict[int, LedgerKey] = {}
        wanted: list[Listed] = []
        for item in listing:
            key_of[item.number] = (item.uidl, seen[item.uidl])
            seen[item.uidl] += 1
            # RFC 1939 §7 wants UIDLs unique, but servers give identical messages one UIDL.
            # Copies under a shared UIDL are always read again and told apart by SHA-256.
            if shared[item.uidl] > 1 or key_of[item.number] not in ledger:
                wanted.append(item)
        return cls(key_of, shared, wanted)

    def stale(self, ledger: dict[LedgerKey, LedgerEntry]) -> set[int]:
        """Ledger rows whose UIDL the server no longer lists and that were never deleted."""
        return {
            entry.id
            for entry in ledger.values()
            if entry.uidl not in self.shared
            and entry.deleted_at is None
            and entry.delete_requested_at is None
        }

    def ambiguous(self, ledger: dict[LedgerKey, LedgerEntry]) -> set[str]:
        """UIDLs that name more than one copy, now or in the ledger: never deleted by UIDL."""
        return {uidl for uidl, count in self.shared.items() if count > 1} | {
            uidl for uidl, occurrence in ledger if occurrence > 0
        }

    def known_copy(
        self, ledger: dict[LedgerKey, LedgerEntry], uidl: str, sha256: str
    ) -> int | None:
        for (entry_uidl, _), entry in ledger.items():
            if entry_uidl == uidl and entry.sha256 == sha256:
                return entry.id
        return None

    def next_occurrence(self, ledger: dict[LedgerKey, LedgerEntry], uidl: str) -> int:
        if uidl not in self._assigned:
            used = [occurrence for entry_uidl, occurrence in ledger if entry_uidl == uidl]
            self._assigned[uidl] = max(used, default=-1)
        self._assigned[uidl] += 1
        return self._assigned[uidl]


def cap_session(
    wanted: list[Listed], max_messages: int | None, max_bytes: int | None
) -> list[Listed]:
    """The first messages that fit the per-session limits; at least one, so a run progresses."""
    chosen: list[Listed] = []
    total = 0
    for item in wanted:
        if max_messages is not None and len(chosen) >= max_messages:
            break
        size = item.size or 0
        if max_bytes is not None and chosen and total + size > max_bytes:
            break
        chosen.append(item)
        total += size
    return chosen


def wants_another_session(
    session: SessionOutcome, listing_limited: bool | None
) -> tuple[bool, bool]:
    """(another session?, is it a probe?) after a session that brought new mail.

    Another session follows when we stopped at our own per-session cap, or when the server
    showed only mail we did not have: Gmail lists ~250 not-yet-downloaded messages per
    session. Whether a server does that is learnt by the first such follow-up session (the
    probe) and remembered per mailbox (`listing_limited`), so a server that lists everything
    is not logged into twice on every run. A wrong "no" only delays mail to the next run:
    what was not listed stays on the server.
    """
    if session.new == 0:
        return False, False
    if session.capped:
        return True, False
    if session.new == session.listed and listing_limited is not False:
        return True, listing_limited is None
    return False, False
