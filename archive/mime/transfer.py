"""Content-Transfer-Encoding (RFC 2045 §6) undone leniently: decode what can be decoded.

The stdlib's `get_payload(decode=True)` gives up on base64 whose length is one more than
a multiple of four and then returns the still-encoded text; an archive would rather keep
every complete byte and say that the tail was damaged.
"""

from __future__ import annotations

import binascii
import re

from archive.mime.defects import Defect, DefectKind

_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_UUENCODE = frozenset({"x-uuencode", "uuencode", "x-uue", "uue"})
_MECHANISM = re.compile(r'\s*"?\s*([A-Za-z0-9_.+-]*)')
_B64_IGNORED = re.compile(rb"[^A-Za-z0-9+/=]+")
_B64_NOT_SPACE = re.compile(rb"[^A-Za-z0-9+/=\s]")
_B64_RUN = re.compile(rb"([^=]+)(=*)")


def mechanism(header_value: str | None) -> str:
    """The lower-cased mechanism token of a Content-Transfer-Encoding value ("" if absent)."""
    if header_value is None:
        return ""
    match = _MECHANISM.match(header_value)
    return match.group(1).lower() if match else ""


def decode_base64(data: bytes) -> tuple[bytes, list[Defect]]:
    """RFC 2045 §6.8 base64, keeping every complete byte of damaged input.

    Characters outside the alphabet are ignored as §6.8 requires (a defect unless they are
    line breaks). Padding inside the data, as left by mailers that encode in independent
    chunks, splits it into runs that are decoded one after another.
    """
    problems: list[Defect] = []
    if _B64_NOT_SPACE.search(data):
        problems.append(_base64("characters outside the alphabet ignored"))
    cleaned = _B64_IGNORED.sub(b"", data)
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
    return bytes(out), problems


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
        # RFC 2045 §6.7; a2b_qp keeps malformed "=" sequences as they are, as §6.7 advises.
        return binascii.a2b_qp(data), []
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
