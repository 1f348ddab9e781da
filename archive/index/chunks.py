"""Searchable text cut into pieces that PostgreSQL can index without limits.

A tsvector may not exceed 1 MB, so no single vector covers a 5 MB body. The message row's
vector covers the subject and the first SEARCH_CHUNK_CHARS characters of the body; each
further SEARCH_CHUNK_CHARS of the body, and the text of each attachment (decoded by the
parser, or extracted from a document by archive.extract), is one `text_chunk` row with its
own vector; so is the text of an alternative that the body does not show
(`ParsedMessage.alternative_texts`). Neighbouring chunks overlap by SEARCH_CHUNK_OVERLAP
characters, so a word cut by a boundary is whole in one of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from archive.extract import Extraction
from archive.index.schema import SEARCH_CHUNK_CHARS, SEARCH_CHUNK_OVERLAP
from archive.mime import ParsedMessage


@dataclass(frozen=True, slots=True)
class Chunk:
    """`part_path` None: the body, from `start_char`; else that attachment's or
    alternative's text."""

    part_path: str | None
    start_char: int
    content: str


def _pieces(text: str, first: int) -> list[tuple[int, str]]:
    return [
        (start, text[start : start + SEARCH_CHUNK_CHARS + SEARCH_CHUNK_OVERLAP])
        for start in range(first, len(text), SEARCH_CHUNK_CHARS)
    ]


def text_chunks(
    parsed: ParsedMessage, extracted: Mapping[str, Extraction] | None = None
) -> list[Chunk]:
    """The chunks of one message, in order: the body's rest, the texts of alternatives
    not shown as the body, then attachment texts (what the parser decoded, else what
    extraction found, by part path)."""
    chunks = [
        Chunk(None, start, content)
        for start, content in _pieces(parsed.body_text, SEARCH_CHUNK_CHARS)
    ]
    for alternative in parsed.alternative_texts:
        chunks.extend(
            Chunk(alternative.part_path, start, content)
            for start, content in _pieces(alternative.text, 0)
        )
    for attachment in parsed.attachments:
        text = attachment.text
        found = extracted.get(attachment.path) if extracted else None
        if not text and found is not None and found.searchable:
            text = found.text
        if text:
            chunks.extend(
                Chunk(attachment.path, start, content) for start, content in _pieces(text, 0)
            )
    return chunks
