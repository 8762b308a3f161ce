"""Expand: purpose keys (audit digests, suppression digests, token keys), sealed, versioned."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "purpose_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("purpose", sa.String(60), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("retired_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_purpose_keys"),
        sa.UniqueConstraint("purpose", "version", name="uq_purpose_keys_purpose"),
    )
