"""Names and sizes the schema is built from, shared by the models, the migrations' SQL and
the hot write path (`archive.index.writes`)."""

SCHEMA = "mailarchive"

# The text search configuration of every vector and query: `simple` (no stemming, so any
# language) behind `unaccent`, so "grusse" finds "Grüße". Created by migration 0003.
TEXT_CONFIG = "archive.mail"
# The vector of a text (migration 0006): its words with separators such as @ . / - < >
# made spaces, so the parts of addresses, URLs, paths and file names are words, plus those
# whole tokens as PostgreSQL's parser sees them.
TEXT_VECTOR = "mailarchive.text_vector"
# The message row's vector covers the subject and the first SEARCH_CHUNK_CHARS (+ overlap)
# characters of the body; the rest of a long body and the text of text attachments go to
# `text_chunk` rows of the same size. PostgreSQL refuses tsvectors over 1 MB, which a
# chunk of 100,000 characters cannot reach (at most 50,000 distinct lexemes).
SEARCH_CHUNK_CHARS = 100_000
# Chunks overlap so that a word cut by a chunk boundary is whole in one of them.
SEARCH_CHUNK_OVERLAP = 100

# Trigram (pg_trgm) indexes, created by migration 0003: substring search in addresses,
# names, file names and text in Chinese, Japanese or Korean (see migrations/sql/).
MESSAGE_CJK_TEXT = "mailarchive.message_cjk_text(subject, body_text)"
