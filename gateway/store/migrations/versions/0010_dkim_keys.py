"""Expand: DKIM private keys per tenant domain, sealed."""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("selector", sa.String(63), nullable=False),
        sa.Column("algorithm", sa.String(20), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("retired_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dkim_keys"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_dkim_keys_tenant_id"),
        sa.UniqueConstraint("domain", "selector", name="uq_dkim_keys_domain"),
    )


def downgrade() -> None:
    op.drop_table("dkim_keys")
