"""Campaign breakers (issue 28): a campaign scope's row keeps the campaign's name."""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"


def upgrade() -> None:
    op.add_column("breakers", sa.Column("label", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("breakers") as batch:
        batch.drop_column("label")
