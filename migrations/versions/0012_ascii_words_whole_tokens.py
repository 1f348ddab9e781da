"""Vectors for less CPU, the same lexemes: ASCII words skip unaccent; no whole-token pass
over a text without separators

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

Building search vectors is about half of PostgreSQL's CPU per archived message. Two parts of
that work can be skipped without changing one vector, so stored vectors and their GIN
indexes stay valid and nothing is recomputed:

- `archive.mail` (0003) sends every word through `unaccent`, then `simple`. `unaccent`
  returns nothing (the next dictionary gets the token as it was) unless one of its rules'
  sources occurs in the token. A token of the types `asciiword`, `asciihword` and
  `hword_asciipart` holds ASCII characters only, so when no rule's source starts with an
  ASCII character, `unaccent` never changes such a token and `simple` alone gives the same
  lexeme. That holds for PostgreSQL's own `unaccent.rules` (2,661 rules, every source a
  letter or symbol outside ASCII); this migration checks it on the server: every ASCII
  character must pass `ts_lexize` unchanged and the rules file the dictionary was built
  from must have no line that starts with an ASCII character. A server with other rules, or
  whose rules file the migration may not read (the `pg_config` view and `pg_read_file` of
  a path outside the data directory need superuser by default), keeps the old mapping. The
  same for `archive.mail_whole` (0006), which maps `asciihword` the same way. Rules changed
  on the server later would call for `downgrade` to 0011, as they would call for every
  stored vector to be recomputed anyway.
- `mailarchive.text_vector` (0006) parses a text a second time as a whole (configuration
  `archive.mail_whole`) for addresses, host names, URLs, paths, file names, versions,
  decimals and hyphenated words. Every one of those tokens holds a separator of
  `mailarchive.token_parts` (`@ . / : - _ < > = ? # ~ + & % \\ |`), so a text without any
  yields an empty vector there: the second parse (a quarter of `text_vector`) is skipped
  for it. `archive.search` already relies on the same fact for query terms
  (`mailarchive.text_query`: a term equal to its parts has no whole token).

tests/integration/test_vector_equivalence.py compares the old and new vectors on the shared
corpus texts, every code point and generated text.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ASCII_TYPES = {
    "archive.mail": "asciiword, asciihword, hword_asciipart",
    "archive.mail_whole": "asciihword",
}

# The separators of token_parts (0011), as the same bracket expression.
_CLASS = r"[@./_:<>=?#~+&%|\\-]"


def _text_vector(whole: str) -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION mailarchive.text_vector(value text) RETURNS tsvector "
        "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
        "$$ SELECT pg_catalog.to_tsvector('archive.mail'::regconfig, "
        f"mailarchive.token_parts(value)) || {whole} $$"
    )


def _unaccent() -> str:
    """The unaccent dictionary the configurations use, schema-qualified (as 0003 found it)."""
    schema = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT quote_ident(n.nspname) FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'unaccent'"
            )
        )
        .scalar_one()
    )
    return f"{schema}.unaccent"


def rules_leave_ascii_alone(rules: str) -> bool:
    """Whether no rule of an unaccent rules file (its text) has a source that starts with an
    ASCII character. A rule is a line: the source, whitespace, the replacement; leading
    whitespace is skipped, so it is here too (every Unicode space: stricter than the server)."""
    for line in rules.splitlines():
        source = line.lstrip()
        if source and source[0].isascii():
            return False
    return True


def ascii_is_unchanged(unaccent: str) -> bool:
    """Whether the server's `unaccent` dictionary leaves every ASCII-only token as it is.

    False when it cannot be told (the rules file unreadable for this role)."""
    bind = op.get_bind()
    changed = bind.execute(
        sa.text(
            "SELECT count(*) FROM generate_series(1, 127) AS c "
            f"WHERE ts_lexize('{unaccent}'::regdictionary, chr(c)) IS NOT NULL"
        )
    ).scalar_one()
    if changed:
        return False
    try:
        # A savepoint: without the privilege the statement fails, the migration does not.
        with bind.begin_nested():
            rules = bind.execute(
                sa.text(
                    "SELECT pg_read_file((SELECT setting FROM pg_config WHERE name = 'SHAREDIR')"
                    " || '/tsearch_data/' || substring(d.dictinitoption "
                    "FROM 'rules\\s*=\\s*''([a-z0-9_]+)''') || '.rules') "
                    "FROM pg_ts_dict d WHERE d.oid = CAST(:dictionary AS regdictionary)"
                ),
                {"dictionary": unaccent},
            ).scalar_one()
    except DBAPIError:
        return False
    return rules is not None and rules_leave_ascii_alone(rules)


def upgrade() -> None:
    unaccent = _unaccent()
    if ascii_is_unchanged(unaccent):
        for config, types in ASCII_TYPES.items():
            op.execute(
                f"ALTER TEXT SEARCH CONFIGURATION {config} ALTER MAPPING FOR {types} "
                "WITH pg_catalog.simple"
            )
    _text_vector(
        f"CASE WHEN value ~ '{_CLASS}' "
        "THEN pg_catalog.to_tsvector('archive.mail_whole'::regconfig, value) "
        "ELSE ''::tsvector END"
    )


def downgrade() -> None:
    unaccent = _unaccent()
    for config, types in ASCII_TYPES.items():
        op.execute(
            f"ALTER TEXT SEARCH CONFIGURATION {config} ALTER MAPPING FOR {types} "
            f"WITH {unaccent}, pg_catalog.simple"
        )
    _text_vector("pg_catalog.to_tsvector('archive.mail_whole'::regconfig, value)")
