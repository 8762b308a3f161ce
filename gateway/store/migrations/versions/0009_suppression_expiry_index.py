"""Expand: a partial index on the suppression entries that expire (few: soft bounces), so
the hourly purge of long-expired ones does not scan ten million permanent entries. Built
without blocking writes (suppressions are checked and added while it builds)."""

from alembic import op

from gateway.store import online

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    online.create_index("ix_suppressions_expires_at", "suppressions", ["expires_at"],
                        where="expires_at IS NOT NULL")


def downgrade() -> None:
    op.drop_index("ix_suppressions_expires_at", table_name="suppressions")
