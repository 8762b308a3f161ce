"""Signed opt-out receipts (issue 29): the person only by audit digest."""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"


def upgrade() -> None:
    op.create_table(
        "optout_receipts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("recipient_digest", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt", sa.Text, nullable=False),
    )
    op.create_index("ix_optout_receipts_tenant", "optout_receipts",
                    ["tenant_id", "recipient_digest"])
    op.create_index("ix_optout_receipts_effective_at", "optout_receipts", ["effective_at"])


def downgrade() -> None:
    op.drop_index("ix_optout_receipts_effective_at", "optout_receipts")
    op.drop_index("ix_optout_receipts_tenant", "optout_receipts")
    op.drop_table("optout_receipts")
