"""pets remember when they were last vaccinated

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("vaccinated_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pets", schema=None) as batch_op:
        batch_op.drop_column("vaccinated_on")
