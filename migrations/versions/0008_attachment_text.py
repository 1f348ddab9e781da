"""The text inside attachments: extracted_text (one row per distinct SHA-256), a status per
attachment in archive.attachments, message.extract_version

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30

Attachments archived before this revision have `text_status` NULL: `mailarchive reindex`
extracts them (their messages have `extract_version` 0). Messages without attachments are
marked as done, so reindex does not re-parse them for this.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GRANT = (
    "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'archive_reader') THEN "
    "GRANT SELECT ON archive.attachments TO archive_reader; END IF; END $$"
)

# As in 0001 (the last revision that defined it), then the new columns: CREATE OR REPLACE
# keeps the view's grants (archive_reader) and needs new columns last.
_ATTACHMENTS = """
    CREATE OR REPLACE VIEW archive.attachments AS
    SELECT message_id, filename, content_type, size, sha256, part_path, disposition,
           content_id, ordinal, text_status, text_detail
    FROM mailarchive.attachment
"""


def upgrade() -> None:
    op.create_table(
        "extracted_text",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.Column("extractor_version", sa.Integer(), nullable=False),
        sa.Column(
            "extracted_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_extracted_text")),
        schema="mailarchive",
    )
    op.add_column(
        "attachment",
        sa.Column("text_status", sa.String(length=16), nullable=True),
        schema="mailarchive",
    )
    op.add_column(
        "attachment", sa.Column("text_detail", sa.Text(), nullable=True), schema="mailarchive"
    )
    op.add_column(
        "message",
        sa.Column("extract_version", sa.Integer(), server_default="0", nullable=False),
        schema="mailarchive",
    )
    op.execute("UPDATE mailarchive.message SET extract_version = 1 WHERE NOT has_attachments")
    op.execute(_ATTACHMENTS)


def downgrade() -> None:
    op.execute("DROP VIEW archive.attachments")
    op.execute(
        """
        CREATE VIEW archive.attachments AS
        SELECT message_id, filename, content_type, size, sha256, part_path, disposition,
               content_id, ordinal
        FROM mailarchive.attachment
        """
    )
    op.execute(_GRANT)
    op.drop_column("message", "extract_version", schema="mailarchive")
    op.drop_column("attachment", "text_detail", schema="mailarchive")
    op.drop_column("attachment", "text_status", schema="mailarchive")
    op.drop_table("extracted_text", schema="mailarchive")
