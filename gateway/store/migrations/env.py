"""Alembic environment: migrations run on the connection `gateway.store.engine` passes in."""

from alembic import context

from gateway.store.schema import metadata

connection = context.config.attributes["connection"]
# each migration commits on its own: one that builds an index CONCURRENTLY (store/online.py)
# cannot share a transaction with the others
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  transaction_per_migration=True)
with context.begin_transaction():
    context.run_migrations()
