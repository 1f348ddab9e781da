"""Header fields of enclosed messages: header_field.part_path, in archive.headers

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "header_field",
        sa.Column("part_path", sa.String(length=200), nullable=True),
        schema="mailarchive",
    )
    # CREATE OR REPLACE keeps the view's grants (archive_reader); new columns go last.
    op.execute(
        """
        CREATE OR REPLACE VIEW archive.headers AS
        SELECT message_id, name, value, ordinal, part_path FROM mailarchive.header_field
        """
    )
    # Messages indexed before this revision get these rows from `mailarchive reindex`.


def downgrade() -> None:
    op.execute("DELETE FROM mailarchive.header_field WHERE part_path IS NOT NULL")
    op.execute("DROP VIEW archive.headers")
    op.execute(
        """
        CREATE VIEW archive.headers AS
        SELECT message_id, name, value, ordinal FROM mailarchive.header_field
        """
    )
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'archive_reader') THEN "
        "GRANT SELECT ON archive.headers TO archive_reader; END IF; END $$"
    )
    op.drop_column("header_field", "part_path", schema="mailarchive")
