"""pet records (weight, vaccinations as rows), visit notes, eye records, the records audit trail (issue 15)

Each pet's ``vaccinated_on`` becomes a "general" vaccination row valid for a year (the rule the
engine applied to it). The column stays, kept in sync by core/vaccinations.py, until the engine
reads the rows instead.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:20:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

from core.models import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MIGRATED_VALID = timedelta(days=365)
_ACTOR_KIND = sa.Enum("customer", "staff", "system", name="actor_kind", native_enum=False, length=16)


def _eye(prefix: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"{prefix}_sphere", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_cylinder", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_axis", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_add", sa.Integer(), nullable=True),
        sa.Column(f"{prefix}_va", sa.String(length=12), nullable=True),
    ]


def upgrade() -> None:
    with op.batch_alter_table("pets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("weight_g", sa.Integer(), nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", _ACTOR_KIND, nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_events_customer", ["shop_id", "customer_id", "at"], unique=False)
    vaccinations = op.create_table(
        "vaccinations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pet_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=12), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pet_id"], ["pets.id"], name=op.f("fk_vaccinations_pet_id_pets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vaccinations")),
    )
    with op.batch_alter_table("vaccinations", schema=None) as batch_op:
        batch_op.create_index("ix_vaccinations_pet_kind", ["pet_id", "kind", "given_on"], unique=False)
    op.create_table(
        "visit_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("pet_id", sa.Integer(), nullable=True),
        sa.Column("service_id", sa.String(length=40), nullable=False),
        sa.Column("visit_on", sa.Date(), nullable=False),
        sa.Column("products", sa.Text(), nullable=False),
        sa.Column("blade", sa.String(length=60), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_visit_notes_booking_id_bookings")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_visit_notes_customer_id_customers")),
        sa.ForeignKeyConstraint(["pet_id"], ["pets.id"], name=op.f("fk_visit_notes_pet_id_pets")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_notes")),
        sa.UniqueConstraint("booking_id", name="uq_visit_notes_booking"),
    )
    with op.batch_alter_table("visit_notes", schema=None) as batch_op:
        batch_op.create_index("ix_visit_notes_customer", ["customer_id", "created_at"], unique=False)
    op.create_table(
        "eye_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("examined_on", sa.Date(), nullable=False),
        sa.Column("patient_name", sa.String(length=100), nullable=False),
        sa.Column("patient_birth_date", sa.Date(), nullable=True),
        *_eye("od"),
        *_eye("os"),
        sa.Column("pd", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["booking_id"], ["bookings.id"], name=op.f("fk_eye_records_booking_id_bookings")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_eye_records_customer_id_customers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eye_records")),
    )
    with op.batch_alter_table("eye_records", schema=None) as batch_op:
        batch_op.create_index("ix_eye_records_customer", ["customer_id", "examined_on"], unique=False)

    # Each pet's remembered vaccination date becomes a row.
    pets = sa.table("pets", sa.column("id", sa.Integer()), sa.column("vaccinated_on", sa.Date()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(pets.c.id, pets.c.vaccinated_on).where(pets.c.vaccinated_on.is_not(None)))
    now = datetime.now(UTC)
    migrated = [
        {
            "pet_id": pet_id,
            "kind": "general",
            "given_on": given,
            "expires_on": given + MIGRATED_VALID,
            "source": "migrated",
            "recorded_by": "",
            "created_at": now,
        }
        for pet_id, given in rows
    ]
    if migrated:
        op.bulk_insert(vaccinations, migrated)


def downgrade() -> None:
    with op.batch_alter_table("eye_records", schema=None) as batch_op:
        batch_op.drop_index("ix_eye_records_customer")
    op.drop_table("eye_records")
    with op.batch_alter_table("visit_notes", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_notes_customer")
    op.drop_table("visit_notes")
    with op.batch_alter_table("vaccinations", schema=None) as batch_op:
        batch_op.drop_index("ix_vaccinations_pet_kind")
    op.drop_table("vaccinations")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_customer")
    op.drop_table("audit_events")
    with op.batch_alter_table("pets", schema=None) as batch_op:
        batch_op.drop_column("weight_g")
