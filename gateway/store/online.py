"""Schema changes that must not stop the mail: used by migrations on tables that may be large.

On PostgreSQL an index is built with CREATE INDEX CONCURRENTLY: inserts and updates go on
while it is built (a plain CREATE INDEX holds a SHARE lock that queues every writer behind
it for the whole build, which on ten million suppression entries is minutes of 451s). It
cannot run inside a transaction, so it runs in Alembic's autocommit block: a migration that
uses it holds nothing else, and each migration commits on its own (transaction_per_migration
in env.py; the cross-node lock in engine.upgrade is a session lock for that reason).

A concurrent build that failed half-way leaves an INVALID index behind that is maintained on
every write but never used; running the migration again drops it and builds it anew.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


def create_index(name: str, table: str, columns: Sequence[str], *,
                 where: str | None = None, unique: bool = False) -> None:
    context = op.get_context()
    predicate = sa.text(where) if where else None
    if context.dialect.name != "postgresql":
        op.create_index(name, table, list(columns), unique=unique, sqlite_where=predicate)
        return
    with context.autocommit_block():
        valid = op.get_bind().execute(sa.text(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": _quoted(name)}).scalar()
        if valid is False:  # left by a build that was interrupted
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {_quoted(name)}")
        op.create_index(name, table, list(columns), unique=unique, if_not_exists=True,
                        postgresql_concurrently=True, postgresql_where=predicate)


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
