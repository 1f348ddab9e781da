"""mbox: written in the mboxrd convention, read the way mail clients read all three.

Writing (mboxrd): each message follows a separator line `From <sender> <asctime date>`; a
line of the message that starts with `From ` after any number of `>` gets one more `>`, so
reading removes exactly one and every original comes back byte for byte. A blank line ends
each message. Originals from POP3 always end with CRLF (RFC 1939 §3: the terminating "."
follows a CRLF), so nothing is added to them but that blank line.

Reading:
- a separator is a `From ` line at the start of the file or after a blank line that looks like
  one (a sender, then a date with a time and a year), so a body line such as "From here on"
  that an mboxo writer failed to quote does not split a message (the checks mutt and
  Thunderbird make);
- `>From `, `>>From `, … lose one `>` (mboxrd; for mboxo files this undoes their quoting of
  `From ` lines, and their `>From ` lines were ambiguous to begin with);
- a `Content-Length:` header (mboxcl2, Solaris/SVR4 mailers) is trusted when the byte count
  ends exactly at the end of the file or before the next separator; then the body is taken
  verbatim, unquoted lines starting with `From ` included. Otherwise it is ignored.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, BinaryIO

_QUOTABLE = re.compile(rb">*From ")
_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)
_SEPARATOR = re.compile(
    rb"From (?:\"[^\"]*\"|\S+) +(?:[A-Z][a-z]{2},? +)?.*\b\d{1,2}:\d{2}(?::\d{2})?\b.*\b\d{4}\b"
)
_CONTENT_LENGTH = re.compile(rb"content-length:[ \t]*(\d+)[ \t]*\r?\n", re.IGNORECASE)
_BLANK = (b"\n", b"\r\n")


def from_line(sender: str | None, when: datetime) -> bytes:
    """The separator line: envelope sender (no spaces; MAILER-DAEMON when unknown) and the
    date in asctime form, UTC."""
    address = "".join((sender or "").split()) or "MAILER-DAEMON"
    stamp = when.astimezone(UTC).strftime("%a %b %d %H:%M:%S %Y")
    return f"From {address} {stamp}\n".encode("ascii", "replace")


def mbox_entry(raw: bytes, sender: str | None, when: datetime) -> bytes:
    """One message as an mboxrd entry: separator, quoted original, blank line."""
    out = io.BytesIO()
    write_mbox_entry(out, io.BytesIO(raw), sender, when)
    return out.getvalue()


def write_mbox_entry(out: IO[bytes], src: IO[bytes], sender: str | None, when: datetime) -> None:
    """`mbox_entry`, streamed line by line from `src` to `out` (memory stays flat)."""
    out.write(from_line(sender, when))
    last = b"\n"
    for line in src:
        out.write(b">" + line if _QUOTABLE.match(line) else line)
        last = line
    if not last.endswith(b"\n"):
        out.write(b"\n")  # cannot be undone; POP3 originals always end with CRLF
    out.write(b"\n")


def is_separator(line: bytes) -> bool:
    return _SEPARATOR.match(line) is not None


def read_mbox(stream: BinaryIO) -> Iterator[bytes]:
    """Each message of an mbox file (which must be seekable), as the original bytes."""
    line = stream.readline()
    while line and not is_separator(line):
        line = stream.readline()  # garbage before the first separator is not mail
    while line:
        # `line` is a separator; the message starts after it.
        start = stream.tell()
        whole = _by_content_length(stream)
        if whole is not None:
            yield whole
            line = stream.readline()
            while line in _BLANK:
                line = stream.readline()
            continue
        stream.seek(start)
        lines: list[bytes] = []
        previous_blank = False
        line = stream.readline()
        while line and not (previous_blank and is_separator(line)):
            lines.append(line)
            previous_blank = line in _BLANK
            line = stream.readline()
        if lines and lines[-1] in _BLANK:
            lines.pop()  # the blank line before the next separator (or the end) is the format's
        yield _QUOTED.sub(rb"\1", b"".join(lines))


def _by_content_length(stream: BinaryIO) -> bytes | None:
    """The message at the stream's position if its Content-Length header holds, else None
    (the position is then undefined: the caller seeks back)."""
    header: list[bytes] = []
    length: int | None = None
    while True:
        line = stream.readline()
        if not line:
            return None
        header.append(line)
        if line in _BLANK:
            break
        found = _CONTENT_LENGTH.fullmatch(line)
        if found:
            length = int(found.group(1))
    if length is None:
        return None
    body = stream.read(length)
    if len(body) != length:
        return None
    after = stream.tell()
    following = stream.readline()
    if following in _BLANK:
        following = stream.readline()
    if following and not is_separator(following):
        return None
    stream.seek(after)
    return b"".join(header) + body
