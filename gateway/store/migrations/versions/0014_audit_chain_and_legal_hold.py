"""Expand: tamper evidence for the audit trail (hash chains, anchors, checkpoints), and
the operator's legal hold on a tenant.

Rows written before this migration carry no hash; `gateway audit verify` counts them apart.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"

Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("legal_hold_since", Timestamp, nullable=True))
        batch.add_column(sa.Column("legal_hold_reason", sa.String(500), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain", sa.String(60), nullable=True))
        batch.add_column(sa.Column("batch_seq", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("row_hash", sa.String(64), nullable=True))
    op.create_table(
        "audit_chains",
        sa.Column("chain", sa.String(60), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("chain", name="pk_audit_chains"),
    )
    op.create_table(
        "audit_batches",
        sa.Column("id", BigId, nullable=False),
        sa.Column("chain", sa.String(60), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("prev_head", sa.String(64), nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("row_count", sa.Integer, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_batches"),
        sa.UniqueConstraint("chain", "seq", name="uq_audit_batches_chain_seq"),
    )
    op.create_index("ix_audit_batches_at", "audit_batches", ["at"])
    op.create_table(
        "audit_anchors",
        sa.Column("id", BigId, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("heads", sa.JSON, nullable=False),
        sa.Column("prev_mac", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_anchors"),
        sa.UniqueConstraint("prev_mac", name="uq_audit_anchors_prev_mac"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("heads", sa.JSON, nullable=False),
        sa.Column("anchor_mac", sa.String(64), nullable=False),
        sa.Column("rows_pruned", sa.BigInteger, nullable=False),
        sa.Column("prev_mac", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_anchors")
    op.drop_index("ix_audit_batches_at", "audit_batches")
    op.drop_table("audit_batches")
    op.drop_table("audit_chains")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_column("row_hash")
        batch.drop_column("batch_seq")
        batch.drop_column("chain")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("legal_hold_reason")
        batch.drop_column("legal_hold_since")
