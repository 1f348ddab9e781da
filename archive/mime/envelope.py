"""The top-level header block: every field decoded, plus the ones the index has columns for.

Each field is read on its own and defensively, so one malformed header (a Date from the
year 0, a To of 5 MB) costs a defect, never the rest of the envelope.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_tz

from archive.mime.addresses import parse_addresses
from archive.mime.defects import Defect, DefectKind
from archive.mime.model import ADDRESS_ROLES, Address, Envelope, HeaderField
from archive.mime.words import decode_header_text, unescape, unfold

_MSG_ID = re.compile(r"<([^<>]*)>")
# RFC 5322 has no limit; past this many fields (spam has sent 100,000 of them) the rest are
# kept without RFC 2047 decoding, which is most of the cost per field.
MAX_DECODED_FIELDS = 10_000
_NEEDED = frozenset({"subject", "date", "message-id", "in-reply-to", "references"})
_IDS = frozenset({"message-id", "in-reply-to", "references"})  # read raw, not decoded
_MAX_DATE_CHARS = 200


def _msg_ids(value: str) -> list[str]:
    """RFC 5322 §3.6.4 msg-ids, without "<>"; a bare id with "@" is accepted too."""
    found = ["".join(match.split()) for match in _MSG_ID.findall(value)]
    if not found:
        found = [word.strip("<>") for word in value.split() if "@" in word]
    return [msg_id for msg_id in found if msg_id]


def parse_date(value: str) -> tuple[datetime | None, str | None]:
    """RFC 5322 §3.3 date-time (and its obsolete forms) to an aware datetime.

    A missing zone and "-0000" (RFC 5322 §3.3: local time unknown) both become UTC.
    """
    text = " ".join(value.split())[:_MAX_DATE_CHARS]
    try:
        parts = parsedate_tz(text)
        if parts is not None:
            offset = timedelta(seconds=parts[9] or 0)
            zone = UTC if not offset else timezone(offset)
            return datetime(*parts[:6], tzinfo=zone), None
    except (ValueError, OverflowError, TypeError, IndexError):
        pass
    try:
        # Some spam and some scripts write ISO 8601.
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)), None
    except ValueError:
        return None, f"Date: unparseable {text[:80]!r}"


def read_envelope(
    items: list[tuple[str, str]],
    max_header_bytes: int,
    defects: list[Defect],
    hints: tuple[str, ...] = (),
) -> Envelope:
    """Decode the raw (name, value) pairs of the top-level message; problems go to `defects`.

    `hints` are the charsets the message declares for its text parts, tried for raw
    8-bit header text that is not UTF-8 (see `headerbytes.header_codec`).
    """
    headers: list[HeaderField] = []
    first: dict[str, str] = {}
    raw_first: dict[str, str] = {}
    address_values: dict[str, list[str]] = {role: [] for role in ADDRESS_ROLES}
    for raw_name, raw_value in items:
        name, _ = unescape(raw_name)
        key = name.strip().lower()
        value = unfold(raw_value)
        if len(value) > max_header_bytes:
            defects.append(
                Defect(
                    DefectKind.HEADER_LIMIT,
                    None,
                    f"{name[:60]}: {len(value)} characters, cut to {max_header_bytes}",
                )
            )
            value = value[:max_header_bytes]
        if len(headers) == MAX_DECODED_FIELDS:
            defects.append(
                Defect(
                    DefectKind.HEADER_LIMIT,
                    None,
                    f"more than {MAX_DECODED_FIELDS} header fields, the rest not decoded",
                )
            )
        try:
            if len(headers) < MAX_DECODED_FIELDS or key in _NEEDED:
                text, problems = decode_header_text(value, hints)
            else:
                text, problems = unescape(value)[0], []
        except Exception as exc:  # keep the raw text rather than lose the field
            text = value
            problems = [
                Defect(DefectKind.HEADER_MALFORMED, None, f"not decoded ({type(exc).__name__})")
            ]
        defects.extend(problem.within(name[:60]) for problem in problems)
        text = text.strip()
        headers.append(HeaderField(name, text))
        first.setdefault(key, text)
        if key in _IDS and key not in raw_first:
            raw_first[key] = unescape(value)[0]
        if key in address_values:
            address_values[key].append(unescape(value, hints)[0])

    addresses: list[Address] = []
    for role in ADDRESS_ROLES:
        for value in address_values[role]:
            found, problems = parse_addresses(value, role)
            addresses.extend(found)
            defects.extend(problems)

    sent_at = None
    if "date" in first:
        sent_at, problem = parse_date(first["date"])
        if problem:
            defects.append(Defect(DefectKind.BAD_DATE, None, problem))

    # A Message-ID without "<>" (some scripts, some spam) is still the message's id.
    message_ids = _msg_ids(raw_first.get("message-id", "")) or [
        "".join(raw_first.get("message-id", "").split())
    ]
    reply_ids = _msg_ids(raw_first.get("in-reply-to", ""))
    references = tuple(dict.fromkeys(_msg_ids(raw_first.get("references", ""))))
    subject = first.get("subject")
    return Envelope(
        headers=tuple(headers),
        message_id=message_ids[0] or None,
        in_reply_to=reply_ids[0] if reply_ids else None,
        references=references,
        subject=" ".join(subject.split()) if subject is not None else None,
        sent_at=sent_at,
        addresses=tuple(addresses),
    )
