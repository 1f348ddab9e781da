"""The index in memory: the pipeline's index port without PostgreSQL, for fast tests.

`MemoryIndex` keeps what `archive.index.ledger.IndexWriter` keeps that the pipeline reads
back: message content by SHA-256 (shared by every mailbox, stored once), ledger rows per
mailbox (unique per (mailbox, UIDL, occurrence)), the login state, the mailbox locks and
the per-host connection slots. Parsed messages are kept as given, not as rows. `clock`
stamps every time, so tests can move time (LOGIN-DELAY, `delete_older_than_days`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from archive.errors import Pop3TemporaryError
from archive.extract import AttachmentTexts, Extraction
from archive.index.ledger import LedgerEntry, LedgerKey, LoginState, Recorded
from archive.mime import ParsedMessage

__all__ = ["MemoryIndex", "MemoryMailboxIndex", "StoredMessage"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One indexed content: row id, SHA-256, size in octets and what the parser made of it."""

    id: int
    sha256: str
    size: int
    parsed: ParsedMessage
    texts: AttachmentTexts | None = None


@dataclass
class _Mailbox:
    id: int
    host: str
    username: str
    last_login_at: datetime | None = None
    login_delay_seconds: int | None = None
    listing_limited: bool | None = None


@dataclass
class MemoryIndex:
    """Every mailbox's index in memory; `mailbox()` opens one run's view, as `IndexWriter`."""

    clock: Callable[[], datetime] = _utc_now
    messages: dict[str, StoredMessage] = field(default_factory=dict)
    deliveries: dict[int, tuple[int, LedgerEntry]] = field(default_factory=dict)
    mailboxes: dict[str, _Mailbox] = field(default_factory=dict)
    locked: set[str] = field(default_factory=set)
    slots: dict[str, int] = field(default_factory=dict)
    # How often a run read a mailbox's whole ledger (a test can hold the pipeline to once).
    ledger_reads: int = 0
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 1 << 62)), repr=False)
    _guard: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @contextmanager
    def mailbox(self, name: str, host: str, username: str) -> Iterator[MemoryMailboxIndex]:
        with self._guard:
            box = self.mailboxes.get(name)
            if box is None:
                box = self.mailboxes[name] = _Mailbox(next(self._ids), host, username)
            box.host, box.username = host, username
        yield MemoryMailboxIndex(self, box)

    def dispose(self) -> None:
        """Nothing to close; there for the `Index` port."""

    def ledger_of(self, name: str) -> list[LedgerEntry]:
        """The ledger rows of mailbox `name`, by id (empty if it never ran)."""
        box = self.mailboxes.get(name)
        if box is None:
            return []
        return [entry for owner, entry in self.deliveries.values() if owner == box.id]


class MemoryMailboxIndex:
    """`MemoryIndex` as one mailbox run sees it; implements the pipeline's index port."""

    def __init__(self, index: MemoryIndex, box: _Mailbox) -> None:
        self.index = index
        self.box = box

    @contextmanager
    def lock(self, name: str) -> Iterator[bool]:
        with self.index._guard:
            held = name not in self.index.locked
            if held:
                self.index.locked.add(name)
        try:
            yield held
        finally:
            if held:
                with self.index._guard:
                    self.index.locked.discard(name)

    @contextmanager
    def host_slot(self, host: str, capacity: int, wait_seconds: float) -> Iterator[int]:
        guard = self.index._guard
        with guard:
            free = guard.wait_for(
                lambda: self.index.slots.get(host, 0) < capacity, timeout=wait_seconds
            )
            if not free:
                raise Pop3TemporaryError(
                    f"host {host}: no connection slot free after {wait_seconds:.0f}s "
                    f"(max_connections {capacity})"
                )
            slot = self.index.slots.get(host, 0)
            self.index.slots[host] = slot + 1
        try:
            yield slot
        finally:
            with guard:
                self.index.slots[host] -= 1
                guard.notify_all()

    def login_state(self) -> LoginState:
        box = self.box
        return LoginState(
            box.last_login_at, box.login_delay_seconds, box.listing_limited, self.index.clock()
        )

    def record_login(self, login_delay: int | None) -> None:
        self.box.last_login_at = self.index.clock()
        self.box.login_delay_seconds = login_delay

    def set_listing_limited(self, limited: bool) -> None:
        self.box.listing_limited = limited

    def ledger(self) -> list[LedgerEntry]:
        self.index.ledger_reads += 1
        return [entry for owner, entry in self.index.deliveries.values() if owner == self.box.id]

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Like the database's: an exception undoes every record made inside."""
        index = self.index
        with index._guard:
            messages, deliveries = dict(index.messages), dict(index.deliveries)
        try:
            yield
        except BaseException:
            with index._guard:
                index.messages.clear()
                index.messages.update(messages)
                index.deliveries.clear()
                index.deliveries.update(deliveries)
            raise

    def find_message(self, sha256: str) -> int | None:
        found = self.index.messages.get(sha256)
        return found.id if found is not None else None

    def extracted_texts(self, sha256s: Collection[str]) -> dict[str, Extraction]:
        """Fresh outcomes of the messages recorded here, as the database caches them."""
        with self.index._guard:
            found: dict[str, Extraction] = {}
            for stored in self.index.messages.values():
                if stored.texts is not None:
                    found.update(
                        (sha, result)
                        for sha, result in stored.texts.fresh.items()
                        if sha in sha256s
                    )
            return found

    def record(
        self,
        key: LedgerKey,
        sha256: str,
        size: int,
        parsed: ParsedMessage | None,
        relabel: int | None = None,
        texts: AttachmentTexts | None = None,
    ) -> Recorded:
        index = self.index
        with index._guard:
            stored = index.messages.get(sha256)
            created = stored is None
            if stored is None:
                if parsed is None:
                    raise ValueError(f"content {sha256} is not indexed and was not parsed")
                stored = index.messages[sha256] = StoredMessage(
                    next(index._ids), sha256, size, parsed, texts
                )
            uidl, occurrence = key
            entry = self._at(key)
            relabelled = False
            if relabel is not None and entry is None:
                owner, old = index.deliveries.get(relabel, (None, None))
                if owner == self.box.id and old is not None and old.message_id == stored.id:
                    entry = replace(old, uidl=uidl, occurrence=occurrence)
                    index.deliveries[entry.id] = (self.box.id, entry)
                    relabelled = True
            if entry is None:
                entry = LedgerEntry(
                    next(index._ids),
                    uidl,
                    occurrence,
                    stored.id,
                    sha256,
                    stored.size,
                    index.clock(),
                    None,
                    None,
                )
                index.deliveries[entry.id] = (self.box.id, entry)
        return Recorded(stored.id, entry.id, created, relabelled, entry)

    def mark_delete_requested(self, delivery_ids: Iterable[int]) -> dict[int, datetime]:
        return self._stamp(delivery_ids, lambda entry, at: replace(entry, delete_requested_at=at))

    def mark_deleted(self, delivery_ids: Iterable[int]) -> dict[int, datetime]:
        return self._stamp(delivery_ids, lambda entry, at: replace(entry, deleted_at=at))

    def _stamp(
        self,
        delivery_ids: Iterable[int],
        stamp: Callable[[LedgerEntry, datetime], LedgerEntry],
    ) -> dict[int, datetime]:
        now = self.index.clock()
        stamped: dict[int, datetime] = {}
        with self.index._guard:
            for delivery_id in sorted(set(delivery_ids)):
                owner, entry = self.index.deliveries.get(delivery_id, (None, None))
                if owner == self.box.id and entry is not None:
                    self.index.deliveries[delivery_id] = (owner, stamp(entry, now))
                    stamped[delivery_id] = now
        return stamped

    def _at(self, key: LedgerKey) -> LedgerEntry | None:
        for owner, entry in self.index.deliveries.values():
            if owner == self.box.id and entry.key == key:
                return entry
        return None
