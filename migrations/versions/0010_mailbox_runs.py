"""mailbox_run: one row per mailbox run (an attempt), written by the archiver when it ends

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

`mailarchive status` reads each mailbox's last run and last successful run from here. A row
holds when the attempt started and ended, its status (ok, failed, skipped, deferred,
partial), its counts and a one-line summary of its error: the archive's own error message,
or only the exception's type for anything else, so no text that might hold a secret is kept.
The rows go with their mailbox (`mailarchive mailbox forget`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mailbox_run",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("listed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("new", sa.Integer(), server_default="0", nullable=False),
        sa.Column("archived", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed_messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("interrupted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('ok', 'failed', 'skipped', 'deferred', 'partial')",
            name=op.f("ck_mailbox_run_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailarchive.mailbox.id"],
            name=op.f("fk_mailbox_run_mailbox_id_mailbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_run")),
        schema="mailarchive",
    )
    op.create_index(
        op.f("ix_mailbox_run_mailbox_id_finished_at"),
        "mailbox_run",
        ["mailbox_id", "finished_at"],
        unique=False,
        schema="mailarchive",
    )


def downgrade() -> None:
    op.drop_table("mailbox_run", schema="mailarchive")
