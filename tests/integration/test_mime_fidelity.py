"""Every leaf part accounted for; files inside TNEF and uuencode extracted; bad input bounded."""

from __future__ import annotations

import email
import email.message
import hashlib
import struct
from email.policy import compat32
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from archive.config import Settings
from archive.index.ledger import IndexWriter
from archive.mime import Defect, DefectKind, ParseLimits, parse_message
from tests.support.corpus import CORPUS_FILES, corpus_params

_ENCLOSED = {"message/rfc822", "message/global", "message/news"}


def test_the_corpus_is_there(corpus: Path):
    # A corpus that is there must be whole (71 messages), not only non-empty.
    assert len(CORPUS_FILES) >= 70, f"only {len(CORPUS_FILES)} .eml files under {corpus}"


def stdlib_leaves(raw: bytes) -> int:
    """Leaf parts as the stdlib parser sees them (an enclosed message counts as one too)."""
    count, stack = 0, [email.message_from_bytes(raw, policy=compat32)]
    while stack:
        part = stack.pop()
        if part.get_content_type() == "message/delivery-status":
            count += 1  # the stdlib splits it into header blocks; it is one part
        elif part.is_multipart():
            count += part.get_content_type() in _ENCLOSED
            stack.extend(p for p in part.get_payload() if isinstance(p, email.message.Message))
        else:
            count += 1
    return count


@pytest.mark.usefixtures("corpus")
@pytest.mark.parametrize("path", corpus_params())
def test_corpus_every_leaf_is_accounted_for(path: Path):
    raw = path.read_bytes()
    first, second = parse_message(raw), parse_message(raw)
    assert first == second
    assert [a.sha256 for a in first.attachments] == [a.sha256 for a in second.attachments]
    for attachment in first.attachments:
        assert attachment.sha256 == hashlib.sha256(attachment.data).hexdigest()
    own = [a.path for a in first.attachments if "~" not in a.path]
    accounted = [*first.body_parts, *first.skipped_parts, *own]
    assert len(accounted) == len(set(accounted)), "a part was counted twice"
    if not any(defect.kind is DefectKind.PART_LIMIT for defect in first.defects):
        # Never fewer parts than the reference parser sees; more where parts are recovered.
        assert len(accounted) >= stdlib_leaves(raw)


def _tnef(files: list[tuple[str, bytes]], body: bytes = b"") -> bytes:
    def attribute(level: int, name: int, kind: int, data: bytes) -> bytes:
        checksum = sum(data) & 0xFFFF
        return (
            struct.pack("<BHHI", level, name, kind, len(data)) + data + struct.pack("<H", checksum)
        )

    out = struct.pack("<IH", 0x223E9F78, 1)
    if body:
        out += attribute(1, 0x800C, 0x0002, body)
    for name, data in files:
        out += attribute(2, 0x9002, 0x0006, b"\x01\x00" + b"\xff" * 12)
        out += attribute(2, 0x8010, 0x0001, name.encode() + b"\x00")
        out += attribute(2, 0x800F, 0x0006, data)
    return out


def _multipart(*parts: tuple[str, bytes]) -> bytes:
    out = b"From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
    out += b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
    for headers, body in parts:
        out += b"--XX\r\n" + headers.encode() + b"\r\n\r\n" + body + b"\r\n"
    return out + b"--XX--\r\n"


def test_tnef_files_become_attachments():
    import base64

    winmail = _tnef(
        [("report.txt", b"quarterly numbers"), ("chart.png", b"\x89PNG data")],
        body=b"Sent from Outlook",
    )
    raw = _multipart(
        ("Content-Type: text/plain", b"see attached"),
        (
            "Content-Type: application/ms-tnef; name=winmail.dat\r\n"
            "Content-Transfer-Encoding: base64",
            base64.encodebytes(winmail),
        ),
    )
    parsed = parse_message(raw)
    by_path = {a.path: a for a in parsed.attachments}
    assert by_path["2"].data == winmail
    assert by_path["2"].text == "Sent from Outlook"  # searchable
    assert (by_path["2~tnef1"].filename, by_path["2~tnef1"].data) == (
        "report.txt",
        b"quarterly numbers",
    )
    assert by_path["2~tnef1"].content_type == "text/plain"
    assert (by_path["2~tnef2"].filename, by_path["2~tnef2"].content_type) == (
        "chart.png",
        "image/png",
    )


def test_broken_tnef_is_kept_with_a_defect():
    raw = _multipart(("Content-Type: application/ms-tnef", b"not tnef at all"))
    parsed = parse_message(raw)
    assert [a.path for a in parsed.attachments] == ["1"]
    (defect,) = parsed.defects
    assert (defect.kind, defect.part_path) == (DefectKind.BAD_TNEF, "1")
    assert defect.detail.startswith("TNEF not decoded")


def test_uuencoded_block_in_a_body_becomes_an_attachment():
    import binascii

    payload = bytes(range(256)) * 3
    lines = b"".join(binascii.b2a_uu(payload[i : i + 45]) for i in range(0, len(payload), 45))
    body = b"Hello,\r\nthe file:\r\n\r\nbegin 644 data.bin\r\n" + lines.replace(b"\n", b"\r\n")
    body += b"`\r\nend\r\n\r\nBye\r\n"
    raw = b"From: a@example.com\r\nSubject: uu\r\n\r\n" + body
    parsed = parse_message(raw)
    (attachment,) = parsed.attachments
    assert (attachment.path, attachment.filename, attachment.data) == ("0~uu1", "data.bin", payload)
    assert "[uuencoded file data.bin]" in parsed.body_text
    assert "Bye" in parsed.body_text and "begin 644" not in parsed.body_text


def test_prose_that_says_begin_is_not_uudecoded():
    raw = b"From: a@example.com\r\n\r\nbegin 644 is a file mode\r\nof course\r\nend\r\n"
    parsed = parse_message(raw)
    assert parsed.attachments == () and "begin 644" in parsed.body_text


def test_signed_and_encrypted_payloads_are_attachments():
    raw = _multipart(
        (
            'Content-Type: multipart/encrypted; boundary=E; protocol="application/pgp-encrypted"',
            b"--E\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
            b"--E\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n"
            b"--E--",
        ),
    )
    parsed = parse_message(raw)
    assert [(a.path, a.content_type) for a in parsed.attachments] == [
        ("1.1", "application/pgp-encrypted"),
        ("1.2", "application/octet-stream"),
    ]


def test_delivery_status_is_searchable_text(fresh_engine: Engine):
    report = b"Reporting-MTA: dns; mx.example.com\r\n\r\nFinal-Recipient: rfc822; gone@example.org\r\nStatus: 5.1.1\r\n"
    raw = _multipart(
        ("Content-Type: text/plain", b"Delivery failed."),
        ("Content-Type: message/delivery-status", report),
    )
    parsed = parse_message(raw)
    status = next(a for a in parsed.attachments if a.content_type == "message/delivery-status")
    assert status.text is not None and "gone@example.org" in status.text
    _record(fresh_engine, raw)
    with fresh_engine.connect() as conn:
        found = conn.execute(text("SELECT count(*) FROM archive.search('gone@example.org')"))
        assert found.scalar() == 1


def _record(
    engine: Engine, raw: bytes, limits: ParseLimits | None = None
) -> list[tuple[str, str | None, str]]:
    """Archive `raw`; its defect rows (kind, part_path, detail) from archive.defects."""
    digest = hashlib.sha256(raw).hexdigest()
    with IndexWriter(engine).mailbox("box", "pop.example.com", "u") as index:
        index.record(
            (digest.encode(), 0), digest, len(raw), parse_message(raw, limits or ParseLimits())
        )
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.kind, d.part_path, d.detail FROM archive.defects d "
                "JOIN archive.messages m ON m.id = d.message_id "
                "WHERE m.sha256 = :s ORDER BY d.ordinal"
            ),
            {"s": digest},
        )
        return [(row.kind, row.part_path, row.detail) for row in rows]


def test_ten_thousand_parts_are_archived_within_the_limit(fresh_engine: Engine):
    raw = _multipart(
        *[("Content-Type: application/octet-stream", b"x%d" % i) for i in range(10_000)]
    )
    defects = _record(fresh_engine, raw)
    assert ("part_limit", None, "parts after the first 1000 not parsed") in defects
    with fresh_engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM archive.attachments")).scalar()
    assert 0 < count < 1000


def test_500_levels_of_nesting_are_archived_with_a_defect(fresh_engine: Engine):
    raw = b"From: a@example.com\r\nSubject: deep\r\n"
    for level in range(500):
        raw += b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (level, level)
    raw += b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    defects = _record(fresh_engine, raw)
    kinds = [kind for kind, _, _ in defects]
    # 33 levels read (each without its closing boundary), the 34th not parsed.
    assert kinds.count("missing_final_boundary") == 33
    assert [(k, p) for k, p, _ in defects if k == "depth_limit"] == [
        ("depth_limit", ".".join("1" * 33))
    ]


def test_fifty_megabyte_header_is_archived_cut_with_a_defect(fresh_engine: Engine):
    raw = (
        b"From: a@example.com\r\nSubject: big\r\nX-Big: " + b"a" * (50 << 20) + b"\r\n\r\nbody\r\n"
    )
    defects = _record(fresh_engine, raw)
    assert ("header_limit", None, f"X-Big: {50 << 20} characters, cut to {256 * 1024}") in defects
    with fresh_engine.connect() as conn:
        length = conn.execute(
            text("SELECT max(length(value)) FROM archive.headers WHERE name = 'x-big'")
        ).scalar()
    assert length == 256 * 1024


def test_parse_limits_come_from_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAILARCHIVE_PARSE_MAX_PARTS", "5")
    monkeypatch.setenv("MAILARCHIVE_PARSE_MAX_DEPTH", "3")
    monkeypatch.setenv("MAILARCHIVE_PARSE_MAX_HEADER_BYTES", "100")
    monkeypatch.setenv("MAILARCHIVE_PARSE_MAX_TEXT_CHARS", "1000")
    limits = Settings().parse_limits()
    assert limits == ParseLimits(
        max_parts=5, max_depth=3, max_header_bytes=100, max_text_chars=1000
    )
    raw = _multipart(*[("Content-Type: application/octet-stream", b"x") for _ in range(20)])
    assert parse_message(raw, limits).defects == (
        Defect(DefectKind.PART_LIMIT, None, "parts after the first 5 not parsed"),
    )


def test_enclosed_message_headers_are_searchable_text():
    inner = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\r\nSubject: Original report\r\n"
        b"X-Other: not shown\r\n\r\ninner body\r\n"
    )
    raw = _multipart(
        ("Content-Type: text/plain", b"forwarded"), ("Content-Type: message/rfc822", inner)
    )
    parsed = parse_message(raw)
    enclosed = next(a for a in parsed.attachments if a.content_type == "message/rfc822")
    assert enclosed.text == "From: Jürgen <j@example.de>\nSubject: Original report"
    assert "inner body" in parsed.body_text


def test_enclosed_message_headers_are_rows_linked_to_the_outer_message(fresh_engine: Engine):
    inner = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\r\nTo: team@example.org\r\n"
        b"Subject: Original report\r\nX-Trace: 42\r\n\r\ninner body\r\n"
    )
    raw = _multipart(
        ("Content-Type: text/plain", b"forwarded"), ("Content-Type: message/rfc822", inner)
    )
    parsed = parse_message(raw)
    path = next(a.path for a in parsed.attachments if a.content_type == "message/rfc822")
    assert [(h.part_path, h.name, h.value) for h in parsed.enclosed_headers] == [
        (path, "from", "Jürgen <j@example.de>"),
        (path, "to", "team@example.org"),
        (path, "subject", "Original report"),
        (path, "x-trace", "42"),
    ]
    _record(fresh_engine, raw)
    with fresh_engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT h.part_path, h.name, h.value FROM archive.headers h "
                "JOIN archive.messages m ON m.id = h.message_id "
                "WHERE m.sha256 = :s AND h.name IN ('subject', 'x-trace') ORDER BY h.ordinal"
            ),
            {"s": hashlib.sha256(raw).hexdigest()},
        ).all()
    # The outer message's own subject (part_path NULL), then the enclosed message's fields.
    assert [tuple(r) for r in rows][-2:] == [
        (path, "subject", "Original report"),
        (path, "x-trace", "42"),
    ]
    assert rows[0].part_path is None
