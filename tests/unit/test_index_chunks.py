"""archive.index.chunks: how a long body and attachment texts are cut for the search index.

The message row's vector covers the first SEARCH_CHUNK_CHARS + SEARCH_CHUNK_OVERLAP
characters of the body (models.py); chunks carry the rest, each overlapping the next.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from archive.index.chunks import Chunk, text_chunks
from archive.index.schema import SEARCH_CHUNK_CHARS, SEARCH_CHUNK_OVERLAP
from archive.mime import Attachment, ParsedMessage, parse_message

STEP, OVERLAP = SEARCH_CHUNK_CHARS, SEARCH_CHUNK_OVERLAP
ROW_CHARS = STEP + OVERLAP  # what the message row's own vector covers


def _message(body: str, *texts: str | None) -> ParsedMessage:
    parsed = parse_message(b"Subject: chunks\r\n\r\nplaceholder\r\n")
    attachments = tuple(
        Attachment(
            path=f"{n}",
            filename=f"a{n}.txt",
            content_type="text/plain",
            disposition="attachment",
            content_id=None,
            data=b"",
            text=text,
        )
        for n, text in enumerate(texts, start=2)
    )
    return replace(parsed, body_text=body, attachments=attachments)


def _body(length: int) -> str:
    # Every character differs from its neighbours at this scale: a shifted slice can't match.
    return "".join(chr(0x4E00 + i % 20_000) for i in range(length))


def test_the_constants_are_what_the_schema_expects():
    # messages.search is a column computed from them: changing them needs a migration.
    assert (STEP, OVERLAP) == (100_000, 100)


@pytest.mark.parametrize("length", [0, 1, STEP - 1, STEP])
def test_a_body_the_row_covers_has_no_chunks(length):
    assert text_chunks(_message(_body(length))) == []


def test_one_character_past_the_row_makes_one_chunk():
    body = _body(STEP + 1)
    assert text_chunks(_message(body)) == [Chunk(None, STEP, body[STEP:])]


def test_a_long_body_is_cut_every_step_with_overlap():
    body = _body(2 * STEP + 50_000)
    chunks = text_chunks(_message(body))
    assert [(c.part_path, c.start_char, len(c.content)) for c in chunks] == [
        (None, STEP, STEP + OVERLAP),
        (None, 2 * STEP, 50_000),
    ]
    assert all(c.content == body[c.start_char : c.start_char + ROW_CHARS] for c in chunks)


def test_a_word_cut_by_a_boundary_is_whole_in_one_piece():
    body = list("x" * (3 * STEP))
    for boundary in (STEP, 2 * STEP):
        body[boundary - 3 : boundary + 3] = "needle"
    text = "".join(body)
    pieces = [text[:ROW_CHARS], *(c.content for c in text_chunks(_message(text)))]
    assert [piece.count("needle") for piece in pieces] == [1, 1, 0]


def test_attachment_texts_follow_the_body_from_their_start():
    body = _body(STEP + 10)
    long_text = _body(STEP + OVERLAP + 1)
    chunks = text_chunks(_message(body, "short text", None, "", long_text))
    assert [(c.part_path, c.start_char, len(c.content)) for c in chunks] == [
        (None, STEP, 10),
        ("2", 0, 10),
        ("5", 0, ROW_CHARS),
        ("5", STEP, OVERLAP + 1),
    ]
    assert chunks[1].content == "short text"
