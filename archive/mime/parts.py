"""Reading one MIME entity: its body bytes, disposition, file name, Content-ID.

Also the two decisions made by looking at siblings or at a body: which child of a
multipart/alternative is the body (RFC 2046 §5.1.4), and which boundary a multipart
really uses when the declared one never occurs.
"""

from __future__ import annotations

import io
import re
from email.generator import BytesGenerator

from archive.mime.defects import Defect, DefectKind
from archive.mime.transfer import decode_transfer
from archive.mime.tree import POLICY, Entity
from archive.mime.words import unescape, unfold

BODY_TYPES = frozenset({"text/plain", "text/html"})

# RFC 2046 §5.1.1: bchars, 1 to 70 of them, not ending in a space.
_DELIMITER_LINE = re.compile(
    rb"^--([0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?])[ \t]*\r?$", re.MULTILINE
)
_HEADER_LINE = re.compile(rb"\r?\n[!-9;-~]+:")  # RFC 5322 §3.6.8 field name, then ":"
_MAX_CONTENT_ID = 998  # RFC 5322 §2.1.1 line length


def raw_body(entity: Entity, raw: bytes) -> bytes | None:
    """The entity's body as it is in `raw`, or None if its offsets are unknown."""
    if entity.body_start < 0 or entity.end < entity.body_start:
        return None
    end = entity.end
    if end < len(raw):
        # RFC 2046 §5.1.1: the line break before a boundary belongs to the boundary.
        if raw.endswith(b"\r\n", entity.body_start, end):
            end -= 2
        elif raw.endswith((b"\r", b"\n"), entity.body_start, end):
            end -= 1
    return raw[entity.body_start : end]


def generated_body(entity: Entity) -> bytes:
    """Fallback when offsets are unknown: the body re-generated, From lines unmangled."""
    payload = entity.get_payload()
    if not isinstance(payload, list):
        return b""
    out = io.BytesIO()
    generator = BytesGenerator(out, mangle_from_=False, policy=POLICY)
    for part in payload:
        if isinstance(part, Entity):
            generator.flatten(part)
    return out.getvalue()


def payload(entity: Entity, raw: bytes) -> bytes:
    """The body as sent (still transfer-encoded)."""
    value = entity.body_bytes()
    if value is not None:
        return value
    body = raw_body(entity, raw)
    return body if body is not None else generated_body(entity)


def disposition(entity: Entity) -> tuple[str | None, Defect | None]:
    """RFC 2183 disposition type and a problem; unknown types count as attachment (§2.8)."""
    field = entity.field("content-disposition")
    if field is None or not field.value:
        return None, None
    if field.value in ("inline", "attachment"):
        return field.value, None
    return "attachment", Defect(
        DefectKind.BAD_DISPOSITION,
        None,
        f"unknown disposition {field.value[:40]!r}, treated as attachment",
    )


def filename(entity: Entity) -> str | None:
    """RFC 2183 §2.3 filename, else the deprecated Content-Type name (RFC 2046 §4.5.1)."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        field = entity.field(header)
        value = field.params.get(param, "").strip() if field else ""
        if value:
            return value
    return None


def is_attachment(entity: Entity) -> bool:
    """Text with a file name or an attachment disposition is kept as a file, not as body."""
    return disposition(entity)[0] == "attachment" or filename(entity) is not None


def content_id(entity: Entity) -> str | None:
    """Content-ID (RFC 2045 §7) without angle brackets, so it matches cid: URLs."""
    raw = entity.raw_header("content-id")
    if raw is None:
        return None
    text = unescape(unfold(raw[: _MAX_CONTENT_ID * 2]))[0].strip()
    # RFC 2392: the cid: URL form is the msg-id without its angle brackets.
    return text.strip("<>").strip()[:_MAX_CONTENT_ID] or None


def has_text(entity: Entity, raw: bytes) -> bool:
    """Whether the decoded body has anything but white space."""
    encoding = entity.raw_header("content-transfer-encoding")
    return bool(decode_transfer(payload(entity, raw), encoding)[0].strip())


def choose_alternative(children: list[Entity], raw: bytes) -> int | None:
    """RFC 2046 §5.1.4 alternatives: plain text if it has any, else HTML, else a multipart.

    An empty text/plain next to a real HTML part is what some mass mailers send.
    """
    plain = html = nested = None
    for index, child in enumerate(children):
        content_type = child.get_content_type()
        if content_type in BODY_TYPES and is_attachment(child):
            continue
        if content_type == "text/plain" and plain is None and has_text(child, raw):
            plain = index
        elif content_type == "text/html" and html is None:
            html = index
        elif content_type.startswith("multipart/") and nested is None:
            nested = index
    for choice in (plain, html, nested):
        if choice is not None:
            return choice
    return None


def find_delimiter(data: bytes) -> bytes | None:
    """The boundary a multipart body really uses: a "--" line followed by a header line."""
    match = _DELIMITER_LINE.search(data, 0, 64 * 1024)
    if match is None or not _HEADER_LINE.match(data, match.end()):
        return None
    return match.group(1).removesuffix(b"--") or match.group(1)


def find_part_start(data: bytes, boundary: bytes) -> int | None:
    """Offset of the first "--boundary" line in `data` that a header line follows."""
    line = re.compile(b"^--" + re.escape(boundary) + rb"[ \t]*\r?$", re.MULTILINE)
    for match in line.finditer(data):
        if _HEADER_LINE.match(data, match.end()):
            return match.start()
    return None


def subtree_size(entity: Entity) -> int:
    """Entities in the subtree, counted iteratively (the tree may be deep)."""
    size, pending = 0, [entity]
    while pending:
        current = pending.pop()
        size += 1
        children = current.get_payload()
        if isinstance(children, list):
            pending.extend(child for child in children if isinstance(child, Entity))
    return size


# Enough to find the text parts of any real message; the look is cheap but not free.
_CHARSET_SCAN_PARTS = 200


def text_charsets(root: Entity) -> tuple[str, ...]:
    """The charsets declared by the message's text parts, in order, for raw 8-bit header
    text: a mailer that writes 8-bit headers writes them in the charset of its text.
    Every entity is told them, for the file names in its parameters."""
    found: list[str] = []
    entities: list[Entity] = []
    stack = [root]
    while stack and len(entities) < _CHARSET_SCAN_PARTS:
        entity = stack.pop()
        entities.append(entity)
        payload = entity.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([c for c in payload if isinstance(c, Entity)]))
        elif entity.get_content_maintype() == "text":
            field = entity.field("content-type")
            charset = field.params.get("charset") if field else None
            if charset and charset.lower() not in found:
                found.append(charset.lower())
    hints = tuple(found)
    if hints and any(not value.isascii() for entity in entities for _, value in entity.raw_items()):
        for entity in entities:
            entity.use_header_charsets(hints)
    return hints
