"""What the pipeline needs from the index: the `Index` and `MailboxLedgerIndex` ports.

`archive.index.ledger.IndexWriter` / `MailboxIndex` implement them over PostgreSQL;
`archive.index.memory.MemoryIndex` implements them in memory, for pipeline unit tests.
`Runs` is where a mailbox run's record goes when it ends (`archive.index.runs.RunLog`).
Adapters return values and never change their arguments.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from archive.extract import AttachmentTexts, Extraction
from archive.index.ledger import LedgerEntry, LedgerKey, LoginState, Recorded
from archive.index.runs import RunRecord
from archive.mime import ParsedMessage

__all__ = ["Index", "MailboxLedgerIndex", "Runs"]


class MailboxLedgerIndex(Protocol):
    """The index as one mailbox run sees it; each call is its own committed transaction, but
    `record` calls inside `batch()` commit together (group commit)."""

    def lock(self, name: str) -> AbstractContextManager[bool]:
        """One session per mailbox across processes: yields False if another holds it."""
        ...

    def host_slot(
        self, host: str, capacity: int, wait_seconds: float
    ) -> AbstractContextManager[int]:
        """One of `capacity` connection slots for `host`, waiting up to `wait_seconds`;
        raises Pop3TemporaryError when none frees up."""
        ...

    def login_state(self) -> LoginState: ...

    def record_login(self, login_delay: int | None) -> None:
        """A login succeeded now; `login_delay` is the server's LOGIN-DELAY in seconds."""
        ...

    def set_listing_limited(self, limited: bool) -> None: ...

    def ledger(self) -> list[LedgerEntry]:
        """Every ledger row of this mailbox."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """One transaction for the `record` calls inside: all commit on a clean exit, none
        on an exception. Each message still commits with its ledger row."""
        ...

    def find_message(self, sha256: str) -> int | None:
        """The message row holding content `sha256` (any mailbox), if indexed."""
        ...

    def record(
        self,
        key: LedgerKey,
        sha256: str,
        size: int,
        parsed: ParsedMessage | None,
        relabel: int | None = None,
        texts: AttachmentTexts | None = None,
    ) -> Recorded:
        """Record a copy: the content (if new, from `parsed`, with its attachments' `texts`)
        and its ledger row."""
        ...

    def extracted_texts(self, sha256s: Collection[str]) -> Mapping[str, Extraction]:
        """Attachment texts already extracted in the archive, by SHA-256."""
        ...

    def mark_delete_requested(self, delivery_ids: Iterable[int]) -> dict[int, datetime]: ...

    def mark_deleted(self, delivery_ids: Iterable[int]) -> dict[int, datetime]: ...


class Index(Protocol):
    """Opens the index for one mailbox run (creating the mailbox row if missing)."""

    def mailbox(
        self, name: str, host: str, username: str
    ) -> AbstractContextManager[MailboxLedgerIndex]: ...

    def dispose(self) -> None: ...


class Runs(Protocol):
    """Keeps the record of each mailbox run (`archive.index.runs.RunLog` over PostgreSQL)."""

    def record(self, run: RunRecord) -> None: ...
