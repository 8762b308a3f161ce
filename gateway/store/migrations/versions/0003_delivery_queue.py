"""Expand: pending copies become the delivery queue; the audit trail learns Message-IDs.

Additive only: new columns with defaults or NULL, new indexes. Nodes on 0002 keep writing
pending copies (state 'deferred' / 'refused'), which the 0003 queue worker picks up.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("pending_copies") as batch:
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="copy"))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("expires_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("lease_until", Timestamp, nullable=True))
        batch.add_column(sa.Column("updated_at", Timestamp, nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(998), nullable=True))
    op.create_index("ix_pending_copies_state", "pending_copies", ["state", "next_attempt_at"])
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("message_id", sa.String(998), nullable=True))
    op.create_index("ix_audit_events_message_id", "audit_events", ["message_id"])
