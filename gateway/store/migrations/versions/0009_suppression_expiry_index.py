"""Expand: a partial index on the suppression entries that expire (few: soft bounces), so
the hourly purge of long-expired ones does not scan ten million permanent entries."""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_index("ix_suppressions_expires_at", "suppressions", ["expires_at"],
                    sqlite_where=sa.text("expires_at IS NOT NULL"),
                    postgresql_where=sa.text("expires_at IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_suppressions_expires_at", table_name="suppressions")
