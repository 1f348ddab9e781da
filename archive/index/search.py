"""Python access to `archive.search` and `archive.search_count`, the SQL functions of
migration 0006 (0003 before it).

The query language lives in the database (migrations/sql/search_0006.sql), so psql and the
command line answer the same way; this module only calls it and turns a malformed query,
which the function reports as SQLSTATE 22023, into `QueryError`.

Since migration 0009 both functions record each call in the audit trail: the transaction is
committed (a rolled-back search would leave no record) and names the OS user first.

Two ways in, the same SQL: an SQLAlchemy `Engine` (export, tests), or a libpq connection
(`search_page_libpq`), which `mailarchive search` uses so its start-up skips SQLAlchemy.
This module imports neither driver's SQL layer until a search runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from archive.errors import QueryError
from archive.index.identity import OS_USER_SQL, os_user

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Connection, Engine

INVALID_PARAMETER_VALUE = "22023"
DEFAULT_LIMIT = 50
# order_by 'relevance' ranks the best among this many most recent matches (per source:
# message rows, text chunks); 'newest' returns every match.
RANK_WINDOW = 1000
Order = Literal["newest", "relevance"]
_SEARCH = (
    "SELECT id, mailbox, uidl, sent_at, from_address, subject, rank, snippet, thread_id, sha256 "
    "FROM archive.search(:query, :max_rows, :row_offset, :order_by)"
)
_COUNT = "SELECT archive.search_count(:query)"


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One delivery (a message in a mailbox) that matched, best first."""

    id: int
    mailbox: str
    uidl: str
    sent_at: datetime | None
    from_address: str | None
    subject: str | None
    rank: float
    snippet: str | None
    thread_id: str | None
    sha256: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sent_at"] = self.sent_at.isoformat() if self.sent_at else None
        return data


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of results and the number of all of them (rows: a message per mailbox)."""

    hits: list[SearchHit]
    total: int
    offset: int
    order: Order

    @property
    def ranked_a_window(self) -> bool:
        """Relevance order ranked only the most recent RANK_WINDOW matches."""
        return self.order == "relevance" and self.total > RANK_WINDOW


def search(
    engine: Engine,
    query: str,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    order: Order = "newest",
) -> list[SearchHit]:
    """Run `archive.search`; raises QueryError for a malformed query, limit or offset."""
    with _connection(engine, query) as conn:
        return _hits(conn, query, limit, offset, order)


def count(engine: Engine, query: str) -> int:
    """Run `archive.search_count`: how many rows `search` returns over all its pages."""
    from sqlalchemy import text

    from archive.index.audit import identify

    with _connection(engine, query) as conn:
        identify(conn)
        return int(conn.execute(text(_COUNT), {"query": query}).scalar_one())


def search_page(
    engine: Engine,
    query: str,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    order: Order = "newest",
) -> SearchPage:
    """A page of `search` and the exact `count`, in one transaction.

    READ COMMITTED, not one REPEATABLE READ snapshot: the search functions write audit rows,
    which chain only in READ COMMITTED (mail archived between the two may be counted)."""
    from sqlalchemy import text

    with _connection(engine, query) as conn:
        hits = _hits(conn, query, limit, offset, order)
        total = int(conn.execute(text(_COUNT), {"query": query}).scalar_one())
    return SearchPage(hits=hits, total=total, offset=offset, order=order)


def search_page_libpq(
    conn: psycopg.Connection[Any],
    query: str,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    order: Order = "newest",
) -> SearchPage:
    """`search_page` over a psycopg connection (no SQLAlchemy): the same calls, committed."""
    import psycopg
    from psycopg.rows import dict_row

    from archive.index.direct import unavailable

    _refuse_nul(query)
    params = {"query": query, "max_rows": limit, "row_offset": offset, "order_by": order}
    try:
        with conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(_libpq(OS_USER_SQL), {"user": os_user()})
            cursor.execute(_libpq(_SEARCH), params)
            hits = [SearchHit(**row) for row in cursor.fetchall()]
            cursor.execute(_libpq(_COUNT), params)
            counted = cursor.fetchone()
        conn.commit()
    except psycopg.Error as exc:
        _query_error(exc)
        unavailable(exc)
        raise
    assert counted is not None
    return SearchPage(hits=hits, total=int(counted["search_count"]), offset=offset, order=order)


def _libpq(sql: str) -> str:
    """`:name` parameters as psycopg's `%(name)s` (the statements here hold no other colon)."""
    import re

    return re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql)


def _hits(conn: Connection, query: str, limit: int, offset: int, order: Order) -> list[SearchHit]:
    from sqlalchemy import text

    from archive.index.audit import identify

    identify(conn)
    params = {"query": query, "max_rows": limit, "row_offset": offset, "order_by": order}
    return [SearchHit(**row._asdict()) for row in conn.execute(text(_SEARCH), params)]


def _refuse_nul(query: str) -> None:
    if "\x00" in query:  # PostgreSQL text cannot hold NUL; the driver would refuse it
        raise QueryError("search query contains a NUL character")


def _query_error(exc: BaseException | None) -> None:
    """Raise QueryError for a malformed query (SQLSTATE 22023), with the function's words."""
    if getattr(exc, "sqlstate", None) == INVALID_PARAMETER_VALUE:
        diag = getattr(exc, "diag", None)
        message = getattr(diag, "message_primary", None) or str(exc)
        hint = getattr(diag, "message_hint", None)
        raise QueryError(f"{message} ({hint})" if hint else message) from None


@contextmanager
def _connection(engine: Engine, query: str) -> Iterator[Connection]:
    from sqlalchemy.exc import DBAPIError

    _refuse_nul(query)
    try:
        with engine.connect() as conn:
            yield conn
            conn.commit()
    except DBAPIError as exc:
        _query_error(exc.orig)
        raise
