"""The one-statement writer stores every child row's text exactly as built: JSON carries
it to PostgreSQL, so escapes, controls and characters outside the BMP must survive."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine, text

from archive.index.ledger import IndexWriter
from archive.index.messages import child_rows
from archive.mime import parse_message

AWKWARD = 'back\\slash "quoted" \x01\x1f tab\there \u2028 Grüße 𝄞 🙂 \\u0041 {a,b} NULL'
RAW = (
    f"From: =?utf-8?q?Zo=C3=AB?= <zoe@example.com>\r\nSubject: {AWKWARD}\r\n"
    f"X-Odd: {AWKWARD}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    f"\r\n{AWKWARD}\r\n"
).encode()


def test_child_rows_are_stored_as_built(fresh_engine: Engine):
    parsed = parse_message(RAW)
    sha256 = hashlib.sha256(RAW).hexdigest()
    with IndexWriter(fresh_engine).mailbox("box", "pop.example", "box") as index:
        recorded = index.record((b"u1", 0), sha256, len(RAW), parsed)
    assert recorded.created
    built = child_rows(parsed)
    with fresh_engine.connect() as conn:
        headers = conn.execute(
            text(
                "SELECT ordinal, part_path, name, value FROM mailarchive.header_field "
                "WHERE message_id = :id ORDER BY ordinal"
            ),
            {"id": recorded.message_id},
        ).all()
        addresses = conn.execute(
            text(
                "SELECT ordinal, role, name, address FROM mailarchive.address "
                "WHERE message_id = :id ORDER BY ordinal"
            ),
            {"id": recorded.message_id},
        ).all()
        subject = conn.execute(
            text("SELECT subject FROM mailarchive.message WHERE id = :id"),
            {"id": recorded.message_id},
        ).scalar_one()
    assert [tuple(row) for row in headers] == [tuple(h.values()) for h in built.header_field]
    assert [tuple(row) for row in addresses] == [tuple(a.values()) for a in built.address]
    # The awkward text reached the rows compared above whole, not normalised on the way.
    assert ("x-odd", AWKWARD) in {(h["name"], h["value"]) for h in built.header_field}
    assert subject == parsed.subject and "𝄞" in subject and "\\u0041" in subject
    assert addresses[0].name == "Zoë"
