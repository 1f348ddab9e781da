"""`mailarchive.token_parts` (migration 0011) keeps 0006's output exactly.

Stored vectors and their GIN indexes were built with 0006's `translate`; 0011 computes the
same with `regexp_replace`, faster. If the two ever differ, a stored message stops matching
its own words, so every code point's output is compared.
"""

from __future__ import annotations

import psycopg
import pytest

# Migration 0006's translate, as it was written.
TRANSLATE_0006 = r"translate(%s, E'@./:-_<>=?#~+&%%\\|', '                 ')"


@pytest.fixture
def conn(fresh_db_url: str):
    with psycopg.connect(fresh_db_url) as connection:
        yield connection


def test_every_code_point_comes_out_as_0006_made_it(conn):
    code_points = [chr(i) for i in range(1, 0x30000) if not 0xD800 <= i <= 0xDFFF]
    differing = []
    for start in range(0, len(code_points), 8000):
        text = "".join(code_points[start : start + 8000])
        now, before = conn.execute(
            f"SELECT mailarchive.token_parts(%s), {TRANSLATE_0006}", (text, text)
        ).fetchone()
        differing += [hex(ord(c)) for c, a, b in zip(text, now, before, strict=True) if a != b]
    assert differing == []


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("jane.doe@example.com", "jane doe example com"),
        ("C:\\Users\\jane\\report-2024_final.pdf", "C  Users jane report 2024 final pdf"),
        ("https://x.org/a?b=c&d=e#f~g+h%20|i", "https   x org a b c d e f g h 20 i"),
        ("<a-b>", " a b "),
        ("Grüße, Müller — 東京", "Grüße, Müller — 東京"),
    ],
)
def test_separators_become_spaces_and_nothing_else_changes(conn, text, parts):
    assert conn.execute("SELECT mailarchive.token_parts(%s)", (text,)).fetchone()[0] == parts


def test_the_stored_vector_of_an_address_still_matches_its_parts(conn):
    found = conn.execute(
        "SELECT mailarchive.text_vector(%s) @@ plainto_tsquery('archive.mail', 'doe example')",
        ("mail jane.doe@example.com today",),
    ).fetchone()[0]
    assert found is True
