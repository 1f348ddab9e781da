"""Characters that must not reach the index as they are: invisible format characters that
would split a word for search, and NUL, which PostgreSQL text cannot hold."""

from __future__ import annotations

import re

# Soft hyphen, Mongolian vowel separator, zero-width space, non-joiner and joiner, word
# joiner and the invisible operators, and the byte order mark (zero-width no-break space).
# They have no glyph of their own (Unicode §23.2); PostgreSQL's parser takes them for word
# breaks, so "Rech&shy;nung" or "in&#8203;voice" would not be found as one word.
_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200d\u2060-\u2064\ufeff]")


def strip_invisible(text: str) -> str:
    """`text` without invisible format characters (HTML entities are already characters)."""
    if text.isascii():
        return text
    return _INVISIBLE.sub("", text)


def replace_nul(text: str) -> tuple[str, int]:
    """NUL characters replaced by U+FFFD; (text, how many were replaced)."""
    count = text.count("\x00")
    return (text.replace("\x00", "\ufffd"), count) if count else (text, 0)
