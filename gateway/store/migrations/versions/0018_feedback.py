"""Expand: what automatic opt-out needs. Three new tables (their indexes are built with
them) and an index on `sent_messages.queue_id`, built online: the sent index may already
hold millions of rows that relaying writes to while it builds."""

import sqlalchemy as sa
from alembic import op

from gateway.store import online

revision = "0018"
down_revision = "0017"

Timestamp = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "feedback_marks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("suppression_digest", sa.LargeBinary(16), nullable=True),
        sa.Column("recipient_digest", sa.String(64), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback_marks"),
    )
    op.create_index("ix_feedback_marks_tenant_id", "feedback_marks",
                    ["tenant_id", "kind", "suppression_digest"])
    op.create_index("ix_feedback_marks_at", "feedback_marks", ["at"])
    op.create_table(
        "optout_reviews",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("queue_id", sa.String(40), nullable=False),
        sa.Column("recipient_digest", sa.String(64), nullable=False),
        sa.Column("suppression_digest", sa.LargeBinary(16), nullable=True),
        sa.Column("rule", sa.String(80), nullable=False),
        sa.Column("sealed_reply", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("decided_at", Timestamp, nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_optout_reviews"),
    )
    op.create_index("ix_optout_reviews_status", "optout_reviews", ["status", "tenant_id"])
    op.create_index("ix_optout_reviews_created_at", "optout_reviews", ["created_at"])
    op.create_table(
        "inbox_state",
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("folder", sa.String(200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("next_uid", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(80), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", "folder", name="pk_inbox_state"),
    )
    online.create_index("ix_sent_messages_queue_id", "sent_messages", ["queue_id"])


def downgrade() -> None:
    op.drop_index("ix_sent_messages_queue_id", table_name="sent_messages")
    op.drop_table("inbox_state")
    op.drop_table("optout_reviews")
    op.drop_table("feedback_marks")
