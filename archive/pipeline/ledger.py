"""The ledger as one value: which server copies of a mailbox are archived, and what follows.

A ledger row stands for one copy on the server, keyed (unique-id, occurrence): the n-th copy
of a UIDL in a listing, counted from 0. A unique-id is its octets as the server sent them
(`archive.pop3.uidl`): ids that differ in one octet are different keys. RFC 1939 §7 wants
unique-ids unique, but servers give identical messages one UIDL, so copies under a shared
UIDL are always read again and told apart by their SHA-256.

`Ledger` is loaded once per mailbox run (`Ledger(index.ledger())`) and kept up to date in
memory from what the index adapter returns (`add`, `stamp`). `Ledger.session(listing)`
holds one session's listing against it, and alone decides:
- what is new (`SessionLedger.new`) and under which key a retrieved copy is recorded
  (`SessionLedger.place`),
- what is stale (rows whose UIDL the server no longer lists: a UIDL reset relabels one of
  them instead of adding a row),
- what is ambiguous (a UIDL naming more than one copy, now or ever: never deleted by UIDL),
- which earlier deletions are confirmed by the message's absence,
- which earlier copies the policy would delete (`SessionLedger.deletions`). A row is never
  evidence by itself: the server's message must still be shown to be the archived one
  (`archive.pipeline.evidence`), since a key can be reused for another message.

No I/O here: every rule has a pure unit test (tests/unit/test_ledger.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, cast

from archive.index.ledger import LedgerEntry, LedgerKey
from archive.pop3.source import Listed

__all__ = [
    "IMPORTED_PREFIX",
    "Deletions",
    "Known",
    "Ledger",
    "LedgerEntry",
    "LedgerKey",
    "Place",
    "SessionLedger",
    "is_imported",
]

# Rows written by `mailarchive import` (archive.pipeline.importer): `import:<sha256>`, 71
# characters, longer than any POP3 unique-id may be (RFC 1939 §7: 1 to 70).
IMPORTED_PREFIX = b"import:"


def is_imported(uidl: bytes) -> bool:
    """A row an import wrote, not a copy any server listed."""
    return uidl.startswith(IMPORTED_PREFIX) and len(uidl) > 70


log = logging.getLogger(__name__)


class Ledger:
    """Every ledger row of one mailbox, by key and by row id."""

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        self._by_id: dict[int, LedgerEntry] = {}
        self._by_uidl: dict[bytes, dict[int, LedgerEntry]] = {}
        for entry in entries:
            self.add(entry)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(list(self._by_id.values()))

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        return self.get(cast(LedgerKey, key)) is not None

    def get(self, key: LedgerKey) -> LedgerEntry | None:
        uidl, occurrence = key
        return self._by_uidl.get(uidl, {}).get(occurrence)

    def by_id(self, entry_id: int) -> LedgerEntry:
        return self._by_id[entry_id]

    def copies(self, uidl: bytes) -> list[LedgerEntry]:
        """The rows under one unique-id, by occurrence."""
        found = self._by_uidl.get(uidl, {})
        return [found[occurrence] for occurrence in sorted(found)]

    def add(self, entry: LedgerEntry) -> None:
        """A row as the index now holds it: new, or an existing id under a new key."""
        old = self._by_id.get(entry.id)
        if old is not None:
            same_uidl = self._by_uidl[old.uidl]
            del same_uidl[old.occurrence]
            if not same_uidl:
                del self._by_uidl[old.uidl]
        taken = self.get(entry.key)
        if taken is not None and taken.id != entry.id:
            raise ValueError(f"ledger key {entry.key} held by row {taken.id}, not {entry.id}")
        self._by_id[entry.id] = entry
        self._by_uidl.setdefault(entry.uidl, {})[entry.occurrence] = entry

    def stamp(
        self, stamps: Mapping[int, datetime], what: Literal["delete_requested_at", "deleted_at"]
    ) -> None:
        """Set `what` on the rows the index stamped (row id → the time it wrote)."""
        for entry_id, at in stamps.items():
            entry = self._by_id.get(entry_id)
            if entry is None:
                continue
            if what == "deleted_at":
                self.add(replace(entry, deleted_at=at))
            else:
                self.add(replace(entry, delete_requested_at=at))

    def next_occurrence(self, uidl: bytes) -> int:
        """The first occurrence of `uidl` no row uses past the highest one."""
        return max(self._by_uidl.get(uidl, {}), default=-1) + 1

    def session(self, listing: Sequence[Listed]) -> SessionLedger:
        """One session's listing held against the ledger as it is now."""
        return SessionLedger(self, listing)


@dataclass(frozen=True, slots=True)
class Known:
    """A copy re-read only because its UIDL is shared, and already archived as row `id`."""

    id: int


@dataclass(frozen=True, slots=True)
class Place:
    """Record the copy under `key`; `relabel`: reuse that stale row (a UIDL reset)."""

    key: LedgerKey
    relabel: int | None = None


@dataclass(frozen=True, slots=True)
class Deletions:
    """What a session may DELE: message number → ledger row id.

    `now`: copies archived (or found archived) in this very session, exact by number
    (RFC 1939 §4) and verified moments ago. `earlier`: copies archived by an earlier session,
    known only by their UIDL; their stored copy must be verified again before DELE.
    `ambiguous`: earlier copies left on the server because their UIDL names several.
    """

    now: dict[int, int] = field(default_factory=dict)
    earlier: dict[int, LedgerEntry] = field(default_factory=dict)
    ambiguous: int = 0


class SessionLedger:
    """One listing against the ledger; the session tells it what it recorded."""

    def __init__(self, ledger: Ledger, listing: Sequence[Listed]) -> None:
        self.ledger = ledger
        self.listing = list(listing)
        self.shared: Counter[bytes] = Counter(item.uidl for item in listing)
        self.keys: dict[int, LedgerKey] = {}
        seen: Counter[bytes] = Counter()
        for item in listing:
            self.keys[item.number] = (item.uidl, seen[item.uidl])
            seen[item.uidl] += 1
        # Rows matched to a message of this listing: one row is one copy on the server.
        self._claimed: set[int] = set()
        self._recorded: set[int] = set()
        # Stale rows by content, lowest id first: candidates for a relabel.
        self._stale_by_sha: dict[str, list[int]] = {}
        for entry in sorted(self.stale(), key=lambda entry: entry.id):
            self._stale_by_sha.setdefault(entry.sha256, []).append(entry.id)

    @property
    def seen(self) -> set[LedgerKey]:
        return set(self.keys.values())

    def new(self) -> list[Listed]:
        """Listed copies to retrieve: not in the ledger, or under a shared UIDL (re-read)."""
        return [
            item
            for item in self.listing
            if self.shared[item.uidl] > 1 or self.keys[item.number] not in self.ledger
        ]

    def stale(self) -> list[LedgerEntry]:
        """Rows whose UIDL the server no longer lists and that were never deleted."""
        return [
            entry
            for entry in self.ledger
            if entry.uidl not in self.shared
            and not is_imported(entry.uidl)  # never a renamed server copy
            and entry.deleted_at is None
            and entry.delete_requested_at is None
        ]

    def ambiguous(self) -> set[bytes]:
        """UIDLs naming more than one copy, now or in the ledger: never deleted by UIDL."""
        now = {uidl for uidl, count in self.shared.items() if count > 1}
        ever = {entry.uidl for entry in self.ledger if entry.occurrence > 0}
        return now | ever

    def confirmed_by_absence(self) -> list[int]:
        """Rows whose DELE was acknowledged but never confirmed by QUIT, and that the server
        no longer lists: it deleted them then (RFC 1939 §6 allows -ERR after partial UPDATE)."""
        return sorted(
            entry.id
            for entry in self.ledger
            if entry.delete_requested_at is not None
            and entry.deleted_at is None
            and entry.uidl not in self.shared
        )

    def place(self, number: int, sha256: str) -> Known | Place:
        """Where the retrieved copy `number` with content `sha256` belongs in the ledger.

        Under a shared UIDL, or a key the ledger holds already (a copy retrieved because
        nothing else proved it the archived one), the copy is a row of that UIDL with the
        same content, or else a new message under the UIDL's next free occurrence: a
        reused unique-id never makes a new message an old row."""
        uidl, occurrence = self.keys[number]
        if self.shared[uidl] > 1 or (uidl, occurrence) in self.ledger:
            for entry in self.ledger.copies(uidl):
                if entry.sha256 == sha256 and entry.id not in self._claimed:
                    self._claimed.add(entry.id)
                    return Known(entry.id)
            occurrence = self.ledger.next_occurrence(uidl)
        stale = self._stale_by_sha.get(sha256)
        return Place((uidl, occurrence), stale[0] if stale else None)

    def recorded(self, entry: LedgerEntry) -> None:
        """The index recorded (or relabelled) `entry` for a copy of this listing."""
        self.ledger.add(entry)
        self._claimed.add(entry.id)
        self._recorded.add(entry.id)
        stale = self._stale_by_sha.get(entry.sha256)
        if stale is not None and entry.id in stale:
            stale.remove(entry.id)

    def deletions(
        self, archived_now: Mapping[int, int], *, everything: bool, cutoff: datetime | None
    ) -> Deletions:
        """What may be deleted: with `everything` (delete after archive), all of
        `archived_now` and every earlier copy; with a `cutoff`, earlier copies first archived
        before it. Earlier copies count only if their deletion is not confirmed yet and
        their UIDL names one copy, now and ever."""
        now = dict(archived_now) if everything else {}
        if not everything and cutoff is None:
            return Deletions(now)
        ambiguous = self.ambiguous()
        earlier: dict[int, LedgerEntry] = {}
        skipped = 0
        for number, (uidl, _) in sorted(self.keys.items()):
            entry = self.ledger.get(self.keys[number])
            if (
                entry is None
                or entry.id in self._recorded
                or number in now
                or entry.deleted_at is not None
                or self.shared[uidl] > 1
            ):
                continue
            if cutoff is not None and entry.archived_at > cutoff:
                continue
            if uidl in ambiguous or is_imported(uidl):
                # An imported row stands for no server copy, whatever lists its id.
                skipped += 1
                continue
            earlier[number] = entry
        return Deletions(now, earlier, skipped)
