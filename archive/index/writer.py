"""Writes archived messages into the index, one transaction per message.

The message row, its addresses, attachments, header fields, its full-text vector (a
generated column), the text chunks of long bodies and text attachments (archive.index.
chunks), its thread (archive.index.threads) and the ledger row that marks (mailbox, UIDL)
as archived all commit together, so whatever the ledger says is archived is also
searchable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from archive.index import locks
from archive.index.chunks import text_chunks
from archive.index.models import (
    TEXT_CONFIG,
    Address,
    Attachment,
    Delivery,
    HeaderField,
    Mailbox,
    Message,
    TextChunk,
)
from archive.index.threads import thread_key
from archive.mime import PARSER_VERSION, ParsedMessage

# The vector of a chunk: the message's subject (so "subject word + body word" queries
# match in any chunk) and the chunk's text, computed by PostgreSQL from the stored subject.
_INSERT_CHUNK = text(
    "INSERT INTO mailarchive.text_chunk "
    "(message_id, ordinal, part_path, start_char, content, search) "
    "SELECT m.id, :ordinal, :part_path, :start_char, :content, "
    f"setweight(to_tsvector('{TEXT_CONFIG}', coalesce(m.subject, '')), 'A') || "
    f"setweight(to_tsvector('{TEXT_CONFIG}', :content), 'B') "
    "FROM mailarchive.message m WHERE m.id = :message_id"
)

LedgerKey = tuple[str, int]
"""(UIDL, occurrence): the n-th copy of a UIDL in a listing, counted from 0."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    id: int
    uidl: str
    occurrence: int
    message_id: int
    sha256: str
    archived_at: datetime
    delete_requested_at: datetime | None
    deleted_at: datetime | None

    @property
    def key(self) -> LedgerKey:
        return (self.uidl, self.occurrence)


@dataclass(frozen=True, slots=True)
class Recorded:
    """What `MailboxIndex.record` did: `created` new content, or `relabelled` a copy."""

    message_id: int
    delivery_id: int
    created: bool
    relabelled: bool


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


def _clean(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; malformed mail can. Keep everything else as is."""
    if text is None:
        return None
    return text.replace("\x00", "\ufffd")


def _clean_required(text: str) -> str:
    return text.replace("\x00", "\ufffd")


class IndexWriter:
    """Opens one `MailboxIndex` per mailbox run, on a connection held for the whole run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
            yield MailboxIndex(conn, mailbox_id)


class MailboxIndex:
    """The index as one mailbox run sees it; every method is its own committed transaction."""

    def __init__(self, conn: Connection, mailbox_id: int) -> None:
        self.conn = conn
        self.mailbox_id = mailbox_id

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

    def ledger(self) -> dict[LedgerKey, LedgerEntry]:
        statement = (
            select(
                Delivery.id,
                Delivery.uidl,
                Delivery.occurrence,
                Delivery.message_id,
                Message.sha256,
                Delivery.archived_at,
                Delivery.delete_requested_at,
                Delivery.deleted_at,
            )
            .join(Message, Message.id == Delivery.message_id)
            .where(Delivery.mailbox_id == self.mailbox_id)
        )
        with self.conn.begin():
            entries = [LedgerEntry(*row) for row in self.conn.execute(statement)]
        return {entry.key: entry for entry in entries}

    def find_message(self, sha256: str) -> int | None:
        with self.conn.begin():
            found = self.conn.execute(select(Message.id).where(Message.sha256 == sha256)).scalar()
        return int(found) if found is not None else None

    def record(
        self,
        key: LedgerKey,
        sha256: str,
        size: int,
        parsed: ParsedMessage | None,
        stale: set[int] | None = None,
    ) -> Recorded:
        """Record one server copy; the message content is inserted if it is new.

        `parsed` may be None only when the content is already indexed (a duplicate).
        `stale` holds ids of this mailbox's ledger rows whose UIDL the server no longer
        lists: when one of them delivered the same content, the server renamed the copy (a
        UIDL reset), so that row takes the new UIDL instead of a second row being added. Used
        ids are removed from the set.
        """
        uidl, occurrence = key
        conn = self.conn
        with conn.begin():
            message_id: int | None = None
            created = False
            if parsed is not None:
                message_id = conn.execute(
                    insert(Message)
                    .values(**_message_values(sha256, size, parsed), **_thread(conn, parsed))
                    .on_conflict_do_nothing(index_elements=[Message.sha256])
                    .returning(Message.id)
                ).scalar()
                created = message_id is not None
            if message_id is None:
                message_id = conn.execute(
                    select(Message.id).where(Message.sha256 == sha256)
                ).scalar_one()
            if created and parsed is not None:
                _insert_children(conn, message_id, parsed)
            delivery_id = self._relabel(message_id, key, stale) if stale else None
            relabelled = delivery_id is not None
            if delivery_id is None:
                delivery_id = conn.execute(
                    insert(Delivery)
                    .values(
                        mailbox_id=self.mailbox_id,
                        uidl=uidl,
                        occurrence=occurrence,
                        message_id=message_id,
                    )
                    .on_conflict_do_nothing(
                        index_elements=[Delivery.mailbox_id, Delivery.uidl, Delivery.occurrence]
                    )
                    .returning(Delivery.id)
                ).scalar()
                if delivery_id is None:
                    delivery_id = conn.execute(
                        select(Delivery.id).where(
                            Delivery.mailbox_id == self.mailbox_id,
                            Delivery.uidl == uidl,
                            Delivery.occurrence == occurrence,
                        )
                    ).scalar_one()
        if relabelled and stale is not None:
            stale.discard(delivery_id)
        return Recorded(message_id, delivery_id, created, relabelled)

    def _relabel(self, message_id: int, key: LedgerKey, stale: set[int]) -> int | None:
        candidate = (
            select(Delivery.id)
            .where(
                Delivery.mailbox_id == self.mailbox_id,
                Delivery.message_id == message_id,
                Delivery.id.in_(sorted(stale)),
            )
            .order_by(Delivery.id)
            .limit(1)
            .scalar_subquery()
        )
        found = self.conn.execute(
            update(Delivery)
            .where(Delivery.id == candidate)
            .values(uidl=key[0], occurrence=key[1])
            .returning(Delivery.id)
        ).scalar()
        return int(found) if found is not None else None

    def mark_delete_requested(self, delivery_ids: Iterable[int]) -> None:
        """The server acknowledged DELE; the deletion is not final before QUIT succeeds."""
        self._stamp(delivery_ids, delete_requested_at=func.now())

    def mark_deleted(self, delivery_ids: Iterable[int]) -> None:
        self._stamp(delivery_ids, deleted_at=func.now())

    def _stamp(self, delivery_ids: Iterable[int], **values: object) -> None:
        ids = sorted(set(delivery_ids))
        if not ids:
            return
        with self.conn.begin():
            self.conn.execute(
                update(Delivery)
                .where(Delivery.mailbox_id == self.mailbox_id, Delivery.id.in_(ids))
                .values(**values)
            )


def _thread(conn: Connection, parsed: ParsedMessage) -> dict[str, object]:
    """thread_id and thread_subject, looking up the parent or an earlier same-subject message."""
    key = thread_key(parsed)
    found = None
    if key.parent:
        found = conn.execute(
            select(Message.thread_id)
            .where(Message.message_id == _clean(key.parent), Message.thread_id.is_not(None))
            .limit(1)
        ).scalar()
    elif key.by_subject_only and key.subject:
        found = conn.execute(
            select(Message.thread_id)
            .where(Message.thread_subject == _clean(key.subject))
            .order_by(Message.id)
            .limit(1)
        ).scalar()
    return {
        "thread_id": _clean(found or key.thread_id),
        "thread_subject": _clean(key.subject),
    }


def _message_values(sha256: str, size: int, parsed: ParsedMessage) -> dict[str, object]:
    return {
        "sha256": sha256,
        "size": size,
        "message_id": _clean(parsed.message_id),
        "in_reply_to": _clean(parsed.in_reply_to),
        "reference_ids": [_clean_required(ref) for ref in parsed.references],
        "subject": _clean(parsed.subject),
        "sent_at": parsed.sent_at,
        "has_attachments": bool(parsed.attachments),
        "body_text": _clean_required(parsed.body_text),
        "defects": [_clean_required(defect) for defect in parsed.defects],
        "part_count": parsed.part_count,
        "parser_version": PARSER_VERSION,
    }


def replace_parse(conn: Connection, message_id: int, parsed: ParsedMessage) -> None:
    """Rewrite everything derived from parsing one message (reindex), in the caller's
    transaction: the message row's columns, then its addresses, attachments, headers and
    text chunks. The row keeps its id, so deliveries and the ledger are untouched."""
    for table in (Address, Attachment, HeaderField, TextChunk):
        conn.execute(table.__table__.delete().where(table.message_id == message_id))
    row = conn.execute(select(Message.sha256, Message.size).where(Message.id == message_id)).one()
    values = _message_values(row.sha256, row.size, parsed)
    # Without this row's old values, thread lookups find what the first write found.
    conn.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(thread_id=None, thread_subject=None, message_id=None)
    )
    values.update(_thread(conn, parsed))
    conn.execute(update(Message).where(Message.id == message_id).values(**values))
    _insert_children(conn, message_id, parsed)


def _insert_children(conn: Connection, message_id: int, parsed: ParsedMessage) -> None:
    if parsed.addresses:
        conn.execute(
            insert(Address),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "role": a.role,
                    "name": _clean_required(a.name),
                    "address": _clean_required(a.address),
                }
                for n, a in enumerate(parsed.addresses)
            ],
        )
    if parsed.attachments:
        conn.execute(
            insert(Attachment),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "part_path": a.path,
                    "filename": _clean(a.filename),
                    "content_type": _clean_required(a.content_type),
                    "disposition": _clean(a.disposition),
                    "content_id": _clean(a.content_id),
                    "size": a.size,
                    "sha256": a.sha256,
                }
                for n, a in enumerate(parsed.attachments)
            ],
        )
    chunks = text_chunks(parsed)
    if chunks:
        conn.execute(
            _INSERT_CHUNK,
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "part_path": c.part_path,
                    "start_char": c.start_char,
                    "content": _clean_required(c.content),
                }
                for n, c in enumerate(chunks)
            ],
        )
    # The top-level fields (part_path NULL), then those of each enclosed message.
    fields = [(None, h.name, h.value) for h in parsed.headers] + [
        (h.part_path, h.name, h.value) for h in parsed.enclosed_headers
    ]
    if fields:
        conn.execute(
            insert(HeaderField),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "part_path": part_path,
                    "name": _clean_required(name.lower()),
                    "value": _clean_required(value),
                }
                for n, (part_path, name, value) in enumerate(fields)
            ],
        )
