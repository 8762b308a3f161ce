"""Opt-out receipts signed after their opt-out commits (issue 29): a pending row keeps the
audit head its receipt will name, and the expiry of an entry that lapses (a soft bounce's);
an empty `receipt` marks it pending."""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"


def upgrade() -> None:
    op.add_column("optout_receipts", sa.Column("audit_head", sa.String(64), nullable=False,
                                               server_default=""))
    op.add_column("optout_receipts", sa.Column("expires_at", sa.DateTime(timezone=True),
                                               nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("optout_receipts") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("audit_head")
