"""archive.pop3.wire.unstuff: RFC 1939 §3 dot-unstuffing and the ".CRLF" terminator, by block.

A multi-line response arrives in buffer-sized blocks cut anywhere, so the same bytes must come
out whatever the cuts, and nothing after the terminator may be consumed.
"""

from __future__ import annotations

import random

import pytest

from archive.pop3.wire import unstuff


def test_stuffed_dot_is_dropped_and_the_terminator_found():
    data = b"line\r\n..dot\r\n.\r\n+OK next"
    assert unstuff(data, True) == (b"line\r\n.dot\r\n", 16, b"", True)
    assert data[16:] == b"+OK next"


def test_terminator_alone():
    assert unstuff(b".\r\n", True) == (b"", 3, b"", True)


def test_bare_lf_lines_and_terminator():
    assert unstuff(b"a\n..b\n.\nrest", True) == (b"a\n.b\n", 8, b"", True)


def test_a_dot_opening_the_block_is_stuffing_only_at_a_line_start():
    assert unstuff(b"..x\r\n", True) == (b".x\r\n", None, b"", True)
    assert unstuff(b".x\r\n", False) == (b".x\r\n", None, b"", True)


def test_a_dot_inside_a_line_is_data():
    assert unstuff(b"a.b\r\n.c", True) == (b"a.b\r\nc", None, b"", False)


@pytest.mark.parametrize("tail", [b".", b".\r"])
def test_a_line_start_dot_without_its_next_bytes_is_carried(tail):
    # ".", ".\r": a terminator or a stuffed dot; the next block decides.
    assert unstuff(b"abc\r\n" + tail, True) == (b"abc\r\n", None, tail, True)


def test_the_line_state_follows_the_last_byte():
    assert unstuff(b"abc", True)[3] is False
    assert unstuff(b"abc\r\n", False)[3] is True


def _unstuff_in_pieces(wire: bytes, cuts: list[int]) -> tuple[bytes, int]:
    """Feed `wire` to `unstuff` in pieces cut at `cuts`, as Wire.multiline_blocks does."""
    out, carry, at_start, consumed = b"", b"", True, 0
    edges = [0, *sorted(set(cuts)), len(wire)]
    for start, stop in zip(edges, edges[1:], strict=False):
        data = wire[start:stop]
        if not data:
            continue
        block, end, carry_next, at_start = unstuff(carry + data, at_start)
        out += block
        if end is not None:
            return out, consumed + end - len(carry)
        consumed += len(data)
        carry = carry_next
    raise AssertionError("no terminator found")


@pytest.mark.parametrize("seed", range(40))
def test_block_unstuffing_matches_line_unstuffing(seed):
    rng = random.Random(seed)
    lines = [
        rng.choice([b".", b"..", b".x", b"x.", b"", b"\r", b"line", b".\r", b"...", b"a" * 300])
        + rng.choice([b"\r\n", b"\n"])
        for _ in range(rng.randint(0, 30))
    ]
    body = b"".join(lines)
    stuffed = b"".join(b"." + line if line.startswith(b".") else line for line in lines)
    trailer = b"+OK next pipelined response\r\n"
    wire = stuffed + b".\r\n" + trailer
    cuts = [rng.randint(0, len(wire)) for _ in range(rng.randint(0, 12))]
    out, consumed = _unstuff_in_pieces(wire, cuts)
    assert out == body
    assert wire[consumed:] == trailer  # the next response stays unread
