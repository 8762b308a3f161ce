"""Expand: a TXT verification token per sending domain, and when it was proven."""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.add_column(sa.Column("verify_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("verified_at", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.drop_column("verified_at")
        batch.drop_column("verify_token")
