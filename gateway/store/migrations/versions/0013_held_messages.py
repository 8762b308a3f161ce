"""Expand: messages held for review and copies of refused ones (bodies sealed)."""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "held_messages",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("queue_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("login", sa.String(200), nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("recipients", sa.JSON, nullable=False),
        sa.Column("subject", sa.String(998), nullable=False, server_default=""),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("smtputf8", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("check_name", sa.String(60), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("verdicts", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("sealed_message", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("decided_at", Timestamp, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_held_messages"),
        sa.UniqueConstraint("queue_id", name="uq_held_messages_queue_id"),
    )
    op.create_index("ix_held_messages_tenant_status", "held_messages",
                    ["tenant_id", "status", "id"])


def downgrade() -> None:
    op.drop_table("held_messages")
