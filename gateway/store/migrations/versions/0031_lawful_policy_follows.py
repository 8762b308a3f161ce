"""Each lawful-basis version names the one it follows, once: two nodes publishing at the
same moment (both on a first start) cannot both make a version after the same one."""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"


def upgrade() -> None:
    op.add_column("lawful_policies", sa.Column("follows", sa.Integer, nullable=True))
    op.execute("UPDATE lawful_policies SET follows = version - 1")
    op.create_index("ux_lawful_policies_follows", "lawful_policies", ["follows"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_lawful_policies_follows", "lawful_policies")
    with op.batch_alter_table("lawful_policies") as batch:
        batch.drop_column("follows")
