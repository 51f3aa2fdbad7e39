"""calendar feeds, server secrets, WeCom cursors and reply windows (issue 14)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.models import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("staff_id", sa.String(length=40), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("rotated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shop_id", "staff_id", name=op.f("pk_calendar_feeds")),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    op.create_table(
        "wecom_cursors",
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("open_kfid", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.String(length=256), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shop_id", "open_kfid", name=op.f("pk_wecom_cursors")),
    )
    op.create_table(
        "wecom_sessions",
        sa.Column("shop_id", sa.String(length=40), nullable=False),
        sa.Column("open_kfid", sa.String(length=64), nullable=False),
        sa.Column("external_userid", sa.String(length=128), nullable=False),
        sa.Column("last_inbound_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_msgid", sa.String(length=128), nullable=True),
        sa.Column("sent_since_inbound", sa.Integer(), nullable=False),
        sa.Column("welcome_code", sa.String(length=256), nullable=True),
        sa.Column("welcome_until", UTCDateTime(timezone=True), nullable=True),
        sa.Column("servicer_state", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("shop_id", "open_kfid", "external_userid", name=op.f("pk_wecom_sessions")),
    )


def downgrade() -> None:
    op.drop_table("wecom_sessions")
    op.drop_table("wecom_cursors")
    op.drop_table("server_secrets")
    op.drop_table("calendar_feeds")
