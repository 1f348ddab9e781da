"""What was wrong with a message: one typed `Defect` per problem, its kind from a closed set.

A defect is recorded, never raised (the stdlib `email` package's habit, and what an archive
wants): the message is still stored and indexed as far as it could be read. The kinds are
what SQL groups by (`SELECT kind, count(*) FROM archive.defects GROUP BY kind`); the detail
is for people and may change wording between parser versions. docs/sql.md lists the kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Past this, further defects are counted, not listed: a message of 100,000 bad header
# lines should not become 100,000 index entries.
MAX_DEFECTS = 500


class DefectKind(StrEnum):
    """Why a message, or one of its parts, was not read cleanly."""

    # Limits: the message is indexed, but not all of it.
    HEADER_ONLY = "header_only"  # over MAILARCHIVE_PARSE_MAX_BYTES: only the header indexed
    PART_LIMIT = "part_limit"  # parts (or files in TNEF, uuencode blocks) not parsed
    DEPTH_LIMIT = "depth_limit"  # nested deeper than max_depth, not parsed
    HEADER_LIMIT = "header_limit"  # a header value, a parameter list or the field count cut
    TEXT_LIMIT = "text_limit"  # body text or attachment text cut at max_text_chars
    HTML_LIMIT = "html_limit"  # HTML not (fully) converted: the tag budget is used up
    DEFECT_LIMIT = "defect_limit"  # more defects than are listed
    # Structure (RFC 2045, RFC 2046).
    PARSE_FAILED = "parse_failed"  # the parser gave up; what it read before is kept
    MISSING_BOUNDARY = "missing_boundary"  # a multipart whose boundary is absent or unused
    MISSING_FINAL_BOUNDARY = "missing_final_boundary"  # no closing "--boundary--"
    PARTS_AFTER_CLOSE = "parts_after_close"  # parts after the closing boundary, recovered
    MULTIPART_MALFORMED = "multipart_malformed"  # a multipart with a transfer encoding, etc.
    BAD_CONTENT_TYPE = "bad_content_type"  # unusable Content-Type, read as text/plain
    BAD_DISPOSITION = "bad_disposition"  # unknown Content-Disposition, read as attachment
    ENCLOSED_ENCODED = "enclosed_encoded"  # message/rfc822 in base64 or quoted-printable
    MIME_MALFORMED = "mime_malformed"  # another stdlib `email.errors` defect (detail: its class)
    # Header fields (RFC 5322, RFC 2047, RFC 2231).
    HEADER_MALFORMED = "header_malformed"  # a field or header block the parser could not read
    HEADER_8BIT = "header_8bit"  # raw 8-bit header text that is not UTF-8, guessed
    BAD_DATE = "bad_date"
    BAD_ADDRESS = "bad_address"
    # Content-Transfer-Encoding (RFC 2045 §6).
    BAD_BASE64 = "bad_base64"
    BAD_UUENCODE = "bad_uuencode"
    UNKNOWN_TRANSFER_ENCODING = "unknown_transfer_encoding"  # kept encoded
    BAD_TNEF = "bad_tnef"  # winmail.dat not decoded; the part itself is kept
    # Charsets: the text was decoded, with a guess.
    CHARSET_UNKNOWN = "charset_unknown"  # the declared charset has no codec
    CHARSET_INVALID = "charset_invalid"  # the text is not valid in its declared charset
    CHARSET_MISSING = "charset_missing"  # 8-bit text without a declared charset
    # Repairs in decoded text: NUL, or a few bytes undecodable in the (declared) charset,
    # replaced by U+FFFD; the rest of the text is as sent.
    TEXT_REPLACED = "text_replaced"
    # Rows migrated from the free-text defects of parser versions before 4 (migration 0005)
    # whose text matched no kind; `mailarchive reindex` replaces them.
    LEGACY = "legacy"


@dataclass(frozen=True, slots=True)
class Defect:
    """One problem: its kind, where it was found, and what exactly was wrong.

    `part_path` is a part's path as in `Attachment.path` ("" is the root entity, "2.1" the
    first child of part 2); None means the message as a whole: its top-level header block,
    a limit, a failed parse. Code that finds a problem without knowing the part records
    None, and the caller places it with `at`.
    """

    kind: DefectKind
    part_path: str | None
    detail: str

    def at(self, part_path: str | None) -> Defect:
        """The same defect, placed at `part_path`."""
        return Defect(self.kind, part_path, self.detail)

    def within(self, context: str) -> Defect:
        """The same defect, its detail prefixed with where it was found ("From", ...)."""
        return Defect(self.kind, self.part_path, f"{context}: {self.detail}")

    def __str__(self) -> str:
        if self.part_path is None:
            return f"{self.kind}: {self.detail}"
        where = f"part {self.part_path}" if self.part_path else "message"
        return f"{self.kind} ({where}): {self.detail}"


# The stdlib parser's defect classes (`email.errors`) by name; others are MIME_MALFORMED.
_STDLIB = {
    "NoBoundaryInMultipartDefect": DefectKind.MISSING_BOUNDARY,
    "StartBoundaryNotFoundDefect": DefectKind.MISSING_BOUNDARY,
    "CloseBoundaryNotFoundDefect": DefectKind.MISSING_FINAL_BOUNDARY,
    "MultipartInvariantViolationDefect": DefectKind.MULTIPART_MALFORMED,
    "InvalidMultipartContentTransferEncodingDefect": DefectKind.MULTIPART_MALFORMED,
    "FirstHeaderLineIsContinuationDefect": DefectKind.HEADER_MALFORMED,
    "MisplacedEnvelopeHeaderDefect": DefectKind.HEADER_MALFORMED,
    "MissingHeaderBodySeparatorDefect": DefectKind.HEADER_MALFORMED,
    "MalformedHeaderDefect": DefectKind.HEADER_MALFORMED,
    "InvalidHeaderDefect": DefectKind.HEADER_MALFORMED,
    "HeaderMissingRequiredValue": DefectKind.HEADER_MALFORMED,
    "ObsoleteHeaderDefect": DefectKind.HEADER_MALFORMED,
    "NonPrintableDefect": DefectKind.HEADER_MALFORMED,
    "NonASCIILocalPartDefect": DefectKind.BAD_ADDRESS,
    "InvalidDateDefect": DefectKind.BAD_DATE,
    "InvalidBase64PaddingDefect": DefectKind.BAD_BASE64,
    "InvalidBase64CharactersDefect": DefectKind.BAD_BASE64,
    "InvalidBase64LengthDefect": DefectKind.BAD_BASE64,
}


def from_stdlib(defect: BaseException, part_path: str | None) -> Defect:
    """A defect the stdlib parser recorded; the detail is its class name."""
    name = type(defect).__name__
    return Defect(_STDLIB.get(name, DefectKind.MIME_MALFORMED), part_path, name)


def summarised(defects: list[Defect]) -> tuple[Defect, ...]:
    """Defects in order of discovery, each once, at most MAX_DEFECTS of them listed."""
    unique = list(dict.fromkeys(defects))
    if len(unique) <= MAX_DEFECTS:
        return tuple(unique)
    more = Defect(
        DefectKind.DEFECT_LIMIT, None, f"{len(unique) - MAX_DEFECTS} more defects not listed"
    )
    return (*unique[:MAX_DEFECTS], more)
