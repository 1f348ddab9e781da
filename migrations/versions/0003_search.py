"""search in SQL: archive.search(), multilingual vectors, text chunks, threads, reader role

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Needs the contrib extensions `unaccent` and `pg_trgm` (both "trusted": a database owner
may create them). The query language itself is PL/pgSQL in ../sql/search_0003.sql, so
psql users and `mailarchive search` share one implementation.
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_SQL = Path(__file__).resolve().parents[1] / "sql" / "search_0003.sql"
CJK = r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"

MESSAGES_VIEW = """
    CREATE VIEW archive.messages AS
    SELECT m.id, b.name AS mailbox, d.uidl, m.sha256, m.size, m.message_id, m.in_reply_to,
           m.reference_ids, m.subject, m.sent_at, m.has_attachments, m.body_text, m.defects,
           m.part_count, d.archived_at, d.deleted_at AS deleted_from_server_at, m.search,
           m.thread_id, m.parser_version
    FROM mailarchive.delivery d
    JOIN mailarchive.message m ON m.id = d.message_id
    JOIN mailarchive.mailbox b ON b.id = d.mailbox_id
"""
OLD_MESSAGES_VIEW = """
    CREATE VIEW archive.messages AS
    SELECT m.id, b.name AS mailbox, d.uidl, m.sha256, m.size, m.message_id, m.in_reply_to,
           m.reference_ids, m.subject, m.sent_at, m.has_attachments, m.body_text, m.defects,
           m.part_count, d.archived_at, d.deleted_at AS deleted_from_server_at, m.search
    FROM mailarchive.delivery d
    JOIN mailarchive.message m ON m.id = d.message_id
    JOIN mailarchive.mailbox b ON b.id = d.mailbox_id
"""
TEXT_CHUNKS_VIEW = """
    CREATE VIEW archive.text_chunks AS
    SELECT message_id, ordinal, part_path, start_char, content FROM mailarchive.text_chunk
"""

# A role for people and tools that only read: the views and archive.search, nothing else.
# Roles belong to the cluster, so it may exist already (another archive database); without
# CREATEROLE the migration goes on and says so.
READER_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'archive_reader') THEN
        BEGIN
            CREATE ROLE archive_reader NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN NULL;
            WHEN insufficient_privilege THEN
                RAISE WARNING 'archive_reader not created: no CREATEROLE privilege';
        END;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'archive_reader') THEN
        GRANT USAGE ON SCHEMA archive TO archive_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA archive TO archive_reader;
        GRANT EXECUTE ON FUNCTION archive.search(text, integer) TO archive_reader;
    END IF;
END $$
"""


def _extension_schema(name: str) -> str:
    op.execute(f"CREATE EXTENSION IF NOT EXISTS {name}")
    schema = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT quote_ident(n.nspname) FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = :name"
            ),
            {"name": name},
        )
        .scalar_one()
    )
    return str(schema)


def upgrade() -> None:
    unaccent = _extension_schema("unaccent")
    trgm = _extension_schema("pg_trgm")
    op.execute("CREATE SCHEMA IF NOT EXISTS archive")
    op.execute("CREATE TEXT SEARCH CONFIGURATION archive.mail (COPY = pg_catalog.simple)")
    op.execute(
        "ALTER TEXT SEARCH CONFIGURATION archive.mail ALTER MAPPING FOR "
        "asciihword, asciiword, hword, hword_asciipart, hword_part, word "
        f"WITH {unaccent}.unaccent, pg_catalog.simple"
    )
    # Lower case without accents, for substring matches on names and file names.
    op.execute(
        "CREATE FUNCTION mailarchive.fold(value text) RETURNS text "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
        f"$$ SELECT lower({unaccent}.unaccent('{unaccent}.unaccent'::regdictionary, value)) $$"
    )
    # Chinese, Japanese and Korean are written without spaces, so a word is not a token:
    # such text is found by substring, through a trigram index over the messages that have
    # any (NULL for the others, which keeps the index small).
    op.execute(
        "CREATE FUNCTION mailarchive.cjk_text(value text) RETURNS text "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
        f"$$ SELECT CASE WHEN value ~ '{CJK}' THEN value END $$"
    )
    # subject: has its own vector and index: the message vector's weight-A lexemes would
    # do, but the planner estimates "word in the subject" as "word anywhere", and walks
    # the newest messages for a word that is common in bodies and rare in subjects.
    op.execute(
        "CREATE FUNCTION mailarchive.subject_vector(subject text) RETURNS tsvector "
        # Not inlined (SET) and costly: the planner then reads the index instead of
        # recomputing the vector row by row (1.1 s instead of 37 ms, benchmarks/search.py).
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE COST 10000 SET search_path = pg_catalog AS "
        "$$ SELECT to_tsvector('archive.mail'::regconfig, coalesce(subject, '')) $$"
    )
    # What the message row's vector covers, for the same substring search.
    op.execute(
        "CREATE FUNCTION mailarchive.message_cjk_text(subject text, body text) RETURNS text "
        "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT mailarchive.cjk_text("
        "coalesce(subject, '') || ' ' || left(coalesce(body, ''), 100100)) $$"
    )

    op.execute("DROP VIEW archive.messages")
    op.drop_index(
        "ix_message_search", table_name="message", schema="mailarchive", postgresql_using="gin"
    )
    op.drop_column("message", "search", schema="mailarchive")
    op.add_column("message", sa.Column("thread_id", sa.Text(), nullable=True), schema="mailarchive")
    op.add_column(
        "message", sa.Column("thread_subject", sa.Text(), nullable=True), schema="mailarchive"
    )
    op.add_column(
        "message",
        sa.Column("parser_version", sa.Integer(), server_default="1", nullable=False),
        schema="mailarchive",
    )
    op.add_column(
        "message",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('archive.mail'::regconfig, coalesce(subject, '')), 'A') || setweight(to_tsvector('archive.mail'::regconfig, left(coalesce(body_text, ''), 100100)), 'B')",
                persisted=True,
            ),
            nullable=False,
        ),
        schema="mailarchive",
    )
    op.create_index(
        "ix_message_search",
        "message",
        ["search"],
        unique=False,
        schema="mailarchive",
        postgresql_using="gin",
    )
    # Search results come newest first: an index in that order lets a query that matches
    # half the archive stop after the first rows instead of sorting them all.
    op.drop_index("ix_message_sent_at", table_name="message", schema="mailarchive")
    op.execute("CREATE INDEX ix_message_sent_at ON mailarchive.message (sent_at DESC NULLS LAST)")
    op.execute(
        "CREATE INDEX ix_message_subject_search ON mailarchive.message "
        "USING gin (mailarchive.subject_vector(subject))"
    )
    op.create_index("ix_message_thread_id", "message", ["thread_id"], schema="mailarchive")
    op.create_index(
        "ix_message_thread_subject", "message", ["thread_subject"], schema="mailarchive"
    )
    op.create_table(
        "text_chunk",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("part_path", sa.String(length=200), nullable=True),
        sa.Column("start_char", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("search", postgresql.TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["mailarchive.message.id"],
            name=op.f("fk_text_chunk_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_text_chunk")),
        schema="mailarchive",
    )
    op.create_index(
        op.f("ix_text_chunk_message_id"),
        "text_chunk",
        ["message_id"],
        unique=False,
        schema="mailarchive",
    )
    op.create_index(
        "ix_text_chunk_search",
        "text_chunk",
        ["search"],
        unique=False,
        schema="mailarchive",
        postgresql_using="gin",
    )
    # Trigram indexes: substring matches for from:/to:/cc:, filename: and CJK text.
    for name, table, expression in [
        ("ix_address_address_trgm", "address", "address"),
        ("ix_address_name_trgm", "address", "mailarchive.fold(name)"),
        ("ix_attachment_filename_trgm", "attachment", "mailarchive.fold(filename)"),
        ("ix_message_cjk_trgm", "message", "mailarchive.message_cjk_text(subject, body_text)"),
        ("ix_text_chunk_cjk_trgm", "text_chunk", "mailarchive.cjk_text(content)"),
    ]:
        op.execute(
            f"CREATE INDEX {name} ON mailarchive.{table} "
            f"USING gin (({expression}) {trgm}.gin_trgm_ops)"
        )
    op.create_index(
        "ix_address_address_prefix",
        "address",
        ["address"],
        schema="mailarchive",
        postgresql_ops={"address": "text_pattern_ops"},
    )
    # Finer statistics where the planner chooses between "walk the newest messages and
    # check each" and "collect the matches, then sort": a from: prefix or a word that is
    # rarer than the default histogram can tell was measured at 670 ms instead of 20 ms.
    op.execute("ALTER TABLE mailarchive.address ALTER COLUMN address SET STATISTICS 1000")
    op.execute("ALTER TABLE mailarchive.message ALTER COLUMN search SET STATISTICS 1000")
    op.execute(MESSAGES_VIEW)
    op.execute(TEXT_CHUNKS_VIEW)
    # Straight to the driver, without parameters: the function body is full of ":" and "%".
    op.get_bind().connection.cursor().execute(SEARCH_SQL.read_text(encoding="utf-8"))
    op.execute("REVOKE ALL ON FUNCTION archive.search(text, integer) FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION archive.search_explain(text, integer) FROM PUBLIC")
    op.execute(READER_ROLE)


def downgrade() -> None:
    op.execute("DROP FUNCTION archive.search_explain(text, integer)")
    op.execute("DROP FUNCTION archive.search(text, integer)")
    op.execute("DROP FUNCTION mailarchive.search_statement(text, integer)")
    op.execute("DROP VIEW archive.text_chunks")
    op.execute("DROP VIEW archive.messages")
    op.drop_index("ix_address_address_prefix", table_name="address", schema="mailarchive")
    for name in ("ix_address_address_trgm", "ix_address_name_trgm", "ix_attachment_filename_trgm"):
        op.execute(f"DROP INDEX mailarchive.{name}")
    op.drop_table("text_chunk", schema="mailarchive")
    op.drop_index("ix_message_thread_subject", table_name="message", schema="mailarchive")
    op.drop_index("ix_message_thread_id", table_name="message", schema="mailarchive")
    op.drop_index("ix_message_sent_at", table_name="message", schema="mailarchive")
    op.create_index("ix_message_sent_at", "message", ["sent_at"], schema="mailarchive")
    op.drop_index("ix_message_cjk_trgm", table_name="message", schema="mailarchive")
    op.drop_index("ix_message_search", table_name="message", schema="mailarchive")
    op.drop_column("message", "search", schema="mailarchive")
    op.drop_column("message", "parser_version", schema="mailarchive")
    op.drop_column("message", "thread_subject", schema="mailarchive")
    op.drop_column("message", "thread_id", schema="mailarchive")
    op.add_column(
        "message",
        sa.Column(
            "search",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('simple'::regconfig, coalesce(subject, '')), 'A') || setweight(to_tsvector('simple'::regconfig, left(coalesce(body_text, ''), 500000)), 'B')",
                persisted=True,
            ),
            nullable=False,
        ),
        schema="mailarchive",
    )
    op.create_index(
        "ix_message_search",
        "message",
        ["search"],
        unique=False,
        schema="mailarchive",
        postgresql_using="gin",
    )
    op.execute(OLD_MESSAGES_VIEW)
    op.execute("ALTER TABLE mailarchive.address ALTER COLUMN address SET STATISTICS -1")
    op.execute("DROP INDEX mailarchive.ix_message_subject_search")
    op.execute("DROP FUNCTION mailarchive.subject_vector(text)")
    op.execute("DROP FUNCTION mailarchive.message_cjk_text(text, text)")
    op.execute("DROP FUNCTION mailarchive.cjk_text(text)")
    op.execute("DROP FUNCTION mailarchive.fold(text)")
    op.execute("DROP TEXT SEARCH CONFIGURATION archive.mail")
    if (
        op.get_bind()
        .execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = 'archive_reader'"))
        .scalar()
    ):
        op.execute("GRANT SELECT ON ALL TABLES IN SCHEMA archive TO archive_reader")
