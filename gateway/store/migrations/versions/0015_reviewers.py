"""Expand: reviewer accounts and sessions of the review pages; an index for the review
queue's counts by reason; per-tenant keys (crypto-shredding of a tenant's secrets)."""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reviewers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("username", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("sealed_totp", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", Timestamp, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_login_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reviewers"),
        sa.UniqueConstraint("username", name="uq_reviewers_username"),
    )
    op.create_table(
        "review_sessions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("reviewer_id", sa.Integer, nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_seen_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_review_sessions_token_hash"),
    )
    op.create_index("ix_review_sessions_reviewer_id", "review_sessions", ["reviewer_id"])
    op.create_index("ix_held_messages_status_check", "held_messages",
                    ["status", "check_name"])
    op.create_table(
        "tenant_keys",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("sealed_key", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenant_keys"),
        sa.UniqueConstraint("tenant_id", name="uq_tenant_keys_tenant_id"),
    )


def downgrade() -> None:
    op.drop_table("tenant_keys")
    op.drop_index("ix_held_messages_status_check", "held_messages")
    op.drop_index("ix_review_sessions_reviewer_id", "review_sessions")
    op.drop_table("review_sessions")
    op.drop_table("reviewers")
