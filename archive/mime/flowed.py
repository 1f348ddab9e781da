"""text/plain; format=flowed (RFC 3676): soft line breaks undone, so wrapped words and
sentences are whole again.

A line ending in a space is "flowed": it continues on the next line (§4.2). With
delsp=yes that space was added by the wrapper and is deleted when joining, which is how
Japanese and Chinese text (no spaces between words) and long words are wrapped (§4.5).
Quote depth is the number of leading ">" (§4.5); a leading space after them is stuffing
(§4.4). The signature separator "-- " is never flowed (§4.3).
"""

from __future__ import annotations


def is_flowed(params: dict[str, str]) -> bool:
    return params.get("format", "").strip().lower() == "flowed"


def unflow(text: str, *, delsp: bool) -> str:
    """Joined paragraphs of a format=flowed text whose lines end in "\\n"."""
    out: list[str] = []
    pieces: list[str] = []
    depth = 0

    def emit() -> None:
        joined = "".join(pieces)
        prefix = ">" * depth + (" " if depth and joined else "")
        out.append(prefix + joined)
        pieces.clear()

    open_paragraph = False
    for raw in text.split("\n"):
        stripped = raw.lstrip(">")
        line_depth = len(raw) - len(stripped)
        line = stripped[1:] if stripped.startswith(" ") else stripped
        if open_paragraph and (line_depth != depth or line == "-- "):
            # §4.5: a quote depth change ends a paragraph that was still flowing; so does
            # the signature separator, which starts a paragraph of its own.
            emit()
            open_paragraph = False
        depth = line_depth
        flowed = line.endswith(" ") and line != "-- "
        if flowed and delsp:
            line = line[:-1]
        pieces.append(line)
        open_paragraph = flowed
        if not flowed:
            emit()
    if pieces:
        emit()
    return "\n".join(out)


def unflow_if_flowed(text: str, params: dict[str, str]) -> str:
    """`text` unflowed when its Content-Type parameters say format=flowed."""
    if not is_flowed(params):
        return text
    return unflow(text, delsp=params.get("delsp", "").strip().lower() == "yes")
