"""Expand: the index of sent Message-IDs that bounces, complaints and replies are matched
against (a new table: its indexes are built with it, nothing to build online)."""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sent_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), nullable=False),
        sa.Column("message_id_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("queue_id", sa.String(40), nullable=False),
        sa.Column("recipient_digest", sa.String(64), nullable=False),
        sa.Column("suppression_digest", sa.LargeBinary(16), nullable=True),
        sa.Column("sent_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sent_messages"),
    )
    op.create_index("ix_sent_messages_message_id_hash", "sent_messages", ["message_id_hash"])
    op.create_index("ix_sent_messages_sent_at", "sent_messages", ["sent_at"])


def downgrade() -> None:
    op.drop_table("sent_messages")
