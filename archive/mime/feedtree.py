"""The stdlib feed parser as a tree builder: the splitter's fallback and its reference.

`email.feedparser` reads the message line by line in Python (about 700 `readline` calls
for a typical message), which made it two thirds of the parser's time; `split` does the
same splitting by scanning the buffer. This builder is kept for the inputs the splitter
hands back (`split.Unsupported`: a header block whose last line is a "From " line, which
the feed parser pushes back into the body out of order; a RecursionError or an
unexpected error), so those parse exactly as before, and the tests compare the two on
every input they have. Added by subclassing, through internals unchanged since
Python 3.3:

* Parts nested deeper than the depth limit are parsed as opaque leaves ("flat"): the
  parser recurses once per level and would otherwise hit RecursionError at ~900 levels.
* Parsing stops once the part limit is reached, so a message of a million empty parts
  does not become a million Message objects.
* Every part records the offsets of its first header line, its body and its end.
"""

from __future__ import annotations

from email import feedparser
from email.feedparser import BytesFeedParser
from email.parser import BytesParser
from typing import Any

from archive.mime.defects import Defect, DefectKind
from archive.mime.entity import POLICY, Entity, Tree, describe

# The parser's line buffer is internal API, absent from typeshed.
_BufferedSubFile: Any = feedparser.BufferedSubFile  # type: ignore[attr-defined]


class _CountingInput(_BufferedSubFile):  # type: ignore[misc]
    """The parser's line buffer, counting how many characters it has handed out."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0

    def readline(self) -> Any:
        line = super().readline()
        if isinstance(line, str):
            self.offset += len(line)
        return line

    def unreadline(self, line: str) -> None:
        self.offset -= len(line)
        super().unreadline(line)


class _PartLimitReached(Exception):
    pass


FEED_BLOCK = 1 << 16
"""Bytes handed to the feed parser at a time."""


class _BoundedParser(BytesFeedParser):
    """BytesFeedParser with offsets, a depth limit (flat parts) and a part limit."""

    def __init__(self, max_depth: int, max_parts: int) -> None:
        super().__init__(_factory=Entity, policy=POLICY)
        # Input is fed as ASCII with surrogateescape: one character per byte, so character
        # offsets are byte offsets.
        self._input: _CountingInput = _CountingInput()
        self._max_depth = max_depth
        self._max_parts = max_parts
        self._created = 0

    def _new_message(self) -> None:
        if self._created >= self._max_parts:
            raise _PartLimitReached
        self._created += 1
        super()._new_message()  # type: ignore[misc]
        entity: Entity = self._cur  # type: ignore[attr-defined]
        entity.start = self._input.offset
        if len(self._msgstack) > self._max_depth + 1:  # type: ignore[attr-defined]
            entity.flat = True

    def _parse_headers(self, lines: list[str]) -> None:
        super()._parse_headers(lines)  # type: ignore[misc]
        self._cur.body_start = self._input.offset  # type: ignore[attr-defined]

    def _pop_message(self) -> Entity:
        entity: Entity = super()._pop_message()  # type: ignore[misc]
        entity.end = self._input.offset
        return entity

    def open_messages(self) -> list[Entity]:
        """The parts still open when parsing stopped early, outermost first."""
        stack: list[Entity] = self._msgstack  # type: ignore[attr-defined]
        for entity in stack:
            if entity.end < 0:
                entity.end = self._input.offset
            if entity.body_start < 0:
                entity.body_start = entity.end
        return stack


def feed_parse_tree(raw: bytes, *, max_depth: int, max_parts: int) -> Tree:
    """Parse `raw` with the feed parser; never raises for any input.

    A parse stopped by the part limit or an unexpected error keeps every part read so far.
    """
    parser = _BoundedParser(max_depth, max_parts)
    try:
        # Fed a block at a time: fed whole, the parser holds a str copy of the message and
        # a list of all its lines at once, ~6x its size (tests/unit/test_parse_memory.py).
        for start in range(0, len(raw), FEED_BLOCK):
            parser.feed(raw[start : start + FEED_BLOCK])
        root = parser.close()
        if isinstance(root, Entity):  # always: the parser's factory is Entity
            return Tree(root, raw)
        problem = Defect(
            DefectKind.PARSE_FAILED, None, "MIME structure not parsed: unexpected message class"
        )
    except _PartLimitReached:
        problem = part_limit(max_parts)
    except Exception as exc:  # RecursionError, MemoryError or a stdlib bug on odd input
        problem = not_fully_parsed(exc)
    try:
        stack = parser.open_messages()
    except Exception:
        stack = []
    if stack:
        return Tree(stack[0], raw, problem)
    return headers_only(raw, problem)


def part_limit(max_parts: int) -> Defect:
    return Defect(DefectKind.PART_LIMIT, None, f"parts after the first {max_parts} not parsed")


def not_fully_parsed(exc: BaseException) -> Defect:
    detail = f"MIME structure not fully parsed: {describe(exc)}"
    return Defect(DefectKind.PARSE_FAILED, None, detail)


def headers_only(raw: bytes, problem: Defect) -> Tree:
    """Last resort: the header block alone, which the parser reads without recursing."""
    try:
        root = BytesParser(_class=Entity, policy=POLICY).parsebytes(raw, headersonly=True)
    except Exception as exc:
        problem = Defect(
            DefectKind.PARSE_FAILED,
            None,
            f"{problem.detail}; headers not parsed either: {describe(exc)}",
        )
        root = Entity()
    if not isinstance(root, Entity):  # pragma: no cover - _class guarantees it
        root = Entity()
    return Tree(root, raw, problem, headers_only=True)
