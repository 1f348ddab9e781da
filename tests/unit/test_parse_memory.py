"""Memory of parsing a large message, measured with tracemalloc (no clock involved).

The message's own bytes are allocated before tracing starts, so a peak is what parsing adds
on top of them. Before the fixes these bounds guard, an 8 MB attachment peaked at ~6.6x its
size and an 8 MB text part at ~5.5x: the feed parser was handed the whole message at once
(a str copy and a list of every line), and base64 and newline clean-ups were regex
substitutions, which hold every line as a piece before joining. See docs/benchmarks.md.
"""

from __future__ import annotations

import base64
import hashlib
import random
import tempfile
import tracemalloc
from collections.abc import Callable
from typing import TypeVar

from archive.mime import ParseLimits, parse_message
from archive.pipeline.ingest import parse_original

T = TypeVar("T")

SIZE = 8_000_000


def _traced_peak(work: Callable[[], T]) -> tuple[T, int]:
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _head(content_type: str) -> bytes:
    return (
        "From: a@example.org\r\nTo: b@example.net\r\nSubject: big\r\n"
        f"MIME-Version: 1.0\r\nContent-Type: {content_type}\r\n"
    ).encode()


def _with_attachment(size: int) -> tuple[bytes, bytes]:
    data = random.Random(1).randbytes(size * 3 // 4)
    raw = (
        _head('multipart/mixed; boundary="b"')
        + b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        + b"--b\r\nContent-Type: application/octet-stream\r\n"
        + b'Content-Disposition: attachment; filename="scan.bin"\r\n'
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(data).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    return raw, data


def _with_text(size: int) -> bytes:
    line = b"quarterly ledger review Gr=C3=BC=C3=9Fe archive retention budget invoice 123\r\n"
    head = _head("text/plain; charset=utf-8") + b"Content-Transfer-Encoding: quoted-printable\r\n"
    return head + b"\r\n" + line * (size // len(line))


def test_a_large_attachment_costs_under_four_times_its_size() -> None:
    raw, data = _with_attachment(SIZE)
    parsed, peak = _traced_peak(lambda: parse_message(raw, ParseLimits()))
    (attachment,) = parsed.attachments
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert peak < 4 * len(raw), f"peak {peak / len(raw):.2f}x the message"


def test_a_large_text_part_costs_under_five_times_its_size() -> None:
    raw = _with_text(SIZE)
    parsed, peak = _traced_peak(lambda: parse_message(raw, ParseLimits(max_text_chars=SIZE)))
    assert parsed.body_text.startswith("quarterly ledger review Grüße")
    assert "\r" not in parsed.body_text
    assert peak < 4.6 * len(raw), f"peak {peak / len(raw):.2f}x the message"


def test_a_message_over_the_parse_limit_is_never_read_whole() -> None:
    raw, _ = _with_attachment(SIZE)
    with tempfile.TemporaryFile() as spool:
        spool.write(raw)
        del raw
        parsed, peak = _traced_peak(
            lambda: parse_original(spool, SIZE, ParseLimits(), max_bytes=SIZE // 2)
        )
    assert parsed.envelope.subject == "big"
    assert peak < 2 << 20, f"peak {peak} bytes for a header-only parse"
