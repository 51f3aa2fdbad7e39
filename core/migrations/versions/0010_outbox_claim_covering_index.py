"""outbox: the fair claim's covering index (issue 10)

The delivery loop's fair claim (core/outbox.py ``claim_fair``) ranks every due row by
(channel, shop) and reads its chat: with ``ix_outbox_due`` (status, next_attempt_at) each due
row cost a table lookup (~27 ms a claim with 10,000 due on SQLite). ``ix_outbox_claim`` holds
every column the claim filters and reads, so it is answered from the index alone; it starts with
the same two columns, so it replaces ``ix_outbox_due`` for every other query too.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 21:15:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLAIM_COLUMNS = ["status", "next_attempt_at", "channel", "shop_id", "external_id", "lease_until", "id"]


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_claim", CLAIM_COLUMNS, unique=False)
        batch_op.drop_index("ix_outbox_due")


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.drop_index("ix_outbox_claim")
