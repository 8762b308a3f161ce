"""Expand: sealed secrets, mailbox credentials (OAuth, password), OAuth clients and flows,
admin API keys, and a random public id for mailboxes (backfilled)."""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "sealed_secrets",
        sa.Column("id", BigId, primary_key=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sealed_secrets"),
        sa.UniqueConstraint("name", name="uq_sealed_secrets_name"),
    )
    op.create_table(
        "mailbox_credentials",
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False, server_default=""),
        sa.Column("oauth_client_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(320), nullable=False),
        sa.Column("scopes", sa.String(2000), nullable=False, server_default=""),
        sa.Column("access_expires_at", Timestamp, nullable=True),
        sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("refresh_lease_until", Timestamp, nullable=True),
        sa.Column("connected_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", name="pk_mailbox_credentials"),
        sa.ForeignKeyConstraint(["mailbox_id"], ["mailboxes.id"],
                                name="fk_mailbox_credentials_mailbox_id_mailboxes"),
    )
    op.create_table(
        "oauth_clients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("public_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("client_id", sa.String(500), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_clients"),
        sa.UniqueConstraint("public_id", name="uq_oauth_clients_public_id"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("prefix", sa.String(40), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=True),
        sa.Column("last_used_at", Timestamp, nullable=True),
        sa.Column("revoked_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("prefix", name="uq_api_keys_prefix"),
    )
    op.create_table(
        "oauth_flows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ticket_hash", sa.String(64), nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("browser_hash", sa.String(64), nullable=True),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("oauth_client_id", sa.Integer, nullable=False),
        sa.Column("sealed_verifier", sa.LargeBinary, nullable=False),
        sa.Column("key_id", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("expires_at", Timestamp, nullable=False),
        sa.Column("used_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_flows"),
        sa.UniqueConstraint("ticket_hash", name="uq_oauth_flows_ticket_hash"),
        sa.UniqueConstraint("state_hash", name="uq_oauth_flows_state_hash"),
    )
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("public_id", sa.String(40), nullable=True))
        batch.create_unique_constraint("uq_mailboxes_public_id", ["public_id"])
    conn = op.get_bind()
    ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM mailboxes"))]
    for mailbox_id in ids:
        conn.execute(sa.text("UPDATE mailboxes SET public_id = :p WHERE id = :i"),
                     {"p": "mbx_" + secrets.token_hex(10), "i": mailbox_id})
