"""The suppressions table. The application that embeds this library creates it with its own
migrations (the gateway's 0008); this definition is what the queries are written against.

Times are unix seconds (integers): the bulk and lookup paths speak to the drivers directly,
and an integer reads the same in SQLite, PostgreSQL and Python.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("scope", sa.Integer, nullable=False),  # 0 = global, else a tenant id
    sa.Column("digest", sa.LargeBinary(16), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),  # address | domain | subdomains
    sa.Column("target", sa.String(320), nullable=True),  # NULL: erasure, digest only
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("note", sa.String(500), nullable=False, server_default=""),
    sa.Column("created_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("digest", "scope", name="uq_suppressions_digest_scope"),
    sa.Index("ix_suppressions_scope_id", "scope", "id"),
    # only the entries that expire (few): the purge finds them without a full scan
    sa.Index("ix_suppressions_expires_at", "expires_at",
             sqlite_where=sa.text("expires_at IS NOT NULL"),
             postgresql_where=sa.text("expires_at IS NOT NULL")),
)

COLUMNS = ("scope", "digest", "kind", "target", "reason", "source", "created_at", "expires_at",
           "note", "created_by", "updated_at")
