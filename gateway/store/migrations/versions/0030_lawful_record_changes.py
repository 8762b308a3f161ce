"""Which people's lawful-basis records changed, for every node's in-memory copy to re-read
(lawful/index.py): digests only, kept a day."""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"


def upgrade() -> None:
    op.create_table(
        "lawful_record_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("digests", sa.JSON, nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_lawful_record_changes_at", "lawful_record_changes", ["changed_at"])


def downgrade() -> None:
    op.drop_index("ix_lawful_record_changes_at", "lawful_record_changes")
    op.drop_table("lawful_record_changes")
