"""Expand: pixel opens (recipient digest, network, user-agent family; never a full IP)."""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"

Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "opens",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("queue_id", sa.String(40), nullable=True),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("recipient_digest", sa.String(64), nullable=True),
        sa.Column("network", sa.String(50), nullable=False),
        sa.Column("ua_family", sa.String(40), nullable=False),
        sa.Column("machine", sa.Boolean, nullable=False),
        sa.Column("signals", sa.String(100), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_opens"),
    )
    op.create_index("ix_opens_tenant_at", "opens", ["tenant_id", "at"])
    op.create_index("ix_opens_tenant_campaign", "opens", ["tenant_id", "campaign"])
    op.create_index("ix_opens_tenant_queue", "opens", ["tenant_id", "queue_id"])


def downgrade() -> None:
    op.drop_table("opens")
