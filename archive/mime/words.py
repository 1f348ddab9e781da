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

from archive.mime import charsets, headerbytes, japanese
from archive.mime.cleanup import replace_nul, strip_invisible
from archive.mime.defects import Defect, DefectKind
from archive.mime.transfer import decode_base64

# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="; RFC 2231 §5
# adds an optional "*language" after the charset. The encoded text may not contain "?" or
# white space; white space is allowed here all the same, since mailers put spaces in Q
# text and fold inside B text, and every client decodes that. No "?" keeps it linear.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]*)(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
# ISO-2022-JP (RFC 1468) written raw in a header, as old Japanese mailers did: 7-bit, so
# it would otherwise be kept with its escape sequences.
_JIS_RUN = re.compile(r"\x1b\$[@B][^\x1b]*(?:\x1b\([BJ])?")


def unfold(value: str) -> str:
    """RFC 5322 §2.2.3: unfolding removes the CRLF of a fold and keeps the white space."""
    return value.replace("\r", "").replace("\n", "")  # CRLF, CR and LF all go


def _raw(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def unescape(value: str, hints: tuple[str, ...] = ()) -> tuple[str, str | None]:
    """Surrogate-escaped bytes back to text. Returns (text, the codec if it was guessed).

    `hints` are the charsets the message declares for its text parts (see
    `headerbytes.header_codec`).
    """
    if value.isascii():
        return strip_invisible(_unjis(value)), None
    text, note = headerbytes.decode_header_bytes(_raw(value), hints)
    return strip_invisible(text), note


def _unjis(text: str) -> str:
    if "\x1b$" not in text:
        return text
    return _JIS_RUN.sub(
        lambda match: japanese.decode_iso2022jp_ms(match.group().encode("ascii"))[0], text
    )


def _word_bytes(text: str, codec: str | None) -> bytes:
    """The octets of an encoded-word's text: raw 8-bit bytes where a mailer left them
    (still surrogate-escaped, or already decoded as header text), else ASCII."""
    if text.isascii():
        return text.encode("ascii")
    if any("\udc80" <= char <= "\udcff" for char in text):
        return _raw(text)
    return text.encode(codec or "utf-8", "replace")


def decode_words(
    value: str, plain: headerbytes.HeaderCodec | None = None
) -> tuple[str, list[Defect]]:
    """Decode every RFC 2047 encoded-word in `value`; returns (text, problems).

    Adjacent encoded-words in the same charset are joined as bytes before decoding, since
    mailers split multi-byte characters across them; white space between two encoded-words
    is dropped (RFC 2047 §6.2). Encoded-words inside quoted strings or glued to other text
    are decoded too, which RFC 2047 §5 forbids but every mail client does, and so are raw
    8-bit bytes inside an encoded-word. `plain` reads the surrogate-escaped 8-bit text
    outside encoded-words; without it `value` must hold no surrogates.
    """
    if "=?" not in value:
        return (_plain(value, plain), [])
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
            out.append(_plain(between, plain))
        position = match.end()
        charset, encoding, text = match.group(1, 2, 3)
        label = charset.lower() or "us-ascii"
        codec = charsets.lookup(charsets.clean_label(label) or "")
        if encoding in "bB":
            data, b64_problems = decode_base64(_word_bytes(text, codec))
            problems.extend(problem.within("encoded-word") for problem in b64_problems)
        else:
            # RFC 2047 §4.2: "_" is a space and =XX a byte, which is what header=True does.
            data = binascii.a2b_qp(_word_bytes(text, codec), header=True)
        if pending_charset is not None and codec != charsets.lookup(
            charsets.clean_label(pending_charset) or ""
        ):
            flush()
        pending_charset = label
        pending += data
    flush()
    out.append(_plain(value[position:], plain))
    return strip_invisible("".join(out)), problems


def _plain(text: str, codec: headerbytes.HeaderCodec | None) -> str:
    if text.isascii():
        return _unjis(text)
    if codec is None:
        return text
    return codec.decode(_raw(text))


def decode_header_text(value: str, hints: tuple[str, ...] = ()) -> tuple[str, list[Defect]]:
    """Raw header value (already unfolded, surrogate-escaped) to display text, with what
    went wrong. The 8-bit text outside encoded-words is read with one codec chosen for all
    of it (`headerbytes.header_codec`); 8-bit bytes inside an encoded-word are read with the
    word's own charset."""
    problems: list[Defect] = []
    codec = None
    if not value.isascii():
        outside = _raw(_ENCODED_WORD.sub("", value))
        codec = headerbytes.header_codec(outside, hints)
        if codec.note is not None and not outside.isascii():
            problems.append(
                Defect(
                    DefectKind.HEADER_8BIT,
                    None,
                    f"8-bit text is not valid UTF-8, decoded as {codec.note}",
                )
            )
    decoded, word_problems = decode_words(value, codec)
    decoded, nuls = replace_nul(decoded)
    if nuls:
        problems.append(Defect(DefectKind.TEXT_REPLACED, None, f"{nuls} NUL characters replaced"))
    return strip_invisible(decoded), problems + word_problems
