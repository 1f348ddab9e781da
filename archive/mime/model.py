"""The values `parse_message` hands over: immutable, typed, and free of stdlib `email` objects.

Nothing here refers to `email.message.Message`, so the index writer and the archiver never
depend on how the parsing was done, and a parsed message can be compared, hashed and
pickled like any other value.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from archive.mime.defects import Defect

ADDRESS_ROLES = ("from", "sender", "reply-to", "to", "cc", "bcc")


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One header field, in message order.

    `value` is unfolded (RFC 5322 §2.2.3) and RFC 2047-decoded; where decoding fails the raw
    text is kept, so no field is ever dropped from the index. `part_path` is None for the
    top-level message, else the path of the enclosure (message/rfc822 and kin) whose
    enclosed message has this field; enclosed fields' names are lower-cased.
    """

    name: str
    value: str
    part_path: str | None = None


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox from From, Sender, Reply-To, To, Cc or Bcc.

    `address` is lower-cased so that searches and joins do not depend on how a sender
    spelled it; it is "" when no addr-spec could be found, and then `name` keeps the raw text.
    """

    role: str
    name: str
    address: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A leaf MIME part that is not body text, with its transfer-decoded bytes.

    The hash is computed once at construction: the archiver stores parts under their
    SHA-256 and the index records it, so it is read at least twice per part.
    """

    path: str
    filename: str | None
    content_type: str
    disposition: str | None
    content_id: str | None
    data: bytes = field(repr=False)
    # Searchable text of a text attachment or a delivery report, decoded; None otherwise.
    text: str | None = field(default=None, repr=False)
    _sha256: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sha256", hashlib.sha256(self.data).hexdigest())

    @property
    def sha256(self) -> str:
        """Lower-case hex SHA-256 of `data`."""
        return self._sha256

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds that keep one hostile message from costing unbounded time or memory.

    A message over a limit is still archived (the raw bytes are stored before parsing);
    only the parsed view is cut short, and a defect says where.
    """

    max_parts: int = 1000
    max_depth: int = 32
    max_header_bytes: int = 256 * 1024
    max_text_chars: int = 10_000_000

    def __post_init__(self) -> None:
        for name in ("max_parts", "max_header_bytes", "max_text_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"ParseLimits.{name} must be at least 1")
        if self.max_depth < 0:
            raise ValueError("ParseLimits.max_depth must not be negative")


@dataclass(frozen=True, slots=True)
class Envelope:
    """The top-level header block: every field, and those the index has columns for."""

    headers: tuple[HeaderField, ...] = ()
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str | None = None
    sent_at: datetime | None = None
    addresses: tuple[Address, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the index needs from one message; `defects` says what was wrong with it.

    The envelope's fields are readable here too (`parsed.subject`), so callers need not
    know where they live.
    """

    envelope: Envelope
    body_text: str
    attachments: tuple[Attachment, ...]
    defects: tuple[Defect, ...]
    part_count: int
    # Every leaf part is one of: read as body text (`body_parts`), an alternative
    # rendering of the body that was not read (`skipped_parts`, RFC 2046 §5.1.4), or an
    # attachment. Paths as in `Attachment.path`.
    body_parts: tuple[str, ...] = ()
    skipped_parts: tuple[str, ...] = ()
    # The header fields of each enclosed message (message/rfc822 and kin), in order, with
    # the enclosure's part path: a forwarded or bounced message's own headers.
    enclosed_headers: tuple[HeaderField, ...] = ()
    # The text of alternatives in `skipped_parts` that say something the body text does
    # not (an HTML part next to a "this is an HTML message" plain part): searchable,
    # though not shown as the body.
    alternative_texts: tuple[PartText, ...] = ()

    @property
    def headers(self) -> tuple[HeaderField, ...]:
        return self.envelope.headers

    @property
    def message_id(self) -> str | None:
        return self.envelope.message_id

    @property
    def in_reply_to(self) -> str | None:
        return self.envelope.in_reply_to

    @property
    def references(self) -> tuple[str, ...]:
        return self.envelope.references

    @property
    def subject(self) -> str | None:
        return self.envelope.subject

    @property
    def sent_at(self) -> datetime | None:
        return self.envelope.sent_at

    @property
    def addresses(self) -> tuple[Address, ...]:
        return self.envelope.addresses


@dataclass(frozen=True, slots=True)
class PartText:
    """The decoded text of one part that is neither body text nor an attachment's."""

    part_path: str
    text: str
