"""`parse_message`: raw RFC 5322 bytes to a `ParsedMessage`, for any input, within limits.

How a message is read (the rules the index and its searches rely on):

* Parts are numbered like IMAP body sections (RFC 3501 §6.4.5): "1" is the first child of
  the root, "2.1" the first child of part 2; a single-part root is "". The body of a
  message/rfc822 part "2" is numbered below it: its children are "2.1", "2.2", ..., or
  "2.1" if the enclosed message is single-part.
* Body text comes from leaf text/plain and text/html parts that are not attachments
  (no "attachment" disposition and no file name). In a multipart/alternative (RFC 2046
  §5.1.4) the text/plain child is taken, else the first text/html, else the first nested
  multipart; the text parts of the other alternatives are skipped, their other leaves
  (the images of a multipart/related) are attachments. Skipped alternatives with words the
  body lacks (beside a "this is an HTML message" placeholder) are in `alternative_texts`.
* Every other leaf is an attachment: inline images, text parts with a file name, the
  signature of a multipart/signed, the payload of a multipart/encrypted,
  message/delivery-status and the like. The text of text/* attachments and of delivery,
  disposition and feedback reports is kept in `Attachment.text`, so it is searchable.
* Files inside a part are attachments of their own (see `extras`): those of a TNEF
  winmail.dat ("2~tnef1"), and uuencoded blocks in plain body text ("1~uu1"), which are
  replaced in the body text by a "[uuencoded file NAME]" note.
* Every leaf is accounted for: in `body_parts` (read as body text), `skipped_parts` (an
  alternative not chosen, or an empty body), or `attachments`. Parts after a multipart's
  closing boundary (a nested multipart that reused the outer boundary) are recovered.
* An enclosed message (message/rfc822, message/global, message/news) is one attachment
  holding its original bytes, cut from the raw message by offset rather than
  re-generated, and its parts are walked as well. Its readable text is appended to
  body_text, so a forwarded or bounced message can be found by what it says; its header
  fields are in `enclosed_headers` under the enclosure's part path (`headers` and
  `addresses` describe the top-level message only).
* A multipart whose declared boundary never occurs is split at the boundary its body does
  use (a "--" line followed by a header line), if there is one; otherwise its body is
  read as text/plain (RFC 2045 §5.2).
* `part_count` counts every entity walked: containers, leaves, and for an enclosed
  message both the message/rfc822 part and the enclosed message's root.
* Everything that was wrong is a `Defect`: a kind from `DefectKind`, the part it was found
  in (None for the message as a whole) and a detail; the stdlib's defect classes are
  mapped to kinds, their class name kept as the detail.

Limits: the parser stops at `max_parts` parts and parses deeper levels than `max_depth`
as opaque leaves (see `tree`); body text stops at `max_text_chars`. Two costs have their
own per-message budgets: HTML tags (tree building dominates a big HTML body) and
charset guesses (charset_normalizer); the defects list keeps each entry once and at most
`defects.MAX_DEFECTS` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from archive.mime import envelope, extras, parts
from archive.mime.alternatives import Alternatives
from archive.mime.defects import Defect, DefectKind, from_stdlib, summarised
from archive.mime.model import Attachment, Envelope, HeaderField, ParsedMessage, ParseLimits
from archive.mime.text import TextBudget
from archive.mime.transfer import decode_transfer, mechanism
from archive.mime.tree import Entity, Tree, describe, parse_tree

DEFAULT_LIMITS = ParseLimits()

_ENCLOSED = frozenset({"message/rfc822", "message/global", "message/news"})


@dataclass(frozen=True, slots=True)
class _Item:
    """One entity waiting to be walked, and the bytes its offsets point into."""

    entity: Entity
    raw: bytes
    path: str
    depth: int
    body_ok: bool  # False inside an alternative that was not chosen as the body


def _child(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


class _Walker:
    """Walks the entity tree iteratively (no recursion), collecting text and attachments."""

    def __init__(self, limits: ParseLimits, defects: list[Defect]) -> None:
        self.limits = limits
        self.defects = defects
        self.text = TextBudget(limits, defects)
        self.attachments: list[Attachment] = []
        self.body_parts: list[str] = []
        self.skipped_parts: list[str] = []
        self.enclosed_headers: list[HeaderField] = []
        self.alternatives = Alternatives(self.text, defects)
        self.count = 0

    def walk(self, tree: Tree) -> None:
        stack = [_Item(tree.root, tree.raw, "", 0, True)]
        while stack:
            item = stack.pop()
            if item.depth > self.limits.max_depth:
                self.defects.append(_too_deep(item.path, self.limits.max_depth))
                continue
            if self.count >= self.limits.max_parts:
                left = sum(parts.subtree_size(pending.entity) for pending in [item, *stack])
                self.defects.append(Defect(DefectKind.PART_LIMIT, None, f"{left} parts not parsed"))
                return
            self.count += 1
            stack.extend(reversed(self._visit(item)))

    def _visit(self, item: _Item) -> list[_Item]:
        entity, path = item.entity, item.path
        self.defects.extend(from_stdlib(defect, path) for defect in entity.defects)
        for header in ("content-type", "content-disposition"):
            field = entity.field(header)
            if field is not None:
                self.defects.extend(p.at(path).within(header) for p in field.problems)
        content_type, problem = entity.declared_type()
        if problem:
            self.defects.append(problem.at(path))
        if content_type.startswith("multipart/"):
            if entity.is_multipart():
                return self._children(item, content_type)
            return self._broken_multipart(item, content_type)
        if content_type in _ENCLOSED:
            return self._enclosed(item, content_type)
        self._leaf(item, content_type)
        return []

    def _children(self, item: _Item, content_type: str) -> list[_Item]:
        payload = item.entity.get_payload()
        children = (
            [c for c in payload if isinstance(c, Entity)] if isinstance(payload, list) else []
        )
        chosen = None
        if content_type == "multipart/alternative":
            chosen = parts.choose_alternative(children, item.raw)
        items = [
            _Item(
                child,
                item.raw,
                _child(item.path, index),
                item.depth + 1,
                item.body_ok and (chosen is None or chosen == index - 1),
            )
            for index, child in enumerate(children, 1)
        ]
        return items + self._after_closing(item, len(children))

    def _after_closing(self, item: _Item, count: int) -> list[_Item]:
        """Parts after the closing delimiter, in what RFC 2046 §5.1.1 calls the epilogue.

        Mailers that reuse the outer boundary for a nested multipart close the outer one
        early, and the parts after it (often the attachment) land there.
        """
        epilogue, boundary = item.entity.epilogue, item.entity.get_boundary()
        room = self.limits.max_parts - self.count
        if not epilogue or not boundary or room <= 0:
            return []
        data = epilogue.encode("utf-8", "surrogateescape")
        start = parts.find_part_start(data, boundary.encode("utf-8", "surrogateescape"))
        if start is None:
            return []
        header = f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        tree = parse_tree(
            header.encode("utf-8", "surrogateescape") + data[start:],
            max_depth=max(self.limits.max_depth - item.depth, 0),
            max_parts=room + 1,
        )
        payload = tree.root.get_payload()
        found = [c for c in payload if isinstance(c, Entity)] if isinstance(payload, list) else []
        if not found:
            return []
        self.defects.append(
            Defect(
                DefectKind.PARTS_AFTER_CLOSE,
                item.path,
                f"{len(found)} parts after the closing boundary, recovered",
            )
        )
        return [
            _Item(child, tree.raw, _child(item.path, count + index), item.depth + 1, item.body_ok)
            for index, child in enumerate(found, 1)
        ]

    def _broken_multipart(self, item: _Item, content_type: str) -> list[_Item]:
        path = item.path
        data = parts.payload(item.entity, item.raw)
        boundary = parts.find_delimiter(data)
        room = self.limits.max_parts - self.count
        if boundary is not None and room > 0:
            header = f'Content-Type: {content_type}; boundary="{boundary.decode()}"\r\n\r\n'
            tree = parse_tree(
                header.encode() + data,
                max_depth=max(self.limits.max_depth - item.depth, 0),
                max_parts=room + 1,
            )
            if tree.problem:
                self.defects.append(tree.problem.at(path))
            if tree.root.is_multipart():
                self.defects.extend(from_stdlib(d, path) for d in tree.root.defects)
                self.defects.append(
                    Defect(
                        DefectKind.MISSING_BOUNDARY,
                        path,
                        f"declared boundary not found, split at {boundary.decode()!r}",
                    )
                )
                return self._children(
                    _Item(tree.root, tree.raw, item.path, item.depth, item.body_ok),
                    content_type,
                )
        if data.strip():
            self.defects.append(
                Defect(
                    DefectKind.MISSING_BOUNDARY,
                    path,
                    f"{content_type} without usable boundary, read as text",
                )
            )
            self._leaf(item, "text/plain")
        else:
            self.skipped_parts.append(item.path)  # an empty body: nothing to keep
        return []

    def _enclosed(self, item: _Item, content_type: str) -> list[_Item]:
        entity, path = item.entity, item.path
        encoding = entity.raw_header("content-transfer-encoding")
        data, problems = decode_transfer(parts.payload(entity, item.raw), encoding)
        self.defects.extend(problem.at(path) for problem in problems)
        self._attach(item, content_type, data)
        if item.depth + 1 > self.limits.max_depth:
            self.defects.append(_too_deep(path, self.limits.max_depth))
            return []
        raw, inner = item.raw, None
        if mechanism(encoding) in ("base64", "quoted-printable"):
            # RFC 2046 §5.2.1 allows only 7bit, 8bit and binary here, so the parser read
            # the encoded text as a message; parse the decoded bytes instead.
            self.defects.append(
                Defect(
                    DefectKind.ENCLOSED_ENCODED,
                    path,
                    f"{content_type} with {mechanism(encoding)} encoding",
                )
            )
            room = self.limits.max_parts - self.count
            if room <= 0:
                return []
            tree = parse_tree(
                data, max_depth=self.limits.max_depth - item.depth - 1, max_parts=room
            )
            if tree.problem:
                self.defects.append(tree.problem.at(path))
            raw, inner = data, None if tree.headers_only else tree.root
        else:
            payload = entity.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Entity):
                inner = payload[0]
        if inner is None:
            return []
        path = item.path if inner.is_multipart() else _child(item.path, 1)
        return [_Item(inner, raw, path, item.depth + 1, item.body_ok)]

    def _leaf(self, item: _Item, content_type: str) -> None:
        disposition, problem = parts.disposition(item.entity)
        if problem:
            self.defects.append(problem.at(item.path))
        if content_type in parts.BODY_TYPES and not parts.is_attachment(item.entity):
            if item.body_ok:
                self.body_parts.append(item.path)
                self._add_text(item, content_type)
            else:
                self.skipped_parts.append(item.path)
                field, html = item.entity.field("content-type"), content_type == "text/html"
                self.alternatives.add(item.path, self._decoded(item), field, html)
            return
        self._attach(item, content_type, self._decoded(item))

    def _decoded(self, item: _Item) -> bytes:
        encoding = item.entity.raw_header("content-transfer-encoding")
        data, problems = decode_transfer(parts.payload(item.entity, item.raw), encoding)
        self.defects.extend(problem.at(item.path) for problem in problems)
        return data

    def _attach(self, item: _Item, content_type: str, data: bytes) -> None:
        filename = parts.filename(item.entity)
        text = None
        derived: list[extras.Extracted] = []
        problems: list[Defect] = []
        if extras.is_tnef(content_type, filename):
            derived, tnef_body = extras.tnef_files(item.path, data, problems)
            text = self.text.attachment_text(
                item.path, "text/plain", (tnef_body or "").encode(), "utf-8"
            )
        elif content_type in _ENCLOSED:
            fields = extras.enclosed_header_fields(data, self.limits.max_header_bytes)
            if fields is None:
                problems.append(
                    Defect(
                        DefectKind.HEADER_MALFORMED,
                        None,
                        "enclosed message: header block unreadable",
                    )
                )
            self.enclosed_headers.extend(
                HeaderField(name.lower(), value, item.path) for name, value in fields or ()
            )
            headers = extras.enclosed_headers(fields)
            text = self.text.attachment_text(
                item.path, "text/plain", (headers or "").encode(), "utf-8"
            )
        else:
            field = item.entity.field("content-type")
            declared = field.params.get("charset") if field else None
            text = self.text.attachment_text(
                item.path, content_type, data, declared, field.params if field else None
            )
        self.defects.extend(problem.at(item.path) for problem in problems)
        self.attachments.append(
            Attachment(
                path=item.path,
                filename=filename,
                content_type=content_type,
                disposition=parts.disposition(item.entity)[0],
                content_id=parts.content_id(item.entity),
                data=data,
                text=text,
            )
        )
        self._add_extracted(derived)

    def _add_extracted(self, files: list[extras.Extracted]) -> None:
        self.attachments.extend(
            Attachment(f.path, f.filename, f.content_type, "attachment", None, f.data)
            for f in files
        )

    def _add_text(self, item: _Item, content_type: str) -> None:
        if self.text.full:
            return
        field = item.entity.field("content-type")
        declared, params = (field.params.get("charset"), field.params) if field else (None, None)
        html = content_type == "text/html"
        text = self.text.decode(
            item.path, self._decoded(item), declared, html=html, body=True, params=params
        )
        if text is None:
            return
        if not html:
            problems: list[Defect] = []
            files, text = extras.uuencoded_files(item.path, text, problems)
            self.defects.extend(problem.at(item.path) for problem in problems)
            self._add_extracted(files)
        self.text.append_body(text.strip())


def parse_message(raw: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> ParsedMessage:
    """Parse one message. Never raises: whatever went wrong is listed in `defects`."""
    defects: list[Defect] = []
    head = Envelope()
    walker = _Walker(limits, defects)
    try:
        tree = parse_tree(bytes(raw), max_depth=limits.max_depth, max_parts=limits.max_parts)
        if tree.problem:
            defects.append(tree.problem)
    except Exception as exc:
        defects.append(_failed(describe(exc)))
        tree = None
    if tree is not None:
        try:
            hints = parts.text_charsets(tree.root)
            items = [(name, str(value)) for name, value in tree.root.raw_items()]
            head = envelope.read_envelope(items, limits.max_header_bytes, defects, hints)
            walker.text.use_message_charsets(hints)
        except Exception as exc:
            defects.append(_failed(f"headers: {describe(exc)}"))
        if not tree.headers_only:
            try:
                walker.walk(tree)
            except Exception as exc:
                defects.append(_failed(describe(exc)))
    return ParsedMessage(
        envelope=head,
        body_text=walker.text.body_text,
        attachments=tuple(walker.attachments),
        defects=summarised(defects),
        part_count=walker.count,
        body_parts=tuple(walker.body_parts),
        skipped_parts=tuple(walker.skipped_parts),
        enclosed_headers=tuple(walker.enclosed_headers),
        alternative_texts=walker.alternatives.searchable(),
    )


def _too_deep(path: str, max_depth: int) -> Defect:
    return Defect(
        DefectKind.DEPTH_LIMIT, path, f"nested deeper than {max_depth} levels, not parsed"
    )


def _failed(detail: str) -> Defect:
    return Defect(DefectKind.PARSE_FAILED, None, detail)
