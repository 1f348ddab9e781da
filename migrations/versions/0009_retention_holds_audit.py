"""Legal holds (hold, hold_message), the append-only audit trail (audit_log), and searches
that record themselves in it

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

- `mailarchive.audit_log`: one row per search, export, import, hold change, retention run
  and forget. A trigger fills the timestamp, database role, client and the hash chain
  (`sha256` over the row and the previous row's `sha256`) on every insert, and another
  refuses UPDATE, DELETE and TRUNCATE; those privileges are revoked too. Read it in
  `archive.audit`.
- `mailarchive.hold`, `mailarchive.hold_message`: holds by mailbox, by query (the messages it
  matched when placed) or by message. Triggers refuse to delete a held message's rows, so no
  path (retention, forget, SQL by hand) removes them, and gc never sees their objects as
  orphans. Read them in `archive.holds` and `archive.held_messages`.
- `archive.search` and `archive.search_count` record each call (../sql/search_audit_0009.sql),
  around the unrecorded, owner-only `mailarchive.search_unrecorded` and
  `mailarchive.search_count_unrecorded` (0006's functions, for export's REPEATABLE READ pages).
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL = Path(__file__).resolve().parents[1] / "sql"


def _run(sql: str) -> None:
    # Straight to the driver, without parameters: the function bodies hold ":" and "%".
    op.get_bind().connection.cursor().execute(sql)


def _search_0006() -> str:
    """archive.search and archive.search_count as migration 0006 defined them."""
    source = (SQL / "search_0006.sql").read_text(encoding="utf-8")
    start = source.index("CREATE FUNCTION archive.search(\n")
    end = source.index("-- The plan archive.search runs")
    return source[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("db_role", sa.Text(), server_default=sa.text("session_user"), nullable=False),
        sa.Column("os_user", sa.Text(), nullable=True),
        sa.Column("client", sa.Text(), nullable=True),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("prev_sha256", sa.String(length=64), nullable=True),
        sa.Column("sha256", sa.String(length=64), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        schema="mailarchive",
    )
    op.create_table(
        "hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("mailbox_id", sa.Integer(), nullable=True),
        sa.Column("mailbox_name", sa.String(length=200), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), server_default=sa.text("session_user"), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.Text(), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('mailbox', 'query', 'messages')", name=op.f("ck_hold_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailarchive.mailbox.id"],
            name=op.f("fk_hold_mailbox_id_mailbox"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hold")),
        schema="mailarchive",
    )
    op.create_index(
        "ix_hold_active_name",
        "hold",
        ["name"],
        unique=True,
        schema="mailarchive",
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_index(
        op.f("ix_hold_mailbox_id"), "hold", ["mailbox_id"], unique=False, schema="mailarchive"
    )
    op.create_table(
        "hold_message",
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["mailarchive.hold.id"], name=op.f("fk_hold_message_hold_id_hold")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["mailarchive.message.id"],
            name=op.f("fk_hold_message_message_id_message"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("hold_id", "sha256", name=op.f("pk_hold_message")),
        schema="mailarchive",
    )
    op.create_index(
        op.f("ix_hold_message_message_id"),
        "hold_message",
        ["message_id"],
        unique=False,
        schema="mailarchive",
    )
    _run((SQL / "compliance_0009.sql").read_text(encoding="utf-8"))
    _run((SQL / "search_audit_0009.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    _run(_search_0006())
    op.execute("DROP FUNCTION mailarchive.search_unrecorded(text, integer, integer, text)")
    op.execute("DROP FUNCTION mailarchive.search_count_unrecorded(text)")
    op.execute("DROP VIEW archive.held_messages")
    op.execute("DROP VIEW archive.holds")
    op.execute("DROP VIEW archive.audit")
    op.execute("DROP TRIGGER held_delivery_kept ON mailarchive.delivery")
    op.execute("DROP TRIGGER held_message_kept ON mailarchive.message")
    op.execute("DROP FUNCTION mailarchive.refuse_held_delete()")
    op.execute("DROP FUNCTION mailarchive.is_held(bigint)")
    op.execute("DROP FUNCTION mailarchive.audit_record(text, jsonb)")
    op.drop_table("hold_message", schema="mailarchive")
    op.drop_table("hold", schema="mailarchive")
    op.drop_table("audit_log", schema="mailarchive")
    op.execute("DROP FUNCTION mailarchive.audit_refuse_change()")
    op.execute("DROP FUNCTION mailarchive.audit_chain()")
    op.execute(
        "DROP FUNCTION mailarchive.audit_row_hash(text, timestamptz, text, text, text, text, jsonb)"
    )
