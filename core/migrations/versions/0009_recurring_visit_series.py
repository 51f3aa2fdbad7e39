"""recurring visits: a series of bookings ("every 6 weeks") and its visits (issue 15)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.models import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_series",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("pet_id", sa.Integer(), nullable=True),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("staff_id", sa.String(length=40), nullable=True),
        sa.Column("addons", sa.JSON(), nullable=False),
        sa.Column("every", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("count", sa.Integer(), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("local_time", sa.String(length=5), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_booking_series_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pet_id"], ["pets.id"], name=op.f("fk_booking_series_pet_id_pets"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_series")),
    )
    with op.batch_alter_table("booking_series", schema=None) as batch_op:
        batch_op.create_index("ix_booking_series_customer", ["shop_id", "customer_id"], unique=False)
    op.create_table(
        "series_visits",
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("planned_start", UTCDateTime(timezone=True), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_series_visits_booking_id_bookings")),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["booking_series.id"],
            name=op.f("fk_series_visits_series_id_booking_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("series_id", "seq", name=op.f("pk_series_visits")),
        sa.UniqueConstraint("booking_id", name="uq_series_visits_booking"),
    )


def downgrade() -> None:
    op.drop_table("series_visits")
    with op.batch_alter_table("booking_series", schema=None) as batch_op:
        batch_op.drop_index("ix_booking_series_customer")
    op.drop_table("booking_series")
