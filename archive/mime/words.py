"""Header text: raw 8-bit bytes, folding and RFC 2047 encoded-words.

The stdlib parser is run on bytes, so it hands back header values as ASCII strings with
every non-ASCII byte smuggled in as a lone surrogate (``surrogateescape``). `unescape`
turns those back into real text; `decode_words` undoes RFC 2047 without the stdlib's
`decode_header`, which raises on bad base64 and unknown charsets and concatenates bytes
quadratically on long runs of encoded-words.
"""

from __future__ import annotations

import binascii
import re

from archive.mime import charsets
from archive.mime.defects import Defect, DefectKind
from archive.mime.transfer import decode_base64

# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="; RFC 2231 §5
# adds an optional "*language" after the charset. The encoded text may not contain "?" or
# white space, which keeps this pattern linear.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]*)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r\n|\r|\n")


def unfold(value: str) -> str:
    """RFC 5322 §2.2.3: unfolding removes the CRLF of a fold and keeps the white space."""
    return _FOLD.sub("", value)


def unescape(value: str) -> tuple[str, str | None]:
    """Surrogate-escaped bytes back to text. Returns (text, the codec if it was guessed)."""
    if value.isascii():
        return value, None
    raw = value.encode("utf-8", "surrogateescape")
    return charsets.decode_header_bytes(raw)


def decode_words(value: str) -> tuple[str, list[Defect]]:
    """Decode every RFC 2047 encoded-word in `value`; returns (text, problems).

    Adjacent encoded-words in the same charset are joined as bytes before decoding, since
    mailers split multi-byte characters across them; white space between two encoded-words
    is dropped (RFC 2047 §6.2). Encoded-words inside quoted strings or glued to other text
    are decoded too, which RFC 2047 §5 forbids but every mail client does.
    """
    if "=?" not in value:
        return value, []
    out: list[str] = []
    problems: list[Defect] = []
    pending = bytearray()
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is None:
            return
        decoded = charsets.decode(bytes(pending), pending_charset, detect=False)
        if decoded.problem:
            problems.append(decoded.problem.within("encoded-word"))
        out.append(decoded.text)
        pending.clear()
        pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        if between and not (between.isspace() and pending_charset is not None):
            flush()
            out.append(between)
        position = match.end()
        charset, encoding, text = match.group(1, 2, 3)
        if encoding in "bB":
            data, b64_problems = decode_base64(text.encode("ascii", "replace"))
            problems.extend(problem.within("encoded-word") for problem in b64_problems)
        else:
            # RFC 2047 §4.2: "_" is a space and =XX a byte, which is what header=True does.
            data = binascii.a2b_qp(text.encode("ascii", "replace"), header=True)
        label = charset.lower() or "us-ascii"
        if pending_charset is not None and label != pending_charset:
            flush()
        pending_charset = label
        pending += data
    flush()
    out.append(value[position:])
    return "".join(out), problems


def decode_header_text(value: str) -> tuple[str, list[Defect]]:
    """Raw header value (already unfolded) to display text, with what went wrong."""
    text, guessed = unescape(value)
    decoded, problems = decode_words(text)
    if guessed is not None:
        problems.insert(
            0,
            Defect(
                DefectKind.HEADER_8BIT, None, f"8-bit text is not valid UTF-8, decoded as {guessed}"
            ),
        )
    return decoded, problems
