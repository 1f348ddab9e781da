"""Python access to `archive.search(query, max_rows)`, the SQL function of migration 0003.

The query language lives in the database (migrations/sql/search_0003.sql), so psql and the
command line answer the same way; this module only calls it and turns a malformed query,
which the function reports as SQLSTATE 22023, into `QueryError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from archive.errors import QueryError

INVALID_PARAMETER_VALUE = "22023"
DEFAULT_LIMIT = 50
_SEARCH = text(
    "SELECT id, mailbox, uidl, sent_at, from_address, subject, rank, snippet, thread_id, sha256 "
    "FROM archive.search(:query, :max_rows)"
)


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


def search(engine: Engine, query: str, limit: int = DEFAULT_LIMIT) -> list[SearchHit]:
    """Run `archive.search`; raises QueryError for a malformed query or limit."""
    if "\x00" in query:  # PostgreSQL text cannot hold NUL; the driver would refuse it
        raise QueryError("search query contains a NUL character")
    try:
        with engine.connect() as conn:
            rows = conn.execute(_SEARCH, {"query": query, "max_rows": limit}).all()
    except DBAPIError as exc:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate == INVALID_PARAMETER_VALUE:
            diag = getattr(exc.orig, "diag", None)
            message = getattr(diag, "message_primary", None) or str(exc.orig)
            hint = getattr(diag, "message_hint", None)
            raise QueryError(f"{message} ({hint})" if hint else message) from None
        raise
    return [SearchHit(**row._asdict()) for row in rows]
