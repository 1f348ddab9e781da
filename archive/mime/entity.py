"""One MIME entity of a parsed tree: a compat32 `Message` that knows where it sits in the bytes.

`Entity` is what both tree builders make (`split`, the buffer-scanning splitter, and
`feedtree`, the stdlib feed parser it falls back to): header values stay raw strings under
the compat32 policy, decoded later by this package, because the modern policy's header
parser is slow on long values and raises on access to malformed ones. Parameters of
Content-Type and Content-Disposition are read by `params`, so a hostile boundary
parameter can neither take quadratic time nor raise. Offsets (`start`, `body_start`,
`end`) point into the raw bytes, one character per byte (the input is read as ASCII with
surrogateescape), so a message/rfc822 part can be archived byte for byte instead of being
re-serialised by a generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import utils
from email.message import Message
from email.policy import Policy, compat32
from typing import Any

from archive.mime import params
from archive.mime.defects import Defect

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
        self._type: tuple[str, Defect | None] | None = None

    def use_header_charsets(self, hints: tuple[str, ...]) -> None:
        """Read raw 8-bit parameter text (file names) trying these charsets first.

        Called once the whole tree is known; fields parsed before (the boundary) are
        parsed again when next asked for.
        """
        self._hints = hints
        self._fields.clear()
        self._type = None

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

    def declared_type(self) -> tuple[str, Defect | None]:
        """`params.content_type` of this entity's Content-Type (`flat` aside), computed once
        per field parse and default type (the splitter and the walker ask repeatedly)."""
        if self._type is None:
            self._type = params.content_type(self.field("content-type"), self.get_default_type())
        return self._type

    def set_default_type(self, ctype: str) -> None:
        super().set_default_type(ctype)
        self._type = None

    def get_content_type(self) -> str:
        if self.flat:
            return "application/octet-stream"
        return self._type[0] if self._type is not None else self.declared_type()[0]

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
