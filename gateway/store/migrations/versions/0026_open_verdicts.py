"""Each open's verdict, human | machine | bot (issue 29): no personal field, a word about the
fetch. Older rows keep NULL (their `machine` column says what was known then)."""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"


def upgrade() -> None:
    op.add_column("opens", sa.Column("verdict", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("opens") as batch:
        batch.drop_column("verdict")
