"""Legal holds (migration 0009): placed on a mailbox, on the messages a search query matches
when the hold is placed, or on single messages; released with a reason, never deleted.

A held message's rows cannot be deleted (triggers on `message` and `delivery` refuse, whatever
path tries: retention, forget, SQL by hand), so its objects stay referenced and gc keeps them;
gc also asks `held_sha256s` before removing an original. Every change is recorded in the
audit trail in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from archive.errors import PermanentError
from archive.index import audit
from archive.index.objects import originals_with_prefix
from archive.index.search import INVALID_PARAMETER_VALUE

MIN_PREFIX = 4
_PAGE = 10_000  # archive.search's largest page


class HoldError(PermanentError):
    """A hold cannot be placed or released as asked (names the hold, mailbox or hash)."""


@dataclass(frozen=True, slots=True)
class HoldInfo:
    """One row of `archive.holds`."""

    name: str
    kind: str
    reason: str
    mailbox: str | None
    query: str | None
    created_at: datetime
    created_by: str
    active: bool
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None
    messages: int

    def as_json(self) -> dict[str, Any]:
        data = {field: getattr(self, field) for field in self.__slots__}
        for key in ("created_at", "released_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def list_holds(conn: Connection, *, active_only: bool = False) -> list[HoldInfo]:
    rows = conn.execute(
        text(
            "SELECT name, kind, reason, mailbox, query, created_at, created_by, active, "
            "released_at, released_by, release_reason, messages FROM archive.holds "
            "WHERE active OR NOT :active_only ORDER BY created_at, id"
        ),
        {"active_only": active_only},
    )
    return [HoldInfo(**row._asdict()) for row in rows]


def held_sha256s(conn: Connection) -> set[str]:
    """The SHA-256s of every object an active hold covers: the held messages' originals
    (kept by hash even if their rows were gone) and their attachments."""
    return set(
        conn.execute(
            text(
                "SELECT sha256 FROM archive.held_messages UNION "
                "SELECT a.sha256 FROM mailarchive.attachment a "
                "JOIN archive.held_messages h ON h.message_id = a.message_id"
            )
        ).scalars()
    )


def held_in_mailbox(conn: Connection, mailbox_id: int) -> list[str]:
    """SHA-256s of the held messages delivered to a mailbox: while there are any, none of
    its deliveries of them can be deleted (what `mailbox forget` must check first)."""
    return list(
        conn.execute(
            text(
                "SELECT DISTINCT h.sha256 FROM archive.held_messages h "
                "JOIN mailarchive.delivery d ON d.message_id = h.message_id "
                "WHERE d.mailbox_id = :id ORDER BY 1"
            ),
            {"id": mailbox_id},
        ).scalars()
    )


def create(
    conn: Connection,
    name: str,
    reason: str,
    *,
    mailbox: str | None = None,
    query: str | None = None,
    messages: Sequence[str] = (),
) -> HoldInfo:
    """Place a hold in `conn`'s transaction (the caller commits). Exactly one of `mailbox`,
    `query` or `messages` (SHA-256s or unique prefixes). A query is evaluated now, with
    `archive.search`, and the messages it matched are kept as the hold's list."""
    chosen = sum(bool(x) for x in (mailbox, query, messages))
    if chosen != 1:
        raise HoldError(f"hold {name!r}: give exactly one of a mailbox, a query or messages")
    if not name.strip() or not reason.strip():
        raise HoldError("a hold needs a name and a reason")
    if conn.execute(
        text("SELECT 1 FROM mailarchive.hold WHERE name = :n AND released_at IS NULL"), {"n": name}
    ).first():
        raise HoldError(f"hold {name!r} is already active (release it or choose another name)")
    audit.identify(conn)
    mailbox_id = None
    hashes: list[str] = []
    if mailbox:
        mailbox_id = conn.execute(
            text("SELECT id FROM mailarchive.mailbox WHERE name = :n"), {"n": mailbox}
        ).scalar()
        if mailbox_id is None:
            raise HoldError(f"hold {name!r}: no mailbox {mailbox!r} in the archive")
        kind = "mailbox"
    elif query:
        kind = "query"
        hashes = _matching(conn, query)
    else:
        kind = "messages"
        hashes = [_resolve(conn, name, given) for given in messages]
    hold_id = conn.execute(
        text(
            "INSERT INTO mailarchive.hold (name, kind, reason, mailbox_id, mailbox_name, query) "
            "VALUES (:name, :kind, :reason, :mailbox_id, :mailbox, :query) RETURNING id"
        ),
        {
            "name": name,
            "kind": kind,
            "reason": reason,
            "mailbox_id": mailbox_id,
            "mailbox": mailbox,
            "query": query,
        },
    ).scalar_one()
    if hashes:
        conn.execute(
            text(
                "INSERT INTO mailarchive.hold_message (hold_id, sha256, message_id) "
                "SELECT :hold, m.sha256, m.id FROM mailarchive.message m "
                "WHERE m.sha256 = ANY(:hashes) ON CONFLICT DO NOTHING"
            ),
            {"hold": hold_id, "hashes": sorted(set(hashes))},
        )
    info = _one(conn, hold_id)
    audit.record(
        conn,
        "hold_create",
        {
            "hold": name,
            "kind": kind,
            "reason": reason,
            "mailbox": mailbox,
            "query": query,
            "messages": info.messages,
        },
    )
    return info


def release(conn: Connection, name: str, reason: str) -> HoldInfo:
    """Release the active hold `name` (kept, with who, when and why), in `conn`'s transaction."""
    if not reason.strip():
        raise HoldError(f"releasing hold {name!r} needs a reason")
    hold_id = conn.execute(
        text(
            "UPDATE mailarchive.hold SET released_at = now(), released_by = session_user, "
            "release_reason = :reason WHERE name = :name AND released_at IS NULL RETURNING id"
        ),
        {"name": name, "reason": reason},
    ).scalar()
    if hold_id is None:
        raise HoldError(f"no active hold named {name!r} (`mailarchive hold list` shows them)")
    info = _one(conn, hold_id)
    audit.record(conn, "hold_release", {"hold": name, "reason": reason, "messages": info.messages})
    return info


def _one(conn: Connection, hold_id: int) -> HoldInfo:
    row = conn.execute(
        text(
            "SELECT name, kind, reason, mailbox, query, created_at, created_by, active, "
            "released_at, released_by, release_reason, messages FROM archive.holds WHERE id = :id"
        ),
        {"id": hold_id},
    ).one()
    return HoldInfo(**row._asdict())


def _matching(conn: Connection, query: str) -> list[str]:
    """Every message `query` matches now, through archive.search (so the evaluation is itself
    a recorded search)."""
    found: list[str] = []
    offset = 0
    while True:
        try:
            page = list(
                conn.execute(
                    text("SELECT sha256 FROM archive.search(:q, :n, :o)"),
                    {"q": query, "n": _PAGE, "o": offset},
                ).scalars()
            )
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != INVALID_PARAMETER_VALUE:
                raise
            diag = getattr(exc.orig, "diag", None)
            problem = getattr(diag, "message_primary", None) or str(exc.orig)
            raise HoldError(f"hold query {query!r}: {problem}") from None
        found.extend(page)
        if len(page) < _PAGE:
            return found
        offset += _PAGE


def _resolve(conn: Connection, hold: str, given: str) -> str:
    digest = given.strip().lower()
    if len(digest) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in digest):
        raise HoldError(
            f"hold {hold!r}: {given!r} is not a SHA-256 or a prefix of {MIN_PREFIX}+ hex digits"
        )
    found = originals_with_prefix(conn, digest, limit=2)
    if not found:
        raise HoldError(f"hold {hold!r}: no archived message has a SHA-256 starting with {digest}")
    if len(found) > 1:
        raise HoldError(f"hold {hold!r}: SHA-256 prefix {digest} is ambiguous; give more digits")
    return found[0]
