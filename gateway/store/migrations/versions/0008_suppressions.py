"""Expand: suppression entries, found by keyed digest (see the `suppression` library)."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("scope", sa.Integer, nullable=False),
        sa.Column("digest", sa.LargeBinary(16), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("target", sa.String(320), nullable=True),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_suppressions"),
        sa.UniqueConstraint("digest", "scope", name="uq_suppressions_digest_scope"),
    )
    op.create_index("ix_suppressions_scope_id", "suppressions", ["scope", "id"])


def downgrade() -> None:
    op.drop_table("suppressions")
