"""Expand: no recipient address or subject in clear beside the sealed bodies (issue 20).

Events name their recipient sealed under the tenant's key, with a keyed digest (indexed,
built online: export and erasure look a person up by it) and a masked form. Held messages
keep their subject and recipient list sealed under the tenant's key, with a keyed hash of
the normalised subject (review search) and the recipients' digests (export, erasure).
Rows written before this revision still hold the plain values: a starting gateway seals
them and empties the old columns (EventNames.seal_legacy, HeldStore.seal_legacy).

The sent index's subject hash becomes keyed: the unkeyed SHA-256 of a guessable subject is
no protection, so old values are cleared (a reply to mail sent before the upgrade that
dropped In-Reply-To and References is matched by its sender only, as before 0019)."""

import sqlalchemy as sa
from alembic import op

from gateway.store import online

revision = "0020"
down_revision = "0019"


def upgrade() -> None:
    op.add_column("events", sa.Column("recipient_digest", sa.String(64), nullable=True))
    op.add_column("events", sa.Column("recipient_masked", sa.String(320), nullable=True))
    op.add_column("events", sa.Column("sealed_recipient", sa.LargeBinary, nullable=True))
    op.add_column("held_messages", sa.Column("sealed_names", sa.LargeBinary, nullable=True))
    op.add_column("held_messages", sa.Column("subject_hash", sa.String(64), nullable=True))
    op.add_column("held_messages", sa.Column("recipient_digests", sa.JSON, nullable=True))
    op.execute("UPDATE sent_messages SET subject_hash = NULL")
    online.create_index("ix_events_recipient_digest", "events", ["recipient_digest"])


def downgrade() -> None:
    op.drop_index("ix_events_recipient_digest", table_name="events")
    for table, column in (("held_messages", "recipient_digests"),
                          ("held_messages", "subject_hash"), ("held_messages", "sealed_names"),
                          ("events", "sealed_recipient"), ("events", "recipient_masked"),
                          ("events", "recipient_digest")):
        op.drop_column(table, column)
