"""The hot write path: a new message and its ledger row in one statement, a known one's
ledger row in another.

Archiving spent more CPU building SQLAlchemy statements (~1.5 ms a message) than PostgreSQL
spent running them, and about six round trips a message (docs/benchmarks.md). Here the
message row, its thread lookup, addresses, attachments, header fields, defects, text chunks
and the delivery row are one `INSERT … RETURNING` with data-modifying CTEs: each table's
child rows arrive as one JSON text (`json.dumps`, in C) read by `json_to_recordset`, so the
statement's text never changes and psycopg prepares it once per connection. One array
parameter per column was tried first: psycopg adapts lists element by element in Python,
which cost a third of the client's remaining CPU. The statements run on the driver's cursor
(`archive.index.prepared`: no statement compiled, no SQLAlchemy result built), in the
caller's transaction, with errors mapped as everywhere (`database.map_errors`).

The models stay the schema's source of truth: every column list below is read from the
`Table` objects (all columns but the serial `id`, the generated `search`, and the columns a
server default fills, listed in `SERVER_FILLED`), and a row builder that misses or invents a
column fails (`rows_json` at run time, tests/unit/test_index_writes.py). Values come from the
same builders the reindex path uses (`archive.index.messages.message_values`, `child_rows`).

The statement returns nothing when the content already has a row (another mailbox's run
inserted it since `find_message` looked), or no delivery when the ledger key has one; the
caller then takes the general path, which handles both.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Connection, Table
from sqlalchemy.dialects import postgresql

from archive.extract import AttachmentTexts
from archive.index import prepared
from archive.index.messages import child_rows, chunk_vector, clean, message_values
from archive.index.models import (
    Address,
    Attachment,
    Defect,
    Delivery,
    HeaderField,
    Message,
    TextChunk,
)
from archive.index.threads import thread_key
from archive.mime import ParsedMessage

__all__ = [
    "SERVER_FILLED",
    "DeliveryRow",
    "NewMessage",
    "find_message",
    "record_known",
    "record_new",
]

SERVER_FILLED: Mapping[str, frozenset[str]] = {
    "message": frozenset({"archived_at"}),
    "delivery": frozenset({"archived_at", "delete_requested_at", "deleted_at"}),
}
"""Columns the hot path leaves to their server default, per table."""

# Filled from the statement's own rows, not from a parameter.
_FROM_STATEMENT = frozenset({"message_id", "search"})
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def written_columns(table: Table) -> tuple[str, ...]:
    """The columns of `table` a row of the hot path carries, in the table's order."""
    skip = SERVER_FILLED.get(table.name, frozenset())
    return tuple(
        column.name
        for column in table.columns
        if column.name != "id" and column.computed is None and column.name not in skip
    )


def _sql_type(column: Column[object]) -> str:
    # Without a length: an explicit cast to varchar(n) would cut an over-long value
    # silently, where the column's assignment cast refuses it, as a plain INSERT does.
    return re.sub(r"\(.*\)", "", column.type.compile(dialect=_DIALECT))


def _child_insert(table: Table, vectors: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """A CTE body inserting `table`'s rows for message `m` from a JSON array of objects
    (parameter `<table>`); returns the SQL and the columns each object carries."""
    columns = written_columns(table)
    fed = tuple(name for name in columns if name not in _FROM_STATEMENT)
    record = ", ".join(f"{name} {_sql_type(table.c[name])}" for name in fed)
    values = ", ".join(
        "m.id" if name == "message_id" else vectors.get(name, f"r.{name}") for name in columns
    )
    sql = (
        f"INSERT INTO {table.fullname} ({', '.join(columns)}) "
        f"SELECT {values} FROM m, json_to_recordset(%({table.name})s::json) AS r({record})"
    )
    return sql, fed


# Tables of child rows, in the order of `ChildRows`' fields.
_CHILDREN: tuple[Table, ...] = tuple(
    model.__table__  # type: ignore[misc]
    for model in (Address, Attachment, TextChunk, HeaderField, Defect)
)
_CHILD_SQL = {
    table.name: _child_insert(
        table, {"search": chunk_vector("m.subject", "m.attachment_names", "r.content")}
    )
    for table in _CHILDREN
}

_MESSAGE: Table = Message.__table__  # type: ignore[assignment]
_DELIVERY: Table = Delivery.__table__  # type: ignore[assignment]
MESSAGE_COLUMNS = written_columns(_MESSAGE)
DELIVERY_COLUMNS = written_columns(_DELIVERY)

# The thread: the parent's, if that message is archived, else the earliest message with the
# same normalised subject (mail without References), else the message's own (threads.py).
_THREAD_ID = (
    "coalesce(nullif(CASE "
    "WHEN %(thread_parent)s::text IS NOT NULL THEN (SELECT p.thread_id FROM "
    f"{_MESSAGE.fullname} p WHERE p.message_id = %(thread_parent)s::text "
    "AND p.thread_id IS NOT NULL LIMIT 1) "
    "WHEN %(thread_by_subject)s::text IS NOT NULL THEN (SELECT p.thread_id FROM "
    f"{_MESSAGE.fullname} p WHERE p.thread_subject = %(thread_by_subject)s::text "
    "ORDER BY p.id LIMIT 1) "
    "END, ''), %(thread_id)s::text)"
)

_RETURNED = "id, message_id, archived_at, delete_requested_at, deleted_at"
_KEY = "(mailbox_id, uidl_octets, occurrence)"


def _delivery_values(source: str) -> str:
    return ", ".join(
        f"{source}.id"
        if name == "message_id"
        else f"%(delivery__{name})s::{_sql_type(_DELIVERY.c[name])}"
        for name in DELIVERY_COLUMNS
    )


RECORD_NEW = (
    "WITH m AS ("
    f"INSERT INTO {_MESSAGE.fullname} ({', '.join(MESSAGE_COLUMNS)}) VALUES ("
    + ", ".join(_THREAD_ID if name == "thread_id" else f"%({name})s" for name in MESSAGE_COLUMNS)
    + ") ON CONFLICT (sha256) DO NOTHING RETURNING id, subject, attachment_names), "
    + "".join(f"{table.name} AS ({_CHILD_SQL[table.name][0]}), " for table in _CHILDREN)
    + f"d AS (INSERT INTO {_DELIVERY.fullname} ({', '.join(DELIVERY_COLUMNS)}) "
    f"SELECT {_delivery_values('m')} FROM m ON CONFLICT {_KEY} DO NOTHING RETURNING {_RETURNED}) "
    f"SELECT m.id, d.* FROM m LEFT JOIN d ON true"
)
"""A new message with its child rows and its delivery. No row back: the content was already
there, nothing was written. A row with the delivery's columns NULL: the message was written
but the key already had a delivery row."""

RECORD_KNOWN = (
    f"INSERT INTO {_DELIVERY.fullname} ({', '.join(DELIVERY_COLUMNS)}) "
    f"SELECT {_delivery_values('m')} FROM {_MESSAGE.fullname} m WHERE m.sha256 = %(sha256)s "
    f"ON CONFLICT {_KEY} DO NOTHING RETURNING {_RETURNED}"
)
"""A delivery of content already indexed: a row back, or none if the key is recorded or the
content is not (yet) there."""

FIND_MESSAGE = f"SELECT id FROM {_MESSAGE.fullname} WHERE sha256 = %(sha256)s"


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """The delivery row an insert returned."""

    id: int
    message_id: int
    archived_at: datetime
    delete_requested_at: datetime | None
    deleted_at: datetime | None


def find_message(conn: Connection, sha256: str) -> int | None:
    """The id of the message row of content `sha256`, or None."""
    found = prepared.fetch_one(conn, FIND_MESSAGE, {"sha256": sha256})
    return int(found[0]) if found is not None else None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """What `record_new` wrote: the message row, and its delivery unless the key had one."""

    message_id: int
    delivery: DeliveryRow | None


def record_new(
    conn: Connection,
    delivery: Mapping[str, object],
    sha256: str,
    size: int,
    parsed: ParsedMessage,
    texts: AttachmentTexts | None,
) -> NewMessage | None:
    """Insert new content `sha256` and its delivery (`delivery`: the columns of
    `DELIVERY_COLUMNS` but `message_id`); None when the content already had a row."""
    params = {**_prefixed(delivery), **message_values(sha256, size, parsed, texts)}
    params.update(thread_params(parsed))
    rows = child_rows(parsed, texts)
    for table in _CHILDREN:
        params.update(rows_json(table.name, _CHILD_SQL[table.name][1], getattr(rows, table.name)))
    row = prepared.fetch_one(conn, RECORD_NEW, params)
    if row is None:
        return None
    found = None if row[1] is None else DeliveryRow(*row[1:])
    return NewMessage(int(row[0]), found)


def record_known(
    conn: Connection, delivery: Mapping[str, object], sha256: str
) -> DeliveryRow | None:
    """The delivery of content `sha256`, already indexed; None when the key had a row or the
    content has none."""
    row = prepared.fetch_one(conn, RECORD_KNOWN, {**_prefixed(delivery), "sha256": sha256})
    return None if row is None else DeliveryRow(*row)


def thread_params(parsed: ParsedMessage) -> dict[str, str | None]:
    key = thread_key(parsed)
    return {
        "thread_parent": clean(key.parent) if key.parent else None,
        "thread_by_subject": (
            clean(key.subject) if not key.parent and key.by_subject_only and key.subject else None
        ),
        "thread_id": clean(key.thread_id),
        "thread_subject": clean(key.subject),
    }


def rows_json(
    table: str, columns: Sequence[str], rows: Sequence[Mapping[str, object]]
) -> dict[str, str]:
    """The rows as one JSON text; rows without exactly `columns` raise KeyError (a model
    drifted: json_to_recordset would read a missing key as NULL)."""
    if rows and rows[0].keys() != set(columns):
        missing = set(columns) ^ rows[0].keys()
        raise KeyError(f"{table} rows do not match the model's columns: {sorted(missing)}")
    # Raw UTF-8, as a text parameter would be (ensure_ascii would escape it all).
    return {table: json.dumps(rows, ensure_ascii=False, separators=(",", ":"))}


def _prefixed(delivery: Mapping[str, object]) -> dict[str, object]:
    # The delivery's columns share names with the message's (message_id): kept apart.
    return {f"delivery__{name}": value for name, value in delivery.items()}
