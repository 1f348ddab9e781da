"""Writes archived messages into the index, one transaction per message.

The message row, its addresses, attachments, header fields, its full-text vector (a
generated column) and the ledger row that marks (mailbox, UIDL) as archived all commit
together, so whatever the ledger says is archived is also searchable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert

from archive.index.models import Address, Attachment, Delivery, HeaderField, Mailbox, Message
from archive.mime import ParsedMessage


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    uidl: str
    message_id: int
    sha256: str
    deleted_at: datetime | None


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

    def record_login(self) -> None:
        with self.conn.begin():
            self.conn.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id)
                .values(last_login_at=func.now())
            )

    def ledger(self) -> dict[str, LedgerEntry]:
        statement = (
            select(Delivery.uidl, Delivery.message_id, Message.sha256, Delivery.deleted_at)
            .join(Message, Message.id == Delivery.message_id)
            .where(Delivery.mailbox_id == self.mailbox_id)
        )
        with self.conn.begin():
            return {
                row.uidl: LedgerEntry(row.uidl, row.message_id, row.sha256, row.deleted_at)
                for row in self.conn.execute(statement)
            }

    def find_message(self, sha256: str) -> int | None:
        with self.conn.begin():
            found = self.conn.execute(select(Message.id).where(Message.sha256 == sha256)).scalar()
        return int(found) if found is not None else None

    def record(
        self, uidl: str, sha256: str, size: int, parsed: ParsedMessage | None
    ) -> tuple[int, bool]:
        """Record one delivery; returns (message row id, True if the content was new).

        `parsed` may be None only when the content is already indexed (a duplicate).
        """
        conn = self.conn
        with conn.begin():
            message_id: int | None = None
            created = False
            if parsed is not None:
                message_id = conn.execute(
                    insert(Message)
                    .values(**_message_values(sha256, size, parsed))
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
            conn.execute(
                insert(Delivery)
                .values(mailbox_id=self.mailbox_id, uidl=uidl, message_id=message_id)
                .on_conflict_do_nothing(index_elements=[Delivery.mailbox_id, Delivery.uidl])
            )
        return message_id, created

    def mark_deleted(self, uidls: Iterable[str]) -> None:
        uidl_list = list(uidls)
        if not uidl_list:
            return
        with self.conn.begin():
            self.conn.execute(
                update(Delivery)
                .where(Delivery.mailbox_id == self.mailbox_id, Delivery.uidl.in_(uidl_list))
                .values(deleted_at=func.now())
            )


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
    }


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
    if parsed.headers:
        conn.execute(
            insert(HeaderField),
            [
                {
                    "message_id": message_id,
                    "ordinal": n,
                    "name": _clean_required(h.name.lower()),
                    "value": _clean_required(h.value),
                }
                for n, h in enumerate(parsed.headers)
            ],
        )
