"""Expand: the subject (hashed, reply prefixes removed) of each sent copy, so a reply without
In-Reply-To or References finds its thread; and an index on the recipient's suppression
digest to look it up, built online (relaying writes to the table while it builds)."""

import sqlalchemy as sa
from alembic import op

from gateway.store import online

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    op.add_column("sent_messages", sa.Column("subject_hash", sa.String(64), nullable=True))
    online.create_index("ix_sent_messages_suppression_digest", "sent_messages",
                        ["suppression_digest"])


def downgrade() -> None:
    op.drop_index("ix_sent_messages_suppression_digest", table_name="sent_messages")
    op.drop_column("sent_messages", "subject_hash")
