"""Writes archived messages into the index, one transaction per message or per batch.

The message row, its addresses, attachments, header fields, its full-text vector (a
generated column), the text chunks of long bodies and text attachments (archive.index.
chunks), its thread (archive.index.threads) and the ledger row that marks (mailbox, UIDL
octets, occurrence) as archived all commit together, so whatever the ledger says is
archived is also searchable. Inside `MailboxIndex.batch()` several messages share one
transaction (group commit: one WAL flush for many messages); each message still commits
together with its ledger row, and a failure rolls back the whole batch. A new message and
its ledger row are one statement, a known one's ledger row another (archive.index.writes);
a relabel and the rare races take a statement per table.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import InstrumentedAttribute

from archive.extract import AttachmentTexts, Extraction
from archive.index import locks, writes
from archive.index.ledger_rows import LedgerEntry, LedgerKey, LoginState, Recorded
from archive.index.messages import insert_children, message_values, thread_values
from archive.index.models import Delivery, Mailbox, Message
from archive.index.texts import cached_texts, save_texts
from archive.mime import ParsedMessage
from archive.pop3.uidl import uidl_text

__all__ = [
    "IndexWriter",
    "LedgerEntry",
    "LedgerKey",
    "LoginState",
    "MailboxIndex",
    "Recorded",
]

# delivery.uidl is a display column of 255 characters; the octets are the key.
_UIDL_TEXT_MAX = 255


def _display(uidl: bytes) -> str:
    text = uidl_text(uidl)
    return text if len(text) <= _UIDL_TEXT_MAX else text[: _UIDL_TEXT_MAX - 1] + "…"


_ENTRY_COLUMNS = (
    Delivery.id,
    Delivery.uidl_octets,
    Delivery.occurrence,
    Delivery.message_id,
    Message.sha256,
    Message.size,
    Delivery.archived_at,
    Delivery.delete_requested_at,
    Delivery.deleted_at,
)


def _entry(row: Sequence[Any]) -> LedgerEntry:
    entry = LedgerEntry(*row)
    # psycopg returns bytea as memoryview; the ledger compares bytes.
    return replace(entry, uidl=bytes(entry.uidl))


class IndexWriter:
    """Opens one `MailboxIndex` per mailbox run, on a connection held for the whole run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def dispose(self) -> None:
        """Close the engine's pooled connections (the CLI before it exits, tests)."""
        self.engine.dispose()

    @contextmanager
    def mailbox(self, name: str, host: str, username: str) -> Iterator[MailboxIndex]:
        # One connection per run instead of a pool checkout per statement: each checkout
        # costs a reset round trip, and this was ~18% of archive throughput (benchmarks/).
        with self.engine.connect() as conn:
            statement = (
                insert(Mailbox)
                .values(name=name, host=host, username=username)
                .on_conflict_do_update(
                    index_elements=[Mailbox.name], set_={"host": host, "username": username}
                )
                .returning(Mailbox.id)
            )
            with conn.begin():
                mailbox_id = int(conn.execute(statement).scalar_one())
            # A run stores objects before the rows that reference them commit: gc, which
            # needs this lock exclusive, waits for the run (archive.pipeline.verify).
            with locks.store_writer(conn):
                yield MailboxIndex(conn, mailbox_id)


class MailboxIndex:
    """The index as one mailbox run sees it; every method is its own committed transaction,
    except `find_message`, `extracted_texts` and `record` inside `batch()`."""

    def __init__(self, conn: Connection, mailbox_id: int) -> None:
        self.conn = conn
        self.mailbox_id = mailbox_id
        self._batched = False
        # SHA-256 → message row of content recorded in the open batch (gone with it).
        self._batch_known: dict[str, int] = {}

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every `record` (and lookup) inside: committed on a clean exit,
        rolled back on an exception. A commit costs a WAL flush; per message it was the
        largest single cost of archiving (docs/benchmarks.md)."""
        with self.conn.begin():
            self._batched = True
            try:
                yield
            finally:
                self._batched = False
                self._batch_known.clear()

    def _transaction(self) -> AbstractContextManager[object]:
        return nullcontext() if self._batched else self.conn.begin()

    def lock(self, name: str) -> AbstractContextManager[bool]:
        """One session per mailbox across processes: yields False if another one holds it."""
        return locks.mailbox_lock(self.conn, name)

    def host_slot(
        self, host: str, capacity: int, wait_seconds: float
    ) -> AbstractContextManager[int]:
        """One of `capacity` connection slots for `host`, shared by every process."""
        return locks.host_slot(self.conn, host, capacity, wait_seconds)

    def login_state(self) -> LoginState:
        with self.conn.begin():
            row = self.conn.execute(
                select(
                    Mailbox.last_login_at,
                    Mailbox.login_delay_seconds,
                    Mailbox.listing_limited,
                    func.now(),
                ).where(Mailbox.id == self.mailbox_id)
            ).one()
        return LoginState(*row)

    def set_listing_limited(self, limited: bool) -> None:
        with self.conn.begin():
            self.conn.execute(
                update(Mailbox).where(Mailbox.id == self.mailbox_id).values(listing_limited=limited)
            )

    def record_login(self, login_delay: int | None) -> None:
        with self.conn.begin():
            self.conn.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id)
                .values(last_login_at=func.now(), login_delay_seconds=login_delay)
            )

    def ledger(self) -> list[LedgerEntry]:
        """Every ledger row of this mailbox, with the SHA-256 of the content it delivered."""
        statement = select(*_ENTRY_COLUMNS).join(Message, Message.id == Delivery.message_id)
        with self.conn.begin():
            rows = self.conn.execute(statement.where(Delivery.mailbox_id == self.mailbox_id))
            return [_entry(row) for row in rows]

    def find_message(self, sha256: str) -> int | None:
        # Content recorded earlier in the open batch is known without a round trip.
        known = self._batch_known.get(sha256)
        if known is not None:
            return known
        with self._transaction():
            return writes.find_message(self.conn, sha256)

    def extracted_texts(self, sha256s: Collection[str]) -> dict[str, Extraction]:
        with self._transaction():
            return cached_texts(self.conn, sha256s)

    def record(
        self,
        key: LedgerKey,
        sha256: str,
        size: int,
        parsed: ParsedMessage | None,
        relabel: int | None = None,
        texts: AttachmentTexts | None = None,
    ) -> Recorded:
        """Record one server copy under `key`; the message content is inserted if it is new.

        `parsed` may be None only when the content is already indexed (a duplicate).
        `relabel` is the id of a stale ledger row of this mailbox (its UIDL is no longer
        listed) that the pipeline's ledger chose for this content: the server renamed the
        copy (a UIDL reset), so that row takes `key` instead of a second row being added. It
        is used only if it delivered the same content. `texts`: what extraction gave the
        attachments (None: not extracted). Returns the row as now stored.
        """
        with self._transaction():
            recorded = None
            if relabel is None:
                recorded = self._record_one_statement(key, sha256, size, parsed, texts)
            if recorded is None:
                recorded = self._record_general(key, sha256, size, parsed, relabel, texts)
        if self._batched and recorded.entry.sha256 == sha256:  # not so if the key had a row
            self._batch_known[sha256] = recorded.message_id
        return recorded

    def _record_one_statement(
        self,
        key: LedgerKey,
        sha256: str,
        size: int,
        parsed: ParsedMessage | None,
        texts: AttachmentTexts | None,
    ) -> Recorded | None:
        """The common cases in one statement (archive.index.writes); None when the content
        was there after all (a concurrent run) or is missing: nothing was written."""
        uidl, occurrence = key
        delivery = {
            "mailbox_id": self.mailbox_id,
            "uidl": _display(uidl),
            "uidl_octets": uidl,
            "occurrence": occurrence,
        }
        if parsed is None:
            row = writes.record_known(self.conn, delivery, sha256)
            created = False
        else:
            if texts is not None:
                save_texts(self.conn, texts.fresh)
            new = writes.record_new(self.conn, delivery, sha256, size, parsed, texts)
            if new is None:
                return None
            row, created = new.delivery, True
        if row is None:
            if not created:
                return None
            # The key had a row already (as the general path, the row as stored).
            entry = self._entry(key)
        else:
            entry = LedgerEntry(
                row.id,
                uidl,
                occurrence,
                row.message_id,
                sha256,
                size,
                row.archived_at,
                row.delete_requested_at,
                row.deleted_at,
            )
        return Recorded(entry.message_id, entry.id, created, False, entry)

    def _entry(self, key: LedgerKey) -> LedgerEntry:
        found = self.conn.execute(
            select(*_ENTRY_COLUMNS)
            .join(Message, Message.id == Delivery.message_id)
            .where(
                Delivery.mailbox_id == self.mailbox_id,
                Delivery.uidl_octets == key[0],
                Delivery.occurrence == key[1],
            )
        ).one()
        return _entry(found)

    def _record_general(
        self,
        key: LedgerKey,
        sha256: str,
        size: int,
        parsed: ParsedMessage | None,
        relabel: int | None,
        texts: AttachmentTexts | None,
    ) -> Recorded:
        """Every case, a statement at a time: relabelling, and content or a key found recorded
        by the one-statement path."""
        uidl, occurrence = key
        conn = self.conn
        message_id: int | None = None
        created = False
        if parsed is not None:
            message_id = conn.execute(
                insert(Message)
                .values(
                    **message_values(sha256, size, parsed, texts),
                    **thread_values(conn, parsed),
                )
                .on_conflict_do_nothing(index_elements=[Message.sha256])
                .returning(Message.id)
            ).scalar()
            created = message_id is not None
        if message_id is None:
            message_id = conn.execute(
                select(Message.id).where(Message.sha256 == sha256)
            ).scalar_one()
        if created and parsed is not None:
            insert_children(conn, message_id, parsed, texts)
        delivery_id = None if relabel is None else self._relabel(message_id, key, relabel)
        relabelled = delivery_id is not None
        if delivery_id is None:
            conn.execute(
                insert(Delivery)
                .values(
                    mailbox_id=self.mailbox_id,
                    uidl=_display(uidl),
                    uidl_octets=uidl,
                    occurrence=occurrence,
                    message_id=message_id,
                )
                .on_conflict_do_nothing(
                    index_elements=[
                        Delivery.mailbox_id,
                        Delivery.uidl_octets,
                        Delivery.occurrence,
                    ]
                )
            )
        entry = self._entry(key)
        return Recorded(entry.message_id, entry.id, created, relabelled, entry)

    def _relabel(self, message_id: int, key: LedgerKey, delivery_id: int) -> int | None:
        found = self.conn.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.mailbox_id == self.mailbox_id,
                Delivery.message_id == message_id,
            )
            .values(uidl=_display(key[0]), uidl_octets=key[0], occurrence=key[1])
            .returning(Delivery.id)
        ).scalar()
        return int(found) if found is not None else None

    def mark_delete_requested(self, delivery_ids: Iterable[int]) -> dict[int, datetime]:
        """The server acknowledged DELE; the deletion is not final before QUIT succeeds.

        Returns row id → the time stamped, for the rows of this mailbox among `delivery_ids`.
        """
        return self._stamp(delivery_ids, Delivery.delete_requested_at)

    def mark_deleted(self, delivery_ids: Iterable[int]) -> dict[int, datetime]:
        """QUIT was answered +OK (or the copy is gone): the rows' deletion is confirmed."""
        return self._stamp(delivery_ids, Delivery.deleted_at)

    def _stamp(
        self, delivery_ids: Iterable[int], column: InstrumentedAttribute[datetime | None]
    ) -> dict[int, datetime]:
        ids = sorted(set(delivery_ids))
        if not ids:
            return {}
        with self.conn.begin():
            rows = self.conn.execute(
                update(Delivery)
                .where(Delivery.mailbox_id == self.mailbox_id, Delivery.id.in_(ids))
                .values({column: func.now()})
                .returning(Delivery.id, column)
            ).all()
        return {int(row[0]): row[1] for row in rows if row[1] is not None}
