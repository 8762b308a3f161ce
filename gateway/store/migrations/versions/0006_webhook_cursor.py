"""Expand: each webhook keeps a cursor into events; the dispatcher makes its outbox rows.

The SMTP path then only appends events; nodes on 0005 still write outbox rows themselves,
which the dispatcher delivers the same way.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("event_cursor", sa.BigInteger, nullable=False,
                                   server_default="0"))
