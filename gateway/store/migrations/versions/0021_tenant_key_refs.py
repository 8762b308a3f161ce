"""Expand: the tenant keys move to a store of their own (issue 21); the database keeps only
which tenants have one, with a fingerprint. A starting gateway moves the keys from
`tenant_keys` to the store and deletes those rows (TenantKeys.adopt_table_keys)."""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"


def upgrade() -> None:
    op.create_table(
        "tenant_key_refs",
        sa.Column("tenant_id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_key_refs"),
    )


def downgrade() -> None:
    op.drop_table("tenant_key_refs")
