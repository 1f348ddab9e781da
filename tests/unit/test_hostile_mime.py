"""Hostile input: parsing never raises, stays bounded, and names from mail never become paths.

The adversarial set is built here, so these run without ../shared. Property-based tests
(hypothesis) generate and mutate MIME; the coverage-guided fuzz target is
benchmarks/fuzz_parse.py (atheris), run on demand and, time-boxed, by .ci/run.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.mime import ParsedMessage, ParseLimits, parse_message
from archive.pipeline.ingest import parse_original, store_attachments
from archive.store import LocalStore, put_verified, raw_key

HEAD = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hostile\r\n"
MiB = 1 << 20


def _multipart(parts: list[bytes], boundary: bytes = b"b") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    return (
        HEAD
        + b'Content-Type: multipart/mixed; boundary="'
        + boundary
        + b'"\r\n\r\n'
        + body
        + b"--"
        + boundary
        + b"--\r\n"
    )


def _attachment(name: bytes, data: bytes = b"payload") -> bytes:
    return (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + name + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(data)
    )


def _nested(depth: int) -> bytes:
    message = HEAD + b"\r\ninnermost words\r\n"
    for level in range(depth):
        boundary = f"n{level}".encode()
        message = (
            HEAD
            + b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\r\n\r\n--'
            + boundary
            + b"\r\nContent-Type: message/rfc822\r\n\r\n"
            + message
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    return message


ADVERSARIAL: dict[str, bytes] = {
    "10000 parts": _multipart([b"Content-Type: text/plain\r\n\r\npart"] * 10_000),
    "500 nesting levels": _nested(500),
    "50 MB header line": HEAD + b"X-Long: " + b"a" * (50 * MiB) + b"\r\n\r\nbody\r\n",
    "NUL bytes": HEAD + b"Subject: nul\x00byte\r\n\r\nbody\x00with\x00nuls\r\n",
    "invalid base64": HEAD
    + b"Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64***\r\n====\r\n",
    "a charset that lies": HEAD
    + b"Content-Type: text/plain; charset=utf-8\r\n\r\n\xff\xfe\x80 Gr\xfc\xdfe\r\n",
    "unknown charset": HEAD + b"Content-Type: text/plain; charset=x-no-such\r\n\r\nhello\r\n",
    "path traversal name": _multipart([_attachment(b"../../etc/passwd")]),
    "absolute name": _multipart([_attachment(b"/etc/shadow")]),
    "right-to-left override": _multipart([_attachment("invoice\u202egpj.exe".encode())]),
    "CR/LF in name": _multipart([_attachment(b"a\r\n\r\nInjected: yes")]),
    "NUL in name": _multipart([_attachment(b"evil\x00.txt")]),
    "encoded traversal name": _multipart(
        [_attachment(b"=?utf-8?q?=2E=2E=2F=2E=2E=2Fetc=2Fpasswd?=")]
    ),
    "empty message": b"",
    "no headers": b"\r\njust a body\r\n",
    "no body": HEAD,
    "only a line feed": b"\n",
    "unterminated header": b"Subject: =?utf-8?b?",
    "missing boundary": HEAD + b"Content-Type: multipart/mixed\r\n\r\n--x\r\nhi\r\n",
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_input_parses_without_raising(name: str):
    parsed = parse_message(ADVERSARIAL[name])
    assert isinstance(parsed, ParsedMessage)
    assert parsed.part_count >= 0
    # PostgreSQL text cannot hold NUL: whatever reaches the index is cleaned before it.
    assert isinstance(parsed.body_text, str)


def test_limits_are_recorded_as_defects():
    many = parse_message(ADVERSARIAL["10000 parts"])
    assert many.part_count <= ParseLimits().max_parts + 1
    assert many.defects, "a part limit that was hit must be recorded"
    deep = parse_message(ADVERSARIAL["500 nesting levels"])
    assert deep.defects, "a depth limit that was hit must be recorded"


def test_memory_stays_bounded_on_the_largest_inputs():
    # Peak Python allocations while parsing, relative to the input: no copy explosion.
    for name in ("50 MB header line", "10000 parts", "500 nesting levels"):
        data = ADVERSARIAL[name]
        tracemalloc.start()
        parse_message(data)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 8 * len(data) + 64 * MiB, f"{name}: peak {peak} for {len(data)} bytes"


_KEY_PATTERN = re.compile(
    r"(raw/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}\.eml|parts/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64})"
)


def test_names_from_mail_never_reach_a_path_or_key(tmp_path: Path):
    """Every input goes the archiver's way into a real folder: store the original, parse,
    store the parts. Every file that appears is named by a hash, inside the store's root."""
    store = LocalStore(tmp_path / "objects")
    (tmp_path / "objects").mkdir()
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    for name, data in ADVERSARIAL.items():
        sha = hashlib.sha256(data).hexdigest()
        put_verified(store, raw_key(sha), io.BytesIO(data), sha, len(data))
        parsed = parse_original(io.BytesIO(data), len(data), ParseLimits())
        store_attachments(store, parsed)
        assert store.get(raw_key(sha)) == data, f"{name}: original not kept byte for byte"
    written = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert written and all(
        _KEY_PATTERN.fullmatch(p.relative_to(store.root).as_posix()) for p in written
    ), [p for p in written if not _KEY_PATTERN.fullmatch(p.relative_to(store.root).as_posix())]
    assert sorted(p.name for p in tmp_path.iterdir()) == outside_before
    # The names are kept as text in the index, where they are data.
    names = {a.filename for a in parse_message(ADVERSARIAL["path traversal name"]).attachments}
    assert names == {"../../etc/passwd"}


# Property-based: generated and mutated MIME. No deadline: time limits belong in benchmarks/.
_header_name = st.sampled_from(
    [b"Subject", b"From", b"To", b"Content-Type", b"Content-Transfer-Encoding",
     b"Content-Disposition", b"MIME-Version", b"X-Junk"]
)  # fmt: skip
_header_value = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"multipart/mixed; boundary=b", b"multipart/alternative; boundary=\"b\"",
         b"text/plain; charset=iso-2022-jp", b"base64", b"quoted-printable",
         b"attachment; filename*0*=utf-8''%E2%80; filename*1=x", b"=?utf-8?b?w7w=?=",
         b"=?x-unknown?q?a=FF?=", b"message/rfc822", b"text/html; charset=utf-16"]
    ),
)  # fmt: skip
_body = st.lists(
    st.one_of(
        st.binary(max_size=300),
        st.sampled_from([b"--b", b"--b--", b"\r\n", b"=\r\n", b"=FF=", b"<p>x</p>", b".\r\n"]),
    ),
    max_size=30,
).map(b"\r\n".join)


@st.composite
def _messages(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(_header_name, _header_value), max_size=12))
    head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + draw(st.sampled_from([b"\r\n", b"\n", b""])) + draw(_body)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(sorted(ADVERSARIAL.values(), key=len)[:14])))
    for _ in range(draw(st.integers(0, 8))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_messages(), _mutated()))
def test_parse_never_raises_on_generated_mime(data: bytes):
    parsed = parse_message(data, ParseLimits(max_parts=200, max_depth=16))
    assert isinstance(parsed, ParsedMessage)
    for attachment in parsed.attachments:
        assert attachment.sha256 == hashlib.sha256(attachment.data).hexdigest()
