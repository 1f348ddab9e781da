"""POP3 ledger: copies sharing a UIDL, deletion requested vs confirmed, LOGIN-DELAY

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "mailbox",
        sa.Column("login_delay_seconds", sa.Integer(), nullable=True),
        schema="mailarchive",
    )
    op.add_column(
        "mailbox",
        sa.Column("listing_limited", sa.Boolean(), nullable=True),
        schema="mailarchive",
    )
    op.add_column(
        "delivery",
        sa.Column("occurrence", sa.SmallInteger(), server_default="0", nullable=False),
        schema="mailarchive",
    )
    op.add_column(
        "delivery",
        sa.Column("delete_requested_at", sa.DateTime(timezone=True), nullable=True),
        schema="mailarchive",
    )
    op.drop_constraint(
        "uq_delivery_mailbox_id_uidl", "delivery", schema="mailarchive", type_="unique"
    )
    op.create_unique_constraint(
        op.f("uq_delivery_mailbox_id_uidl_occurrence"),
        "delivery",
        ["mailbox_id", "uidl", "occurrence"],
        schema="mailarchive",
    )


def downgrade() -> None:
    # Copies beyond the first of a shared UIDL cannot fit the old constraint.
    op.execute("DELETE FROM mailarchive.delivery WHERE occurrence > 0")
    op.drop_constraint(
        op.f("uq_delivery_mailbox_id_uidl_occurrence"),
        "delivery",
        schema="mailarchive",
        type_="unique",
    )
    op.create_unique_constraint(
        "uq_delivery_mailbox_id_uidl", "delivery", ["mailbox_id", "uidl"], schema="mailarchive"
    )
    op.drop_column("delivery", "delete_requested_at", schema="mailarchive")
    op.drop_column("delivery", "occurrence", schema="mailarchive")
    op.drop_column("mailbox", "listing_limited", schema="mailarchive")
    op.drop_column("mailbox", "login_delay_seconds", schema="mailarchive")
