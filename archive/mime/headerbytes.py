"""Raw 8-bit bytes in header fields: which charset to read them with.

RFC 6532 allows UTF-8 there; older mailers write their local charset, usually the one they
declare for the message's text. Header values are too short for a detector to tell Latin
charsets apart, so its guess is taken only for a non-Latin script that reads plausibly.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from archive.mime.charsets import (
    _ISO2022JP,
    _detect,
    _latin,
    _mostly_utf8,
    _strict,
    clean_label,
    lookup,
)


@dataclass(frozen=True, slots=True)
class HeaderCodec:
    """How to read the raw 8-bit bytes of one header value; `note` when not plain UTF-8."""

    codec: str
    errors: str = "strict"
    note: str | None = None

    def decode(self, data: bytes) -> str:
        return data.decode(self.codec, self.errors)


def _plausible(text: str) -> bool:
    """No word mixes Latin letters with letters of another script, no control characters:
    what a detector's guess on a few bytes of a header must at least give."""
    for word in re.findall(r"[^\W\d_]+", text):
        scripts = {unicodedata.name(c, "?").split(" ")[0] == "LATIN" for c in word if c.isalpha()}
        if len(scripts) > 1:
            return False
    return not any(unicodedata.category(c) in ("Cc", "Co", "Cn") for c in text if c not in "\t")


@functools.lru_cache(maxsize=1024)  # a header flood repeats its values
def _detect_header(data: bytes) -> str | None:
    try:
        codec = _detect(data[:4096])
    except Exception:  # the detector is heuristic code; it must not take the parse down
        return None
    # UTF-16 and UTF-32 would have NUL bytes in a header's ASCII; a guess of them is noise.
    return (
        None
        if codec is None or codec.startswith(("utf_16", "utf_32", "utf-16", "utf-32"))
        else codec
    )


def header_codec(data: bytes, hints: tuple[str, ...] = ()) -> HeaderCodec:
    """The codec for raw 8-bit header bytes (RFC 6532 allows UTF-8; older mailers send
    their local charset).

    In order: UTF-8 (perhaps with a damaged byte); the charsets the message declares for
    its text parts (`hints`), since a mailer writes its headers in the charset it writes
    its text in; charset_normalizer, if its guess reads as a non-Latin script with no
    word of mixed scripts (header values are too short for it to tell Latin charsets
    apart); windows-1252; latin-1.
    """
    if _strict(data, "utf-8") is not None:
        return HeaderCodec("utf-8")
    if _mostly_utf8(data) is not None:
        return HeaderCodec("utf-8", "replace", "utf-8 with replacement characters")
    for hint in hints:
        codec = lookup(clean_label(hint) or "")
        if codec is None or codec in ("ascii", "utf-8") or codec in _ISO2022JP:
            continue
        if _strict(data, codec) is not None:
            return HeaderCodec(codec, note=f"{codec}, the charset of the message's text")
    detected = (
        _detect_header(data) if len(data) - len(data.decode("ascii", "ignore")) >= 4 else None
    )
    if detected is not None and detected != "cp1252":
        text = _strict(data, detected)
        if text is not None and not _latin(text) and _plausible(text):
            return HeaderCodec(detected, note=detected)
    if _strict(data, "cp1252") is not None:
        return HeaderCodec("cp1252", note="cp1252")
    return HeaderCodec("latin-1", note="latin-1")


def decode_header_bytes(data: bytes, hints: tuple[str, ...] = ()) -> tuple[str, str | None]:
    """Raw 8-bit header text, read as `header_codec` says: (text, its note)."""
    codec = header_codec(data, hints)
    return codec.decode(data), codec.note
