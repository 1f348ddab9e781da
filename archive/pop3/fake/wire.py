"""Wire-level helpers of the fake POP3 server: limits, UIDLs, dot-stuffing, TOP, log lines.

Private to `archive.pop3.fake.server`; see its docstring for the behaviour as a whole.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from archive.pop3.fake.server import FakeMailbox

# RFC 2449 §4: a command line is at most 255 octets, CRLF included.
MAX_COMMAND_LINE: Final = 255
# RFC 5034 §4: a SASL response is not a command line; XOAUTH2 tokens run to kilobytes.
MAX_SASL_LINE: Final = 64 * 1024
# An overlong command is skipped up to this many bytes; beyond that the client is hostile.
MAX_DISCARD: Final = 64 * 1024
# After our last byte, wait this long for the client to close first, so the kernel sends FIN
# rather than RST (unread pipelined commands would otherwise make it reset the connection and
# the client could lose response bytes it has not read yet).
CLOSE_DRAIN_SECONDS: Final = 2.0

UIDL_RE: Final = re.compile(r"[\x21-\x7e]{1,70}")  # RFC 1939 §7
# Octets some servers send in a unique-id anyway (Latin-1 names): no space, no control.
UIDL_OCTETS_RE: Final = re.compile(rb"[\x21-\x7e\x80-\xff]{1,70}")
NUMBER_RE: Final = re.compile(r"[0-9]{1,9}")
RESP_CODE_RE: Final = re.compile(r"[A-Za-z0-9/-]+")
_LINE_START_DOT: Final = re.compile(rb"^\.", re.MULTILINE)
_END_OF_HEADER: Final = re.compile(rb"\r?\n\r?\n")

LOGIN_ERROR_TEXT: Final = {
    "IN-USE": "Mailbox is locked",
    "LOGIN-DELAY": "Logged in too recently, try again later",
    "SYS/TEMP": "Temporary server failure, try again later",
    "SYS/PERM": "Permanent server failure",
    "AUTH": "Authentication failed.",
}
AUTH_FAILED: Final = "-ERR [AUTH] Authentication failed."


@dataclass(frozen=True)
class Maildrop:
    """What one session sees: ``positions[i]`` is message i's index in the live mailbox."""

    messages: list[bytes]
    uidls: list[str | bytes]
    positions: list[int]


def uidl_on_wire(uidl: str | bytes) -> str:
    """A UIDL as the session's text, which it encodes with surrogateescape: octets intact."""
    return uidl.decode("ascii", "surrogateescape") if isinstance(uidl, bytes) else uidl


def assign_uidls(box: FakeMailbox) -> list[str | bytes]:
    """Give messages without a UIDL one (see `FakeMailbox`); validates the explicit ones."""
    uidls = box.uidls if box.uidls is not None else []
    if len(uidls) > len(box.messages):
        raise ValueError(f"{len(uidls)} UIDLs for {len(box.messages)} messages")
    for uidl in uidls:
        valid = (
            UIDL_OCTETS_RE.fullmatch(uidl) if isinstance(uidl, bytes) else UIDL_RE.fullmatch(uidl)
        )
        if not valid:
            raise ValueError(f"invalid UIDL {uidl!r} (RFC 1939 §7: 1-70 chars 0x21-0x7E)")
    used = set(uidls)
    for message in box.messages[len(uidls) :]:
        if not isinstance(message, bytes):
            raise TypeError(f"messages must be bytes, got {type(message).__name__}")
        base = hashlib.sha256(message).hexdigest()[:16]
        uidl, copy = base, 1
        while uidl in used:
            copy += 1
            uidl = f"{base}-{copy}"
        used.add(uidl)
        uidls.append(uidl)
    box.uidls = uidls
    return uidls


def dot_stuff(message: bytes) -> bytes:
    """The body of a multi-line response, terminator included (RFC 1939 §3)."""
    stuffed = _LINE_START_DOT.sub(b"..", message)
    if stuffed and not stuffed.endswith(b"\n"):
        # The terminator must start a line; real servers add the missing CRLF.
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def top_of(message: bytes, lines: int) -> bytes:
    """Header, blank line and the first ``lines`` body lines (RFC 1939 §7, TOP)."""
    end = _END_OF_HEADER.search(message)
    if end is None:
        return message
    body_start = end.end()
    cut = body_start
    for _ in range(lines):
        newline = message.find(b"\n", cut)
        if newline < 0:
            return message
        cut = newline + 1
    return message[:cut]


def line_for_log(verb: str, arg: str, *, redact: bool = False) -> str:
    if redact:
        return f"{verb} {arg} ***"
    return f"{verb} {arg}" if arg else verb
