"""ledger: unique-ids kept octet for octet (delivery.uidl_octets), the key of the ledger

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

Unique-ids used to be decoded as ASCII with replacement, so `inbox-M\\xfcller-0001` and
`inbox-M\\xf6ller-0001` were one key, and a new message was taken for an archived one.
`delivery.uidl_octets` (bytea) now holds the octets the server sent and replaces `uidl` in
the ledger's unique key; `delivery.uidl` stays as the escaped text form (octets outside
0x21-0x7E as `\\xNN`, a backslash as `\\\\`), so `archive.messages.uidl` reads well in psql.

Existing rows get the octets of their text. For ASCII ids (all an RFC 1939 server sends)
that is exact; an id that was decoded with replacement (U+FFFD) lost its octets before this
migration, so it no longer matches the server's listing: that message is retrieved again
once and its row relabelled by SHA-256 (the ledger's UIDL-reset rule), nothing lost.
Text rows holding a backslash are escaped to the new form.

Downgrade restores the text key, in the escaped form (unique, because it is reversible). An
id holding a backslash or an octet outside ASCII then no longer matches what the older code
decodes from the listing: it retrieves that message once more and relabels its row.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "delivery", sa.Column("uidl_octets", sa.LargeBinary(), nullable=True), schema="mailarchive"
    )
    op.execute("UPDATE mailarchive.delivery SET uidl_octets = convert_to(uidl, 'UTF8')")
    op.execute(
        "UPDATE mailarchive.delivery SET uidl = replace(uidl, E'\\\\', E'\\\\\\\\') "
        "WHERE strpos(uidl, E'\\\\') > 0"
    )
    op.alter_column("delivery", "uidl_octets", nullable=False, schema="mailarchive")
    op.drop_constraint(
        "uq_delivery_mailbox_id_uidl_occurrence", "delivery", schema="mailarchive", type_="unique"
    )
    op.create_unique_constraint(
        op.f("uq_delivery_mailbox_id_uidl_octets_occurrence"),
        "delivery",
        ["mailbox_id", "uidl_octets", "occurrence"],
        schema="mailarchive",
    )


def downgrade() -> None:
    op.drop_constraint(
        "uq_delivery_mailbox_id_uidl_octets_occurrence",
        "delivery",
        schema="mailarchive",
        type_="unique",
    )
    op.create_unique_constraint(
        op.f("uq_delivery_mailbox_id_uidl_occurrence"),
        "delivery",
        ["mailbox_id", "uidl", "occurrence"],
        schema="mailarchive",
    )
    op.drop_column("delivery", "uidl_octets", schema="mailarchive")
