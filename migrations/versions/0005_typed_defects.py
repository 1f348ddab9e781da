"""Typed defects: mailarchive.defect rows (kind, part_path, detail) and the view archive.defects

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Defects were free text in `message.defects text[]`. Each is now a row whose `kind` comes
from the closed set `archive.mime.DefectKind` (listed in docs/sql.md), so
`SELECT kind, count(*) FROM archive.defects GROUP BY kind` works. The text[] column is
dropped; `archive.messages.defects` stays, as text built from the rows.

Existing rows are moved over with a kind guessed from their text (`legacy` where nothing
matches); they were written by parser version 3 or older, so `mailarchive reindex`
re-parses them and replaces these guesses with what the parser records today.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One defect as text, as `str(archive.mime.Defect)` writes it: "kind (part 2): detail".
_AS_TEXT = """
    x.kind || CASE WHEN x.part_path IS NULL THEN ''
                   WHEN x.part_path = '' THEN ' (message)'
                   ELSE ' (part ' || x.part_path || ')' END || ': ' || x.detail
"""


def _messages_view(defects: str) -> str:
    # CREATE OR REPLACE keeps the view's grants (archive_reader) and its column order.
    return f"""
        CREATE OR REPLACE VIEW archive.messages AS
        SELECT m.id, b.name AS mailbox, d.uidl, m.sha256, m.size, m.message_id, m.in_reply_to,
               m.reference_ids, m.subject, m.sent_at, m.has_attachments, m.body_text,
               {defects} AS defects,
               m.part_count, d.archived_at, d.deleted_at AS deleted_from_server_at, m.search,
               m.thread_id, m.parser_version
        FROM mailarchive.delivery d
        JOIN mailarchive.message m ON m.id = d.message_id
        JOIN mailarchive.mailbox b ON b.id = d.mailbox_id
    """


# Only evaluated when a query selects the column (the view is flattened into the query).
_DEFECTS_FROM_ROWS = (
    f"ARRAY(SELECT {_AS_TEXT} FROM mailarchive.defect x "
    "WHERE x.message_id = m.id ORDER BY x.ordinal)"
)

# Old free text (parser versions 1-3) to a kind: first match wins, else 'legacy'.
_LEGACY_KINDS = [
    ("%over the parse limit%", "header_only"),
    ("%part limit reached%", "part_limit"),
    ("%TNEF: only the first%", "part_limit"),
    ("%uuencode: only the first%", "part_limit"),
    ("%nested deeper than%", "depth_limit"),
    ("%characters, cut to%", "header_limit"),
    ("%parameters longer than%", "header_limit"),
    ("%header fields, the rest not decoded", "header_limit"),
    ("%address list cut after%", "header_limit"),
    ("%body text cut at%", "text_limit"),
    ("%attachment text cut%", "text_limit"),
    ("%HTML not converted%", "html_limit"),
    ("%HTML too large%", "html_limit"),
    ("%more defects not listed", "defect_limit"),
    ("%parse failed%", "parse_failed"),
    ("%MIME structure not%", "parse_failed"),
    ("%StartBoundaryNotFoundDefect", "missing_boundary"),
    ("%NoBoundaryInMultipartDefect", "missing_boundary"),
    ("%declared boundary not found%", "missing_boundary"),
    ("%without usable boundary%", "missing_boundary"),
    ("%CloseBoundaryNotFoundDefect", "missing_final_boundary"),
    ("%parts after the closing boundary%", "parts_after_close"),
    ("%MultipartInvariantViolationDefect", "multipart_malformed"),
    ("%InvalidMultipartContentTransferEncodingDefect", "multipart_malformed"),
    ("%invalid Content-Type%", "bad_content_type"),
    ("%unknown disposition%", "bad_disposition"),
    ("%with base64 encoding", "enclosed_encoded"),
    ("%with quoted-printable encoding", "enclosed_encoded"),
    ("%HeaderDefect", "header_malformed"),
    ("%HeaderLineIsContinuationDefect", "header_malformed"),
    ("%MissingHeaderBodySeparatorDefect", "header_malformed"),
    ("%header block unreadable%", "header_malformed"),
    ("%unknown charset%", "charset_unknown"),
    ("%text, decoded as%", "charset_invalid"),
    ("%no charset declared%", "charset_missing"),
    ("%is not valid UTF-8, decoded as%", "header_8bit"),
    ("%Date: unparseable%", "bad_date"),
    ("%no address in%", "bad_address"),
    ("%second <address>%", "bad_address"),
    ("%base64:%", "bad_base64"),
    ("%uuencode:%", "bad_uuencode"),
    ("%unknown Content-Transfer-Encoding%", "unknown_transfer_encoding"),
    ("%TNEF not decoded%", "bad_tnef"),
]
_PART = r"'^(part ([^:]+)|message): '"


def _legacy_kind() -> str:
    cases = " ".join(
        f"WHEN old.text LIKE '{pattern}' THEN '{kind}'" for pattern, kind in _LEGACY_KINDS
    )
    return f"CASE {cases} ELSE 'legacy' END"


def upgrade() -> None:
    op.create_table(
        "defect",
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("part_path", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["mailarchive.message.id"],
            name=op.f("fk_defect_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "ordinal", name=op.f("pk_defect")),
        schema="mailarchive",
    )
    op.create_index("ix_defect_kind", "defect", ["kind"], schema="mailarchive")
    op.execute(
        f"""
        INSERT INTO mailarchive.defect (message_id, ordinal, kind, part_path, detail)
        SELECT m.id, old.n - 1, {_legacy_kind()},
               CASE WHEN old.text LIKE 'message: %' THEN ''
                    ELSE substring(old.text FROM '^part ([^:]+): ') END,
               regexp_replace(old.text, {_PART}, '')
        FROM mailarchive.message m, unnest(m.defects) WITH ORDINALITY AS old(text, n)
        """
    )
    op.execute(_messages_view(_DEFECTS_FROM_ROWS))
    op.drop_column("message", "defects", schema="mailarchive")
    op.execute(
        """
        CREATE VIEW archive.defects AS
        SELECT message_id, ordinal, kind, part_path, detail FROM mailarchive.defect
        """
    )
    _grant_reader("archive.defects")


def downgrade() -> None:
    op.add_column(
        "message",
        sa.Column("defects", sa.ARRAY(sa.Text()), server_default="{}", nullable=False),
        schema="mailarchive",
    )
    op.execute(
        f"""
        UPDATE mailarchive.message m
        SET defects = ARRAY(
            SELECT CASE WHEN x.kind = 'legacy' THEN x.detail ELSE {_AS_TEXT} END
            FROM mailarchive.defect x WHERE x.message_id = m.id ORDER BY x.ordinal
        )
        WHERE EXISTS (SELECT FROM mailarchive.defect x WHERE x.message_id = m.id)
        """
    )
    op.execute(_messages_view("m.defects"))
    op.execute("DROP VIEW archive.defects")
    op.drop_index("ix_defect_kind", table_name="defect", schema="mailarchive")
    op.drop_table("defect", schema="mailarchive")


def _grant_reader(view: str) -> None:
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'archive_reader') THEN "
        f"GRANT SELECT ON {view} TO archive_reader; END IF; END $$"
    )
