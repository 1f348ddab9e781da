"""The MIME splitter: the entity tree found by scanning the buffer for boundary delimiters.

RFC 2046 §5.1.1: a delimiter is a line "--" boundary, transport padding (spaces and tabs)
allowed after it; the close delimiter is "--" boundary "--"; the line break before a
delimiter belongs to it. Instead of reading every line of every part (the stdlib feed
parser's `readline`), each multipart compiles one pattern for its delimiter lines and
searches the whole buffer with it, so a body costs one regex search however many lines
it has; only header blocks are read line by line.

The tree is the one `email.feedparser` builds under compat32 (`feedtree`, which the
tests compare it with), down to its handling of damage, because the index and the walk
in `parse` rely on it:

* lines end at CRLF, CR or LF; a body ends at the first line that any enclosing
  multipart's delimiter matches (RFC 2046 §5.1.2: an outer boundary ends every inner
  part), so a nested multipart reusing the outer boundary, or a boundary that is a prefix
  of another, splits where the feed parser splits;
* no delimiter at all: StartBoundaryNotFoundDefect, the body is the payload; no close
  delimiter: CloseBoundaryNotFoundDefect; repeated delimiter lines make no empty parts;
  a header block without its empty line: MissingHeaderBodySeparatorDefect;
* message/* encloses a message; message/delivery-status is a list of header blocks; the
  children of multipart/digest default to message/rfc822 (RFC 2046 §5.1.5).

Each search resumes where the last one for that delimiter stopped, so a message of
10,000 parts, or inner parts under an outer boundary that never occurs, stays linear.
`Unsupported` hands the one case the splitter does not model (a header block whose last
line is a "From " line, which the feed parser pushes back into the body) to `feedtree`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import errors
from email.feedparser import NLCRE_bol, NLCRE_eol  # type: ignore[attr-defined]
from typing import Protocol

from archive.mime.entity import POLICY, Entity

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
# RFC 5322 §2.2: field lines (a name and ":", an mbox "From " line, a continuation).
_HEADER_BLOCK = re.compile(r"(?:(?:From |[\041-\071\073-\176]*:|[\t ])[^\r\n]*(?:\r\n|\r|\n|\Z))*")
# After "--" boundary: "--" for the close delimiter, transport padding, the line's end.
_DELIMITER_TAIL = re.compile(r"(--)?[ \t]*(\r\n|\r|\n|\Z)")
# A line start is after LF, or after a CR that no LF follows.
_EMPTY_LINE = re.compile(r"(?:(?<=\n)|(?<=\r)(?!\n)|^)[\r\n]")
_IDENTITY = ("7bit", "8bit", "binary")


class Unsupported(Exception):
    """Input the splitter leaves to the feed parser (`feedtree`)."""


class PartLimitReached(Exception):
    """The part limit stopped the split; the parts so far are in `Splitter.open_entities`."""


@dataclass(frozen=True, slots=True)
class _Found:
    """A delimiter line: where it starts and ends, whether it closes, its line break."""

    start: int
    end: int
    close: bool
    linesep: str


class _Ends(Protocol):
    def next(self, pos: int) -> int: ...


class _Delimiter:
    """The next delimiter line of one boundary, from a position on.

    `str.find` for a line break followed by "--" boundary (so text that merely contains
    the boundary costs nothing), then one generic pattern for the optional "--",
    transport padding and line break after it (the feed parser's `boundaryre`): no
    pattern to compile per boundary, which cost more than the search. Every search
    resumes from the last one's result when that is not behind it, so positions that only
    move forward cost one scan in all, however many parts. A lone CR before the needle is
    looked for only up to the LF one found (CRLF text has none: it was a second scan of
    the rest of the message, to its end, for every multipart).
    """

    __slots__ = ("at", "found", "hits", "needle", "origin", "text")

    def __init__(self, boundary: str, text: str) -> None:
        self.needle = "--" + boundary
        self.text = text
        self.origin = self.at = -1
        self.found: _Found | None = None
        # Per line break before the needle: (searched from, up to, index of the hit or -1).
        self.hits = {"\n": (-1, -1, -1), "\r": (-1, -1, -1)}

    def next(self, pos: int) -> int:
        """Offset of the first delimiter line starting at or after `pos` (len(text): none)."""
        if not self.origin <= pos <= self.at:
            self.found = self._search(pos)
            self.origin = pos
            self.at = self.found.start if self.found else len(self.text)
        return self.at

    def _hit(self, brk: str, origin: int, end: int) -> int:
        """Index of the first line break `brk` + needle at or after `origin`; -1: none that
        ends by `end`."""
        searched, until, index = self.hits[brk]
        if not (0 <= searched <= origin and (index >= origin or (index < 0 and end <= until))):
            index = self.text.find(brk + self.needle, origin, end)
            self.hits[brk] = (origin, end, index)
        return index

    def _search(self, pos: int) -> _Found | None:
        if pos == 0 and self.text.startswith(self.needle):
            found = self._line(0)
            if found:
                return found
        origin = max(pos - 1, 0)  # a break at pos - 1 starts a line at pos
        while True:
            lf = self._hit("\n", origin, len(self.text))
            # The needle holds no LF (params drops line breaks), so a CR hit before the LF
            # one ends before it: the search for it can stop there.
            cr = self._hit("\r", origin, lf if lf >= 0 else len(self.text))
            hits = [hit for hit in (lf, cr) if hit >= 0]
            if not hits:
                return None
            at = min(hits)
            found = self._line(at + 1)
            if found:
                return found
            origin = at + 1

    def _line(self, start: int) -> _Found | None:
        """The delimiter line at `start`, if the rest of the line makes it one."""
        tail = _DELIMITER_TAIL.match(self.text, start + len(self.needle))
        if tail is None:
            return None
        return _Found(start, tail.end(), tail.group(1) is not None, tail.group(2))


class _EmptyLines:
    """The next empty line from a position on (ends a message/delivery-status block)."""

    __slots__ = ("at", "origin", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.origin = self.at = -1

    def next(self, pos: int) -> int:
        if not self.origin <= pos <= self.at:
            match = _EMPTY_LINE.search(self.text, pos)
            self.origin = pos
            self.at = match.start() if match else len(self.text)
        return self.at


def _strip_eol(value: str) -> str:
    """The value without its last line break (RFC 2046 §5.1.1: it is the delimiter's)."""
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith(("\r", "\n")):
        return value[:-1]
    return value


class Splitter:
    """Splits one message; `split()` returns the root `Entity` or raises (see `tree`)."""

    def __init__(self, raw: bytes, max_depth: int, max_parts: int) -> None:
        # One character per byte, so character offsets are byte offsets.
        self.text = raw.decode("ascii", "surrogateescape")
        self.max_depth = max_depth
        self.max_parts = max_parts
        self.pos = 0
        self.created = 0
        self.stack: list[Entity] = []
        self.ends: list[_Ends] = []  # delimiters that end the current body, outermost first
        self.last: Entity | None = None  # the entity whose trailing line break a delimiter takes

    def split(self) -> Entity:
        self._entity()
        root = self._pop()
        if root.get_content_maintype() == "multipart" and not root.is_multipart():
            POLICY.handle_defect(root, errors.MultipartInvariantViolationDefect())
        return root

    def open_entities(self) -> list[Entity]:
        """The entities still open when splitting stopped early, outermost first."""
        for entity in self.stack:
            if entity.end < 0:
                entity.end = self.pos
            if entity.body_start < 0:
                entity.body_start = entity.end
        return self.stack

    def _limit(self) -> int:
        """Where the current body ends: the first line an enclosing delimiter matches."""
        limit = len(self.text)
        for lines in self.ends:
            at = lines.next(self.pos)
            if at < limit:
                limit = at
        return limit

    def _new(self) -> Entity:
        if self.created >= self.max_parts:
            raise PartLimitReached
        self.created += 1
        entity = Entity(POLICY)
        parent = self.stack[-1] if self.stack else None
        # RFC 2046 §5.1.5; `parent and` as the feed parser writes it (a Message is falsy
        # without header fields).
        if parent and parent.get_content_type() == "multipart/digest":
            entity.set_default_type("message/rfc822")
        if parent is not None:
            parent.attach(entity)
        self.stack.append(entity)
        self.last = entity
        entity.start = self.pos
        if len(self.stack) > self.max_depth + 1:
            entity.flat = True
        return entity

    def _pop(self) -> Entity:
        entity = self.stack.pop()
        entity.end = self.pos
        return entity

    def _readline(self) -> str:
        """The next line within the current body ("" at its end), consumed."""
        if self.pos >= self._limit():
            return ""
        match = _LINE.match(self.text, self.pos)
        line = match.group() if match else ""
        self.pos += len(line)
        return line

    def _entity(self) -> None:
        entity = self._new()
        limit = self._limit()
        # The header lines (the feed parser's headerRE, line by line) in one match.
        block = _HEADER_BLOCK.match(self.text, self.pos, limit)
        lines = _lines(block.group()) if block else []
        self.pos = block.end() if block else self.pos
        if self.pos < limit:
            # The empty line ends the header block; any other line begins the body.
            if self.text[self.pos] in "\r\n":
                match = _LINE.match(self.text, self.pos)
                self.pos += len(match.group()) if match else 0
            else:
                POLICY.handle_defect(entity, errors.MissingHeaderBodySeparatorDefect())
        _parse_headers(entity, lines)
        entity.body_start = self.pos
        if entity.get_content_type() == "message/delivery-status":
            self._delivery_status()
        elif entity.get_content_maintype() == "message":
            self._entity()
            self._pop()
        elif entity.get_content_maintype() == "multipart":
            self._multipart(entity)
        else:
            limit = self._limit()
            entity.set_payload(self.text[self.pos : limit])
            self.pos = limit

    def _delivery_status(self) -> None:
        """RFC 3464 §2.1: header blocks separated by empty lines, one entity each."""
        empty = _EmptyLines(self.text)
        while True:
            self.ends.append(empty)
            self._entity()
            self._pop()
            self.ends.pop()
            self._readline()  # the empty line
            line = self._readline()
            if not line:
                return
            self.pos -= len(line)

    def _multipart(self, entity: Entity) -> None:
        boundary = entity.get_boundary()
        if boundary is None:
            POLICY.handle_defect(entity, errors.NoBoundaryInMultipartDefect())
            limit = self._limit()
            entity.set_payload(self.text[self.pos : limit])
            self.pos = limit
            return
        # RFC 2045 §6.4: a multipart is never transfer-encoded.
        if str(entity.get("content-transfer-encoding", "8bit")).lower() not in _IDENTITY:
            POLICY.handle_defect(entity, errors.InvalidMultipartContentTransferEncodingDefect())
        delimiter = _Delimiter(boundary, self.text)
        limit = self._limit()
        at = delimiter.next(self.pos)
        found = delimiter.found
        if at >= limit or found is None or found.close:
            # No delimiter before the body's end, or a close delimiter first.
            POLICY.handle_defect(entity, errors.StartBoundaryNotFoundDefect())
            entity.set_payload(self.text[self.pos : min(at, limit)])
            self.pos = self._limit()
            entity.epilogue = ""
            return
        if at > self.pos:
            entity.preamble = _strip_eol(self.text[self.pos : at])
        closed, linesep = False, ""
        while True:
            self.pos = found.end
            # Delimiter lines that follow one another enclose no part.
            while (
                self.pos < self._limit()
                and delimiter.next(self.pos) == self.pos
                and delimiter.found is not None
            ):
                self.pos = delimiter.found.end
            self.ends.append(delimiter)
            self._entity()
            self._take_line_break()
            self.ends.pop()
            self._pop()
            self.last = entity
            if self.pos >= self._limit():
                break
            if delimiter.next(self.pos) != self.pos or delimiter.found is None:
                raise Unsupported("a part ended off a delimiter")
            found = delimiter.found
            if found.close:
                closed, linesep = True, found.linesep
                self.pos = found.end
                break
        if not closed:
            POLICY.handle_defect(entity, errors.CloseBoundaryNotFoundDefect())
            return
        limit = self._limit()
        epilogue = self.text[self.pos : limit]
        if not linesep and (bol := NLCRE_bol.match(epilogue)):
            epilogue = epilogue[bol.end() :]
        entity.epilogue = epilogue
        self.pos = limit

    def _take_line_break(self) -> None:
        """RFC 2046 §5.1.1: the line break before a delimiter is the delimiter's, not the
        last entity's (a multipart's epilogue, else a leaf's payload)."""
        last = self.last
        if last is None:
            return
        if last.get_content_maintype() == "multipart":
            if last.epilogue == "":
                last.epilogue = None
            elif last.epilogue is not None:
                last.epilogue = _strip_eol(last.epilogue)
        elif isinstance(last._payload, str):
            last._payload = _strip_eol(last._payload)


def _lines(text: str) -> list[str]:
    """`text` cut after each CRLF, CR or LF (`_LINE`), in C: splitlines, unless it also cut
    at one of the other breaks it knows (VT, FF, FS, GS, RS), which the line count shows."""
    lines = text.splitlines(keepends=True)
    breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
    if breaks + (text[-1:] not in ("\r", "\n", "")) == len(lines):
        return lines
    return [line for line in _LINE.findall(text) if line]


def _parse_headers(entity: Entity, lines: list[str]) -> None:
    """The header lines of one entity into its fields (RFC 5322 §2.2, §3.6), as the feed
    parser reads them under compat32: raw values, continuation lines kept.

    A field's value is what compat32's `header_source_parse` makes of its lines, written
    out here: the first line after the ":" without leading blanks, the continuation
    lines as they are, the last line break dropped."""
    name, value, more = "", "", []
    for number, line in enumerate(lines):
        if line[0] in " \t":
            if not name:
                POLICY.handle_defect(entity, errors.FirstHeaderLineIsContinuationDefect(line))
                continue
            more.append(line)
            continue
        if name:
            entity.set_raw(name, (value.lstrip(" \t") + "".join(more)).rstrip("\r\n"))
            name, value, more = "", "", []
        if line.startswith("From "):
            if number == 0:
                eol = NLCRE_eol.search(line)
                entity.set_unixfrom(line[: eol.start()] if eol else line)
                continue
            if number == len(lines) - 1:
                raise Unsupported('a "From " line ends the header block')
            entity.defects.append(errors.MisplacedEnvelopeHeaderDefect(line))
            continue
        colon = line.find(":")
        if colon == 0:
            entity.defects.append(errors.InvalidHeaderDefect("Missing header name."))
            continue
        name, value, more = line[:colon], line[colon + 1 :], []
    if name:
        entity.set_raw(name, (value.lstrip(" \t") + "".join(more)).rstrip("\r\n"))
