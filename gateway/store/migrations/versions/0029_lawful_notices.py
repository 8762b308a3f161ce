"""Who has had the allow-with-notice notice from which tenant (issue 30): the person by
audit digest only, so the proof that they were told outlives an erasure."""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"


def upgrade() -> None:
    op.create_table(
        "lawful_notices",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("queue_id", sa.String(40), nullable=False),
        sa.Column("policy", sa.String(80), nullable=False),
        sa.Column("noticed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "digest", name="pk_lawful_notices"),
    )


def downgrade() -> None:
    op.drop_table("lawful_notices")
