"""Expand: per-mailbox settings and the table of copies not yet delivered.

Additive only (a new nullable-with-default column, a new table), so a node still on 0001
keeps working while the other nodes roll forward.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("settings", sa.JSON, nullable=False, server_default="{}"))
    op.create_table(
        "pending_copies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("queue_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("envelope_from", sa.String(320), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reply_code", sa.Integer, nullable=False),
        sa.Column("reply_status", sa.String(12), nullable=False),
        sa.Column("reply_text", sa.String(500), nullable=False),
        sa.Column("smtputf8", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("sealed_message", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pending_copies"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"],
                                name="fk_pending_copies_tenant_id_tenants"),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailboxes.id"],
                                name="fk_pending_copies_mailbox_id_mailboxes"),
    )
    op.create_index("ix_pending_copies_queue_id", "pending_copies", ["queue_id"])
