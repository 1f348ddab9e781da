"""The stdlib MIME parser, bounded, hardened and taught where each part sits in the bytes.

`email.feedparser` does the splitting (RFC 2046 §5.1 boundaries, RFC 5322 header blocks,
defects instead of exceptions) under the compat32 policy: header values stay raw strings
that are decoded later by this package, because the modern policy's header parser is slow
on long values and raises on access to malformed ones. Four things are added by
subclassing, all through internals unchanged since Python 3.3:

* Parameters of Content-Type and Content-Disposition are read by `params`, so a hostile
  boundary parameter can neither take quadratic time nor raise inside the parser.
* Parts nested deeper than the depth limit are parsed as opaque leaves ("flat"): the
  parser recurses once per level and would otherwise hit RecursionError at ~900 levels.
* Parsing stops once the part limit is reached, so a message of a million empty parts
  does not become a million Message objects.
* Every part records the offsets of its first header line, its body and its end in the
  raw bytes, so a message/rfc822 part can be archived byte for byte instead of being
  re-serialised by a generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import feedparser, utils
from email.feedparser import BytesFeedParser
from email.message import Message
from email.parser import BytesParser
from email.policy import Policy, compat32
from typing import Any

from archive.mime import params
from archive.mime.defects import Defect, DefectKind

# The parser's line buffer is internal API, absent from typeshed.
_BufferedSubFile: Any = feedparser.BufferedSubFile  # type: ignore[attr-defined]

FEED_BLOCK = 1 << 16
"""Bytes handed to the feed parser at a time."""

POLICY = compat32  # raise_on_defect is False: defects are collected, never raised


class Entity(Message):
    """A Message that knows its byte offsets and parses its MIME parameters linearly."""

    _payload: Any  # set by Message; declared here for the type checker

    def __init__(self, policy: Policy = POLICY) -> None:
        super().__init__(policy)
        self.start = -1
        self.body_start = -1
        self.end = -1
        self.flat = False
        self._fields: dict[str, params.ParamField | None] = {}
        self._hints: tuple[str, ...] = ()

    def use_header_charsets(self, hints: tuple[str, ...]) -> None:
        """Read raw 8-bit parameter text (file names) trying these charsets first.

        Called once the whole tree is known; fields parsed before (the boundary) are
        parsed again when next asked for.
        """
        self._hints = hints
        self._fields.clear()

    def raw_header(self, name: str) -> str | None:
        """The first value of header `name` exactly as parsed (surrogate-escaped, folded)."""
        wanted = name.lower()
        for key, value in self.raw_items():
            if key.lower() == wanted:
                return str(value)
        return None

    def body_bytes(self) -> bytes | None:
        """A leaf's body exactly as sent; None for multipart and message/* entities.

        Not get_payload(): without decode=True it decodes 8-bit bodies with the declared
        charset and errors="replace", and with it undoes the transfer encoding the stdlib's
        way, which gives up on damaged base64.
        """
        value = self._payload
        return value.encode("utf-8", "surrogateescape") if isinstance(value, str) else None

    def field(self, name: str) -> params.ParamField | None:
        """Content-Type or Content-Disposition, parsed once (the parser asks repeatedly)."""
        wanted = name.lower()
        if wanted not in self._fields:
            self._fields[wanted] = params.parse(self.raw_header(wanted), self._hints)
        return self._fields[wanted]

    def get_content_type(self) -> str:
        if self.flat:
            return "application/octet-stream"
        return params.content_type(self.field("content-type"), self.get_default_type())[0]

    def get_boundary(self, failobj: Any = None) -> Any:
        content_type = self.field("content-type")
        boundary = content_type.params.get("boundary") if content_type else None
        # RFC 2046 §5.1.1: a boundary does not end in white space; an empty one is useless.
        boundary = boundary.rstrip() if boundary else None
        return boundary or failobj

    def _get_params_preserve(self, failobj: Any, header: str) -> Any:
        """Keeps the stdlib's get_param()/get_params() on the linear parser too."""
        parsed = self.field(header)
        if parsed is None:
            return failobj
        return [(parsed.value, "")] + [
            (name, f'"{utils.quote(value)}"') for name, value in parsed.params.items()
        ]


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


@dataclass(frozen=True, slots=True)
class Tree:
    """A parsed entity tree and the bytes its offsets point into.

    `problem` says why the tree is incomplete; `headers_only` means the body could not be
    parsed at all and only the root's header fields are usable.
    """

    root: Entity
    raw: bytes
    problem: Defect | None = None
    headers_only: bool = False


def describe(exc: BaseException) -> str:
    """Exception text for a defect: short, single-line, never the whole message."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def parse_tree(raw: bytes, *, max_depth: int, max_parts: int) -> Tree:
    """Parse `raw` into entities; never raises for any input.

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
        problem = Defect(
            DefectKind.PART_LIMIT, None, f"parts after the first {max_parts} not parsed"
        )
    except Exception as exc:  # RecursionError, MemoryError or a stdlib bug on odd input
        problem = Defect(
            DefectKind.PARSE_FAILED, None, f"MIME structure not fully parsed: {describe(exc)}"
        )
    try:
        stack = parser.open_messages()
    except Exception:
        stack = []
    if stack:
        return Tree(stack[0], raw, problem)
    return _headers_only(raw, problem)


def _headers_only(raw: bytes, problem: Defect) -> Tree:
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
