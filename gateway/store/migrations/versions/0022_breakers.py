"""Reputation circuit breakers (issue 28): a row per scope that warned or tripped."""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"


def upgrade() -> None:
    op.create_table(
        "breakers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("rate", sa.Float, nullable=False),
        sa.Column("window", sa.String(8), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("scope", name="uq_breakers_scope"),
    )
    op.create_index("ix_breakers_tenant_id", "breakers", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_breakers_tenant_id", "breakers")
    op.drop_table("breakers")
