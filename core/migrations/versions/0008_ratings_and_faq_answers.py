"""ratings after a visit, FAQ answers counted for the reports (issue 15)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.models import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"  # RECORDS' 0007 (pet and eye records) comes first
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_ratings_booking_id_bookings")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_ratings_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
        sa.UniqueConstraint("booking_id", name="uq_ratings_booking"),
    )
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ratings_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_ratings_shop_at", ["shop_id", "at"], unique=False)
    op.create_table(
        "faq_answers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("entry_id", sa.String(length=80), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_answers")),
    )
    with op.batch_alter_table("faq_answers", schema=None) as batch_op:
        batch_op.create_index("ix_faq_answers_shop_at", ["shop_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("faq_answers", schema=None) as batch_op:
        batch_op.drop_index("ix_faq_answers_shop_at")
    op.drop_table("faq_answers")
    with op.batch_alter_table("ratings", schema=None) as batch_op:
        batch_op.drop_index("ix_ratings_shop_at")
        batch_op.drop_index(batch_op.f("ix_ratings_customer_id"))
    op.drop_table("ratings")
