"""search: parts of addresses, URLs and file names; file names; every match, paged, counted

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

- `mailarchive.text_vector(text)`: the words of a text with separators (@ . / : - < > …)
  made spaces, so `aquillaindustries` finds purchasing@aquillaindustries.com, `mboned`
  finds draft-ietf-mboned-mix-00.txt and `postmaster` finds "<postmaster>" (which
  PostgreSQL's parser drops as an HTML tag), plus the whole addresses, host names, URLs,
  paths and file names (configuration `archive.mail_whole`), so searching those still works.
- `message.attachment_names`: the attachments' file names, in the message's vector
  (weight C), so a plain word finds them.
- `archive.search(query, max_rows, row_offset, order_by)`: every match, newest first, paged;
  relevance order says when it ranked a window. `archive.search_count(query)`: how many.
  A bare address also finds the messages from, to or cc'ing it. (../sql/search_0006.sql)
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL = Path(__file__).resolve().parents[1] / "sql"
SEARCH_SQL = SQL / "search_0006.sql"
OLD_SEARCH_SQL = SQL / "search_0003.sql"

# Characters that join words into one lexeme of PostgreSQL's default parser (email, host,
# url, url_path, file, version, float, hyphenated word) or hide them (a "tag" in <…>).
SEPARATORS = "@./:-_<>=?#~+&%\\\\|"

NEW_SEARCH = (
    "setweight(mailarchive.text_vector(coalesce(subject, '')), 'A') || "
    "setweight(mailarchive.text_vector(coalesce(attachment_names, '')), 'C') || "
    "setweight(mailarchive.text_vector(left(coalesce(body_text, ''), 100100)), 'B')"
)
OLD_SEARCH = (
    "setweight(to_tsvector('archive.mail'::regconfig, coalesce(subject, '')), 'A') || "
    "setweight(to_tsvector('archive.mail'::regconfig, left(coalesce(body_text, ''), 100100)), 'B')"
)
# A chunk's vector is written by the index writer (archive/index/messages.py), not
# generated: the migration rewrites those already there the same way.
NEW_CHUNK_SEARCH = """
    UPDATE mailarchive.text_chunk c
    SET search = setweight(mailarchive.text_vector(coalesce(m.subject, '')), 'A')
        || setweight(mailarchive.text_vector(coalesce(m.attachment_names, '')), 'C')
        || setweight(mailarchive.text_vector(c.content), 'B')
    FROM mailarchive.message m WHERE m.id = c.message_id
"""
OLD_CHUNK_SEARCH = """
    UPDATE mailarchive.text_chunk c
    SET search = setweight(to_tsvector('archive.mail', coalesce(m.subject, '')), 'A')
        || setweight(to_tsvector('archive.mail', c.content), 'B')
    FROM mailarchive.message m WHERE m.id = c.message_id
"""
GRANTS = """
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'archive_reader') THEN
        GRANT SELECT ON archive.messages TO archive_reader;
        GRANT EXECUTE ON FUNCTION {functions} TO archive_reader;
    END IF;
END $$
"""
NEW_FUNCTIONS = (
    "archive.search(text, integer, integer, text)",
    "archive.search_explain(text, integer, integer, text)",
    "archive.search_count(text)",
)
OLD_FUNCTIONS = ("archive.search(text, integer)", "archive.search_explain(text, integer)")


def _search_column(expression: str) -> None:
    """Replace the message vector (a generated column) and what depends on it: the view
    archive.messages, recreated as it was (whatever migration 0005 made of it)."""
    view = (
        op.get_bind()
        .execute(sa.text("SELECT pg_get_viewdef('archive.messages'::regclass)"))
        .scalar_one()
    )
    op.execute("DROP VIEW archive.messages")
    op.drop_index("ix_message_search", table_name="message", schema="mailarchive")
    op.drop_column("message", "search", schema="mailarchive")
    op.add_column(
        "message",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(expression, persisted=True),
            nullable=False,
        ),
        schema="mailarchive",
    )
    op.create_index(
        "ix_message_search",
        "message",
        ["search"],
        schema="mailarchive",
        postgresql_using="gin",
    )
    op.execute("ALTER TABLE mailarchive.message ALTER COLUMN search SET STATISTICS 1000")
    # Straight to the driver: the definition may hold ":" and "%".
    op.get_bind().connection.cursor().execute(f"CREATE VIEW archive.messages AS {view}")


def _subject_vector(body: str) -> None:
    op.execute("DROP INDEX mailarchive.ix_message_subject_search")
    op.execute(
        "CREATE OR REPLACE FUNCTION mailarchive.subject_vector(subject text) RETURNS tsvector "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE COST 10000 SET search_path = pg_catalog AS "
        f"$$ SELECT {body} $$"
    )
    op.execute(
        "CREATE INDEX ix_message_subject_search ON mailarchive.message "
        "USING gin (mailarchive.subject_vector(subject))"
    )


def _run_sql(path: Path, functions: Sequence[str]) -> None:
    # Straight to the driver, without parameters: the function bodies are full of ":" and "%".
    op.get_bind().connection.cursor().execute(path.read_text(encoding="utf-8"))
    for function in functions:
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    op.execute(GRANTS.format(functions=", ".join(functions)))


def upgrade() -> None:
    # Whole compound tokens only: the words are indexed from the text with separators made
    # spaces (text_vector), so here only what a separator would break up is kept.
    op.execute("CREATE TEXT SEARCH CONFIGURATION archive.mail_whole (COPY = archive.mail)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION archive.mail_whole DROP MAPPING IF EXISTS FOR "
        "asciiword, word, numword, hword_asciipart, hword_part, hword_numpart, int, uint, "
        "sfloat, entity"
    )
    op.execute(
        "CREATE FUNCTION mailarchive.token_parts(value text) RETURNS text "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
        f"$$ SELECT pg_catalog.translate(value, E'{SEPARATORS}', "
        f"'{' ' * len(SEPARATORS.replace(chr(92) * 2, chr(92)))}') $$"
    )
    op.execute(
        "CREATE FUNCTION mailarchive.text_vector(value text) RETURNS tsvector "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
        "$$ SELECT pg_catalog.to_tsvector('archive.mail'::regconfig, "
        "mailarchive.token_parts(value)) "
        "|| pg_catalog.to_tsvector('archive.mail_whole'::regconfig, value) $$"
    )
    op.add_column(
        "message", sa.Column("attachment_names", sa.Text(), nullable=True), schema="mailarchive"
    )
    op.execute(
        "UPDATE mailarchive.message m SET attachment_names = a.names "
        "FROM (SELECT message_id, string_agg(filename, E'\\n' ORDER BY ordinal) AS names "
        "FROM mailarchive.attachment WHERE filename IS NOT NULL GROUP BY message_id) a "
        "WHERE a.message_id = m.id"
    )
    _search_column(NEW_SEARCH)
    _subject_vector("mailarchive.text_vector(coalesce(subject, ''))")
    for function in OLD_FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP FUNCTION mailarchive.search_statement(text, integer)")
    _run_sql(SEARCH_SQL, NEW_FUNCTIONS)
    op.execute(NEW_CHUNK_SEARCH)


def downgrade() -> None:
    for function in NEW_FUNCTIONS:
        op.execute(f"DROP FUNCTION {function}")
    op.execute("DROP FUNCTION mailarchive.search_statement(text, integer, integer, text)")
    op.execute("DROP FUNCTION mailarchive.text_query(text, boolean)")
    _subject_vector("to_tsvector('archive.mail'::regconfig, coalesce(subject, ''))")
    _search_column(OLD_SEARCH)
    op.drop_column("message", "attachment_names", schema="mailarchive")
    op.execute("DROP FUNCTION mailarchive.text_vector(text)")
    op.execute("DROP FUNCTION mailarchive.token_parts(text)")
    op.execute("DROP TEXT SEARCH CONFIGURATION archive.mail_whole")
    _run_sql(OLD_SEARCH_SQL, OLD_FUNCTIONS)
    op.execute(OLD_CHUNK_SEARCH)
