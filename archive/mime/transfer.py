"""Content-Transfer-Encoding (RFC 2045 §6) undone leniently: decode what can be decoded.

The stdlib's `get_payload(decode=True)` gives up on base64 whose length is one more than
a multiple of four and then returns the still-encoded text; an archive would rather keep
every complete byte and say that the tail was damaged.
"""

from __future__ import annotations

import binascii
import re
from collections import Counter

import pybase64

from archive.mime.defects import Defect, DefectKind

_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_UUENCODE = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})
_MECHANISM = re.compile(r'\s*"?\s*([A-Za-z0-9_.+-]*)')
_LINE_SPACE = b" \t\r\n"
_B64_IGNORED = re.compile(rb"[^A-Za-z0-9+/=]+")
_B64_NOT_SPACE = re.compile(rb"[^A-Za-z0-9+/=\s]")
_WHITE_SPACE = b" \t\n\r\x0b\x0c"  # what \s matches in a bytes pattern
_WHITE_SPACE_CHARS = tuple(bytes([c]) for c in _WHITE_SPACE)
_B64_RUN = re.compile(rb"([^=]+)(=*)")
_B64_CLEAN_LINE = re.compile(rb"[A-Za-z0-9+/]+={0,2}")
_B64_NOT_ALPHABET = re.compile(rb"[^A-Za-z0-9+/]")
_B64_PADDED_START = re.compile(rb"[A-Za-z0-9+/]+={1,2}")
_B64_NOT_DATA = re.compile(rb"[^A-Za-z0-9+/=]")
# RFC 2045 §6.7 rule (3): white space at the end of an encoded line is transport padding
# and is deleted, so "=" followed by white space is still a soft line break.
_QP_SOFT_BREAK_PADDED = re.compile(rb"=[ \t]+(?=\r?\n|\r|\Z)")


def mechanism(header_value: str | None) -> str:
    """The lower-cased mechanism token of a Content-Transfer-Encoding value ("" if absent)."""
    if header_value is None:
        return ""
    match = _MECHANISM.match(header_value)
    return match.group(1).lower() if match else ""


def _decode_runs(cleaned: bytes, problems: list[Defect]) -> bytes:
    """Alphabet characters and padding to bytes, keeping every complete byte."""
    runs = _B64_RUN.findall(cleaned)
    if len(runs) > 1:
        problems.append(_base64("padding inside the data"))
    out = bytearray()
    for run, padding in runs:
        dangling = len(run) % 4
        if dangling == 1:
            # A single sextet cannot make a byte: the data was cut mid-quantum.
            problems.append(_base64("truncated, last character dropped"))
            run = run[:-1]
        elif dangling:
            if not padding:
                problems.append(_base64("padding missing"))
            run += b"=" * (4 - dangling)
        try:
            out += binascii.a2b_base64(run)
        except binascii.Error as exc:  # not expected after cleaning; keep the bytes so far
            problems.append(_base64(str(exc)))
    return bytes(out)


def _line_width(lines: list[bytes], clean: list[bool]) -> int | None:
    """The length of the encoder's full lines (76 for most), if it is clear and a
    multiple of four, so that every full line decodes on its own."""
    widths = Counter(len(line) for line, ok in zip(lines, clean, strict=True) if ok)
    if not widths:
        return None
    width, count = widths.most_common(1)[0]
    return width if count >= 3 and width % 4 == 0 else None


def _damaged_line(line: bytes, width: int) -> tuple[bytes, int]:
    """The bytes of a line that should have held `width` characters of aligned data;
    (bytes, how many characters could not be decoded). The line ends on a quantum
    boundary, so the damage is confined to the quanta it hit."""
    valid = _B64_IGNORED.sub(b"", line).replace(b"=", b"")
    if len(valid) % 4 == 0:
        return binascii.a2b_base64(valid), 0  # junk inserted, ignored as §6.8 says
    bad = [match.start() for match in _B64_NOT_ALPHABET.finditer(line)]
    if len(line) == width and bad:  # characters replaced in place: skip the quanta hit
        out = bytearray()
        lost = 0
        for start in range(0, len(line), 4):
            quantum = line[start : start + 4]
            if _B64_CLEAN_LINE.fullmatch(quantum) and b"=" not in quantum:
                out += binascii.a2b_base64(quantum)
            else:
                lost += 4
        return bytes(out), lost
    # Characters lost (or junk of another length put in their place): the quanta before
    # the damage are aligned from the line's start, those after it from the line's end.
    head = line[: (bad[0] if bad else len(line)) // 4 * 4]
    tail = _B64_IGNORED.sub(b"", line[bad[-1] + 1 :]).replace(b"=", b"") if bad else b""
    tail = tail[len(tail) % 4 :]
    decoded = (binascii.a2b_base64(head) if head else b"") + (
        binascii.a2b_base64(tail) if tail else b""
    )
    return decoded, len(valid) - len(head) - len(tail)


def _whole_quanta(data: bytes) -> bool:
    """Without its white space, `data` is whole 4-character quanta with padding only at the
    end: what `_B64_IGNORED.sub(b"", data)` would show, found without copying `data`."""
    blanks = sum(data.count(c) for c in _WHITE_SPACE_CHARS)
    if (len(data) - blanks) % 4:
        return False
    pad = data.find(b"=")
    return pad < 0 or not data[pad:].translate(None, _WHITE_SPACE + b"=")


def decode_base64(data: bytes) -> tuple[bytes, list[Defect]]:
    """RFC 2045 §6.8 base64, keeping every complete byte of damaged input.

    Characters outside the alphabet are ignored as §6.8 requires (a defect unless they are
    line breaks). Damage stays local: when the encoder's lines have a regular width, a
    damaged line is decoded on its own, so the lines after it stay aligned. Padding
    inside the data, as left by mailers that encode in independent chunks, splits it into
    runs decoded one after another, if only base64 lines follow; text after the padding,
    or after the last base64 line (a list footer appended to the part), is not data.
    """
    # Valid base64 in lines, as nearly every mailer writes it: the line breaks removed,
    # then one validating SIMD decode (pybase64: alphabet only, padding only at the end,
    # whole quanta), fifty times binascii's speed; anything it would have to skip or
    # guess at goes the careful way.
    try:
        return pybase64.b64decode(data.translate(None, _LINE_SPACE), validate=True), []
    except (binascii.Error, ValueError):
        return _lenient_base64(data)


def _lenient_base64(data: bytes) -> tuple[bytes, list[Defect]]:
    problems: list[Defect] = []
    if not _B64_NOT_SPACE.search(data) and _whole_quanta(data):
        # Only white space besides the data, which a2b_base64 skips: no cleaned copy (a
        # regex substitution held every line as a piece of its own, ~2.5x the part).
        try:
            return binascii.a2b_base64(data), problems
        except binascii.Error:
            pass
    lines = [line for line in (raw.strip() for raw in data.splitlines()) if line]
    clean = [bool(_B64_CLEAN_LINE.fullmatch(line)) for line in lines]
    width = _line_width(lines, clean)
    # later_clean[i]: a base64 line follows line i; later_full[i]: a full-width one does.
    later_clean, later_full = [False] * len(lines), [False] * len(lines)
    for index in range(len(lines) - 2, -1, -1):
        after = index + 1
        later_clean[index] = later_clean[after] or clean[after]
        later_full[index] = later_full[after] or (clean[after] and len(lines[after]) == width)
    out = bytearray()
    pending = bytearray()
    for index, line in enumerate(lines):
        damaged = clean[index] and width and len(line) % 4 and later_full[index]
        if clean[index] and not damaged:
            pending += line
            if line.endswith(b"=") and not all(clean[index + 1 :]):
                ignored = sum(len(rest) for rest in lines[index + 1 :])
                problems.append(_base64(f"{ignored} characters after the padding ignored"))
                break
            continue
        padded = None if damaged else _B64_PADDED_START.match(line)
        if padded and not _B64_CLEAN_LINE.fullmatch(line[padded.end() :]):
            # Data and its padding, then text on the same line: the text is not data.
            pending += padded.group()
            ignored = len(line) - padded.end() + sum(len(rest) for rest in lines[index + 1 :])
            problems.append(_base64(f"{ignored} characters after the padding ignored"))
            break
        if not damaged and not _B64_NOT_DATA.search(line):
            pending += line  # alphabet and padding only: chunks encoded one by one
            continue
        if index and (not later_clean[index] or (width and not later_full[index])):
            ignored = sum(len(rest) for rest in lines[index:])
            problems.append(_base64(f"{ignored} characters of text after the data ignored"))
            break
        if width and len(pending) % 4 == 0:
            out += _decode_runs(bytes(pending), problems)
            pending.clear()
            decoded, lost = _damaged_line(line, width)
            out += decoded
            if lost:
                problems.append(_base64(f"damaged line {index + 1}, {lost} characters not decoded"))
            else:
                problems.append(_base64("characters outside the alphabet ignored"))
            continue
        problems.append(_base64("characters outside the alphabet ignored"))
        pending += _B64_IGNORED.sub(b"", line)
    out += _decode_runs(bytes(pending), problems)
    return bytes(out), list(dict.fromkeys(problems))


def decode_quoted_printable(data: bytes) -> bytes:
    """RFC 2045 §6.7; a2b_qp keeps malformed "=" sequences as they are, as §6.7 advises.

    A relay that pads lines leaves "= " at a soft break, which a2b_qp would keep as text.
    """
    return binascii.a2b_qp(_QP_SOFT_BREAK_PADDED.sub(b"=", data))


def decode_uuencode(data: bytes) -> tuple[bytes, list[Defect]]:
    """uuencode (POSIX uuencode(1)), as Outlook Express and old Unix mailers sent it.

    Lines before "begin" and from "end" on are ignored; a damaged line yields the bytes its
    length character promises, as far as they can be decoded.
    """
    problems: list[Defect] = []
    lines = data.splitlines()
    start = 0
    for index, line in enumerate(lines):
        if line.startswith(b"begin "):
            start = index + 1
            break
    out = bytearray()
    bad_lines = 0
    for line in lines[start:]:
        if line.strip() == b"end" or line.startswith(b"end "):
            break
        if not line.strip():
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            # Some encoders pad lines with extra characters; decode what the length allows.
            wanted = (((line[0] - 32) & 63) * 4 + 5) // 3
            try:
                out += binascii.a2b_uu(line[:wanted])
            except binascii.Error:
                bad_lines += 1
    if bad_lines:
        problems.append(
            Defect(DefectKind.BAD_UUENCODE, None, f"{bad_lines} undecodable lines skipped")
        )
    return bytes(out), problems


def decode_transfer(data: bytes, header_value: str | None) -> tuple[bytes, list[Defect]]:
    """Undo the Content-Transfer-Encoding named by `header_value`; returns (bytes, problems)."""
    name = mechanism(header_value)
    if name in _IDENTITY:
        return data, []
    if name == "base64":
        return decode_base64(data)
    if name == "quoted-printable":
        return decode_quoted_printable(data), []
    if name in _UUENCODE:
        return decode_uuencode(data)
    return data, [
        Defect(
            DefectKind.UNKNOWN_TRANSFER_ENCODING,
            None,
            f"unknown Content-Transfer-Encoding {name!r}, kept encoded",
        )
    ]


def _base64(detail: str) -> Defect:
    return Defect(DefectKind.BAD_BASE64, None, detail)
