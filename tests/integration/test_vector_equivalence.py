"""Migration 0012 makes the same vectors as 0011, for less CPU.

Stored vectors and their GIN indexes were built under 0011's definitions and are not
recomputed; if a text's vector ever differed, a stored message would stop matching its own
words. So every comparison here is between two databases of the same server, one
downgraded to 0011 and one at 0012, on the same texts: the shared corpus (bodies, attachment
texts, whole raw messages), the generated benchmark corpus's attachment text, every code
point, and generated text.
"""

from __future__ import annotations

import email
import random
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from archive.index.schema import SEARCH_CHUNK_CHARS
from archive.mime import parse_message
from migrations import alembic_config
from tests.support.corpus import CORPUS_FILES
from tests.support.postgres import DatabaseFactory

SEPARATORS = re.compile(r"[@./_:<>=?#~+&%|\\-]")
# What every vector and query is made of, compared as text (lexemes, positions, weights).
PROBES = (
    "mailarchive.text_vector(%(t)s)::text",
    "to_tsvector('archive.mail', %(t)s)::text",
    "to_tsvector('archive.mail_whole', %(t)s)::text",
    # (a query of a long text would hold lexemes over tsquery's size limit)
    "CASE WHEN length(%(t)s) <= 1000 THEN plainto_tsquery('archive.mail', %(t)s)::text END",
)
PROBE_SQL = "SELECT " + ", ".join(PROBES)


class Pair:
    """One connection to a database at 0011 and one at 0012."""

    def __init__(self, old: psycopg.Connection, new: psycopg.Connection) -> None:
        self.old, self.new = old, new

    def differing(self, texts: list[str]) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """The texts whose vectors or queries differ, with both results."""
        found = []
        for value in texts:
            before = self.old.execute(PROBE_SQL, {"t": value}).fetchone()
            after = self.new.execute(PROBE_SQL, {"t": value}).fetchone()
            if before != after:
                found.append((value[:200], before, after))
        return found


@pytest.fixture(scope="module")
def pair(databases: DatabaseFactory) -> Iterator[Pair]:
    old_url, new_url = databases.create(), databases.create()
    command.downgrade(alembic_config(old_url), "0011")
    with psycopg.connect(old_url, autocommit=True) as old:
        with psycopg.connect(new_url, autocommit=True) as new:
            yield Pair(old, new)
    databases.drop(old_url)
    databases.drop(new_url)


def _mapping(conn: psycopg.Connection, config: str, token: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT m.mapdict::regdictionary::text FROM pg_ts_config_map m "
            "JOIN ts_token_type('default') t ON t.tokid = m.maptokentype "
            "WHERE m.mapcfg = %s::regconfig AND t.alias = %s ORDER BY m.mapseqno",
            (config, token),
        )
    ]


def test_this_server_takes_the_ascii_shortcut_and_0011_has_unaccent(pair: Pair):
    # Otherwise every comparison below compares a configuration with itself.
    for config, tokens in (
        ("archive.mail", ("asciiword", "asciihword", "hword_asciipart")),
        ("archive.mail_whole", ("asciihword",)),
    ):
        for token in tokens:
            assert _mapping(pair.new, config, token) == ["simple"]
            assert _mapping(pair.old, config, token) == ["unaccent", "simple"]
    # Non-ASCII words keep unaccent.
    assert _mapping(pair.new, "archive.mail", "word") == ["unaccent", "simple"]


def _corpus_texts() -> list[str]:
    texts = []
    for path in CORPUS_FILES:
        raw = path.read_bytes()
        parsed = parse_message(raw)
        message = email.message_from_bytes(raw)
        header = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        texts += [header.decode("latin-1"), parsed.body_text, str(message.get("Subject", ""))]
        texts += [a.text for a in parsed.attachments if a.text]
        texts += [a.filename for a in parsed.attachments if a.filename]
    # Cut as the index writer cuts long texts (a vector holds at most 1 MB).
    return [
        text[start : start + SEARCH_CHUNK_CHARS].replace("\x00", "")
        for text in texts
        for start in range(0, len(text), SEARCH_CHUNK_CHARS)
    ]


def test_the_shared_corpus_texts_have_the_same_vectors(pair: Pair, corpus: Path):
    texts = _corpus_texts()
    assert len(texts) > 100
    assert pair.differing(texts) == []


def test_the_benchmark_corpus_attachment_text_has_the_same_vectors(pair: Pair):
    # The rows benchmarks/corpus.py writes into text/csv and text/plain attachments: no
    # separator at all, so 0012 skips the whole-token parse for them.
    from benchmarks.corpus import _WORDS

    rng = random.Random(12)
    rows = "".join(
        ",".join(rng.choices(_WORDS, k=6)) + f",{rng.randint(1, 99999)}\r\n" for _ in range(3000)
    )
    assert SEPARATORS.search(rows) is None
    assert pair.differing([rows, rows.upper(), rows.replace(",", " ")]) == []


def _code_point_texts(context: str, last: int) -> list[str]:
    code_points = [chr(i) for i in range(1, last + 1) if not 0xD800 <= i <= 0xDFFF]
    pieces = [context.format(c=c) for c in code_points]
    return [" ".join(pieces[start : start + 4000]) for start in range(0, len(pieces), 4000)]


@pytest.mark.parametrize(
    ("context", "last"),
    [
        ("{c}", 0x2FFFF),  # alone
        ("a{c}b É{c}x 1{c}2 {c}q", 0x2FFFF),  # in ASCII and other words, numbers, at the start
        # Beside separators: the Basic Multilingual Plane only, to keep the test short (the
        # contexts above cover every plane).
        ("re{c}-up x{c}.org/p{c} {c}a@b.c", 0xFFFF),
    ],
)
def test_every_code_point_gives_the_same_vectors(pair: Pair, context: str, last: int):
    texts = _code_point_texts(context, last)
    # Each text with its separators removed, so the whole-token shortcut is taken as well.
    assert pair.differing(texts + [SEPARATORS.sub("", t) for t in texts]) == []


WORDS = st.sampled_from(
    [
        "jane.doe@example.com",
        "up-to-date",
        "Grüße",
        "école",
        "naïve-café",
        "Ærøskøbing",
        "straße",
        "ﬁle",
        "Ǆemal",
        "İstanbul",
        "x_y",
        "C:\\Temp\\a.txt",
        "<b>bold</b>",
        "&amp;",
        "1.5",
        "v2.0.1",
        "-3.2e10",
        "http://h.org/a?b=c",
        "Привет",
        "東京タワー",
        "ｆｕｌｌ",
        "e\u0301",
    ]
)
ANY_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12
)
ASCII_TEXT = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=12)
TEXTS = st.lists(st.one_of(WORDS, ANY_TEXT, ASCII_TEXT), max_size=25).map(" ".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=1, max_size=4))
def test_generated_text_gives_the_same_vectors(pair: Pair, texts: list[str]):
    # With and without separators: both branches of 0012's text_vector.
    assert pair.differing(texts + [SEPARATORS.sub("", t) for t in texts]) == []


def _migration() -> ModuleType:
    script = ScriptDirectory.from_config(alembic_config("postgresql://localhost/unused"))
    revision = script.get_revision("0012")
    assert revision is not None
    return revision.module


def test_rules_with_a_source_starting_in_ascii_keep_unaccent():
    leaves_alone = _migration().rules_leave_ascii_alone
    assert leaves_alone("À\tA\nÆ\tAE\n\n") is True
    assert leaves_alone("À\tA\nae\tæ\n") is False  # a custom rule on ASCII letters
    assert leaves_alone("À\tA\n  ss\tß\n") is False  # after leading whitespace
    assert leaves_alone('À\tA\n"x y"\tz\n') is False  # a quoted source


def test_the_servers_rules_file_leaves_ascii_alone(pair: Pair):
    # The file the migration read, read again: the shortcut above rests on it.
    rules = pair.new.execute(
        "SELECT pg_read_file((SELECT setting FROM pg_config WHERE name = 'SHAREDIR') "
        "|| '/tsearch_data/unaccent.rules')"
    ).fetchone()[0]
    assert len(rules.splitlines()) > 1000
    assert _migration().rules_leave_ascii_alone(rules) is True


def test_downgrade_restores_unaccent_and_the_whole_token_parse(fresh_db_url: str):
    config = alembic_config(fresh_db_url)
    command.downgrade(config, "0011")
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        assert _mapping(conn, "archive.mail", "asciiword") == ["unaccent", "simple"]
        assert _mapping(conn, "archive.mail_whole", "asciihword") == ["unaccent", "simple"]
        body = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = 'text_vector'").fetchone()
        assert "CASE" not in body[0]
    command.upgrade(config, "head")
    with psycopg.connect(fresh_db_url, autocommit=True) as conn:
        assert _mapping(conn, "archive.mail", "asciiword") == ["simple"]


def test_a_role_that_cannot_read_the_rules_file_keeps_unaccent(databases: DatabaseFactory):
    # A database owner without superuser (unaccent and pg_trgm are trusted extensions, so
    # such an owner can migrate): the rules file is out of its reach, so the migration
    # cannot tell and keeps 0011's mapping, and still reaches 0012.
    role = f"{databases.prefix}_owner"
    name = f"{databases.prefix}_owned"
    with psycopg.connect(databases.admin, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
        try:
            url = make_url(databases.admin).set(username=role, password=None, database=name)
            owned = url.render_as_string(hide_password=False)
            command.upgrade(alembic_config(owned), "head")
            with psycopg.connect(owned, autocommit=True) as conn:
                assert _mapping(conn, "archive.mail", "asciiword") == ["unaccent", "simple"]
                assert conn.execute(
                    "SELECT version_num FROM mailarchive.alembic_version"
                ).fetchone() == ("0012",)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
