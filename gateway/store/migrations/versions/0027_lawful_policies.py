"""Versions of the lawful-basis table (issue 30): each published table is a new row, kept."""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"


def upgrade() -> None:
    op.create_table(
        "lawful_policies",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("policy_id", sa.String(60), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lawful_policies")
