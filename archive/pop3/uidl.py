"""Unique-ids as octets, and their escaped text form for people and SQL users.

RFC 1939 §7 says a unique-id is 1-70 octets in 0x21-0x7E, but servers send other octets
(Latin-1 names in a maildrop's id). A unique-id is therefore kept as the octets the server
sent, never decoded: two ids that differ in one octet are two ids. `uidl_text` shows one as
text, with every octet outside 0x21-0x7E and the backslash escaped (`\\xfc`, `\\\\`), so the
text form is reversible (`uidl_octets`) and two different ids never show alike.
"""

from __future__ import annotations

import re

__all__ = ["uidl_octets", "uidl_text"]

_ESCAPE = re.compile(rb"[^\x21-\x5b\x5d-\x7e]")
_UNESCAPE = re.compile(r"\\(?:x([0-9a-f]{2})|(\\))")


def uidl_text(octets: bytes) -> str:
    """The unique-id as ASCII text: printable octets as they are, others as `\\xNN`."""
    escaped = _ESCAPE.sub(
        lambda m: b"\\\\" if m.group() == b"\\" else b"\\x%02x" % m.group()[0], octets
    )
    return escaped.decode("ascii")


def uidl_octets(text: str) -> bytes:
    """The octets `uidl_text` made `text` from; raises ValueError for any other text."""
    octets = _UNESCAPE.sub(lambda m: m.group(2) or chr(int(m.group(1), 16)), text)
    try:
        result = octets.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{text!r} is not an escaped unique-id") from None
    if uidl_text(result) != text:
        raise ValueError(f"{text!r} is not an escaped unique-id")
    return result
