"""The database schema (SQLAlchemy 2 typed ORM). Alembic migrations in core/migrations follow it.

Catalog tables (shops, services, add-ons, staff, resources) mirror config.yaml so that bookings
can reference them; config.yaml stays the source of truth and is synced at start.
All timestamps are stored in UTC (see UTCDateTime) and shown in the shop's zone.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend.

    PostgreSQL stores timestamptz; SQLite stores naive UTC text. Naive input is refused, so a
    local time can never slip in unconverted.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; convert to UTC first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class BookingStatus(enum.StrEnum):
    """Lifecycle: held -> pending|confirmed -> completed|no_show|cancelled; held -> expired."""

    HELD = "held"
    PENDING = "pending"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# States whose booking occupies its staff member and resources.
ACTIVE_STATUSES = (BookingStatus.HELD, BookingStatus.PENDING, BookingStatus.CONFIRMED)


class ActorKind(enum.StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    SYSTEM = "system"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Service(Base):
    __tablename__ = "services"

    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    duration_min: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Addon(Base):
    __tablename__ = "addons"

    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    duration_min: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class StaffMember(Base):
    __tablename__ = "staff"

    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Resource(Base):
    __tablename__ = "resources"

    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    capacity: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class TimeOff(Base):
    """A staff member's absence (sick day, training). Weekly shifts live in config.yaml."""

    __tablename__ = "time_off"
    __table_args__ = (
        ForeignKeyConstraint(["shop_id", "staff_id"], ["staff.shop_id", "staff.id"]),
        Index("ix_time_off_staff_start", "shop_id", "staff_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    staff_id: Mapped[str] = mapped_column(String(40))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Customer(Base):
    """One row per person per shop, reachable through one or more channel identities."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    notes: Mapped[str] = mapped_column(Text, default="")
    notices: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # opted in to shop news
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    identities: Mapped[list[ChannelIdentity]] = relationship(back_populates="customer")
    pets: Mapped[list[Pet]] = relationship(back_populates="owner")


class ChannelIdentity(Base):
    """How a customer is reached on one network (Telegram chat id, WeChat openid, widget id)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("shop_id", "channel", "external_id", name="uq_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    customer: Mapped[Customer] = relationship(back_populates="identities")


class Pet(Base):
    __tablename__ = "pets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    species: Mapped[str] = mapped_column(String(20))
    breed: Mapped[str] = mapped_column(String(100), default="")
    size: Mapped[str | None] = mapped_column(String(10), nullable=True)
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    # When the owner last told us (or staff recorded) the pet's vaccinations were done: a
    # booking within a year of it does not ask again.
    vaccinated_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    weight_g: Mapped[int | None] = mapped_column(Integer, nullable=True)  # grams (records, issue 15)

    owner: Mapped[Customer] = relationship(back_populates="pets")


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("shop_id", "code", name="uq_booking_code"),
        ForeignKeyConstraint(["shop_id", "service_id"], ["services.shop_id", "services.id"]),
        ForeignKeyConstraint(["shop_id", "staff_id"], ["staff.shop_id", "staff.id"]),
        Index("ix_bookings_shop_start", "shop_id", "start_at"),
        Index("ix_bookings_status_hold", "status", "hold_expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    code: Mapped[str] = mapped_column(String(12))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True, index=True)
    pet_id: Mapped[int | None] = mapped_column(ForeignKey("pets.id"), nullable=True)
    service_id: Mapped[str] = mapped_column(String(40))
    staff_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[BookingStatus] = mapped_column(_enum(BookingStatus, "booking_status"))
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    price_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    addons: Mapped[list[BookingAddon]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", lazy="selectin"
    )
    resources: Mapped[list[BookingResource]] = relationship(
        back_populates="booking", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def duration_min(self) -> int:
        """Service plus add-ons, in minutes."""
        return int((self.end_at - self.start_at).total_seconds() // 60)


class BookingAddon(Base):
    __tablename__ = "booking_addons"

    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), primary_key=True)
    addon_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    duration_min: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int] = mapped_column(BigInteger)

    booking: Mapped[Booking] = relationship(back_populates="addons")


class BookingResource(Base):
    """Which unit of a shared resource a booking holds (e.g. exam room #0 of 1)."""

    __tablename__ = "booking_resources"

    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), primary_key=True)
    resource_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    unit: Mapped[int] = mapped_column(Integer)

    booking: Mapped[Booking] = relationship(back_populates="resources")


class Occupancy(Base):
    """One row per 5-minute cell a booking occupies: the no-double-booking guarantee.

    See core/occupancy.py. The primary key (shop, kind, key, unit, cell) makes the database
    refuse a second booking in the same cell of the same staff member or resource unit, on
    SQLite and PostgreSQL alike, across any number of server processes.
    """

    __tablename__ = "occupancy"
    __table_args__ = (Index("ix_occupancy_booking", "booking_id"),)

    shop_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(1), primary_key=True)  # "s" staff, "r" resource
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    unit: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))


class BookingEvent(Base):
    """The audit trail: every change to a booking, who made it and what changed."""

    __tablename__ = "booking_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[ActorKind] = mapped_column(_enum(ActorKind, "actor_kind"))
    actor_id: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConversationMode(enum.StrEnum):
    BOT = "bot"  # the engine answers
    HANDOFF = "handoff"  # waiting for staff: the engine stays silent
    STAFF = "staff"  # a staff member took over: the engine stays silent


class Conversation(Base):
    """One chat between a customer and a shop on one channel, with its persisted dialog state."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("shop_id", "channel", "external_id", name="uq_conversation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id"))
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    state: Mapped[str] = mapped_column(String(40), default="idle")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mode: Mapped[ConversationMode] = mapped_column(_enum(ConversationMode, "conversation_mode"))
    handoff_route: Mapped[str | None] = mapped_column(String(40), nullable=True)
    handoff_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    handoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    assigned_to: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lock_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboundMessage(Base):
    """Dedupe record: one row per inbound message id; the reply is kept for redeliveries."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("shop_id", "channel", "message_id", name="uq_inbound"),
        Index("ix_inbound_open", "done", "claimed_by"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    reply: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    # The durable inbox (bot/inbox.py): a channel stores the message here BEFORE acknowledging it.
    conv_key: Mapped[str | None] = mapped_column(String(200), nullable=True)  # shop|channel|user: one chat
    message: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # IncomingMessage + raw payload
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)  # the worker handling it
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TranscriptEntry(Base):
    """Every message in and out of a conversation, for staff and for the customer's history."""

    __tablename__ = "transcript"
    __table_args__ = (Index("ix_transcript_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    direction: Mapped[str] = mapped_column(String(8))  # "in" | "out" | "note" (staff only)
    author: Mapped[str] = mapped_column(String(80), default="")  # customer | bot | staff:<id>
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class OutboxMessage(Base):
    """A message to a customer that is not an inline reply: stored first, then delivered."""

    __tablename__ = "outbox"
    # the delivery loop's fair claim reads only these (core/outbox.py claim_fair; migration 0010)
    __table_args__ = (
        Index("ix_outbox_claim", "status", "next_attempt_at", "channel", "shop_id", "external_id", "lease_until", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(128))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20), default="message")  # message | staff | notice | reminder
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "outbox_status"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # while "sending"
    claimed_by: Mapped[str | None] = mapped_column(String(40), nullable=True)  # which delivery loop
    needs_staff: Mapped[bool] = mapped_column(Boolean, default=False)  # nothing could deliver it: call them
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class UnansweredQuestion(Base):
    """A customer question the FAQ could not answer, for `chatbook faq unanswered`."""

    __tablename__ = "unanswered_questions"
    __table_args__ = (Index("ix_unanswered_shop", "shop_id", "normalized"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(String(500))
    best_entry: Mapped[str | None] = mapped_column(String(80), nullable=True)
    score: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"  # planned, not yet due
    QUEUED = "queued"  # handed to the outbox (which delivers it)
    CANCELLED = "cancelled"  # the booking was cancelled or moved
    SKIPPED = "skipped"  # nobody to send it to, or it could only have been sent late


class Reminder(Base):
    """A planned reminder: the database row is the truth, one per booking, kind and start time."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("booking_id", "kind", "for_start", name="uq_reminder"),
        Index("ix_reminders_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # confirmation | day_before | same_day
    for_start: Mapped[datetime] = mapped_column(UTCDateTime)  # the visit time it was planned for
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[ReminderStatus] = mapped_column(_enum(ReminderStatus, "reminder_status"))
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), nullable=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ShopChange(Base):
    """A booking the shop could not keep (staff off sick, a closed day): the customer was offered
    alternatives and should answer by ``respond_by``; unanswered ones are listed for staff to call."""

    __tablename__ = "shop_changes"
    __table_args__ = (Index("ix_shop_changes_open", "resolved_at", "respond_by"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"), index=True)
    staff_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # who is away
    reason: Mapped[str] = mapped_column(String(200), default="")
    respond_by: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolution: Mapped[str] = mapped_column(String(40), default="")


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"  # a freed slot is held for this customer until the offer expires
    BOOKED = "booked"
    LEFT = "left"


class WaitlistEntry(Base):
    """A customer waiting for a day (and service, optional staff and part of the day) to free up."""

    __tablename__ = "waitlist"
    __table_args__ = (Index("ix_waitlist_day", "shop_id", "day", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    service_id: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)  # the shop's local date
    staff_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    period: Mapped[str | None] = mapped_column(String(10), nullable=True)  # morning | afternoon | evening
    pet_id: Mapped[int | None] = mapped_column(ForeignKey("pets.id"), nullable=True)
    status: Mapped[WaitlistStatus] = mapped_column(_enum(WaitlistStatus, "waitlist_status"))
    offer_booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StaffAccount(Base):
    """A console login: staff see and act on their own shops; admins also edit FAQ files."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(10), default="staff")  # staff | admin
    shops: Mapped[list[str]] = mapped_column(JSON, default=list)
    language: Mapped[str] = mapped_column(String(8), default="zh")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ConsoleSession(Base):
    """A logged-in browser. Only a hash of the cookie's token is stored."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("staff_accounts.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """A failed console login, for throttling (by username and by address)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------------------------------------- reach (issue 14)


class CalendarFeed(Base):
    """A calendar feed's rotation counter: the feed URL's token is derived from it (core/calendar.py).

    ``staff_id`` is "" for the whole shop's feed. Rotating bumps ``generation``, so the old URL 404s.
    """

    __tablename__ = "calendar_feeds"

    shop_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    staff_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ServerSecret(Base):
    """A secret this server generated for itself when the environment gives none (CHATBOOK_SECRET)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WeComCursor(Base):
    """Where ``kf/sync_msg`` stopped for one customer-service account, shared by all processes."""

    __tablename__ = "wecom_cursors"

    shop_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    open_kfid: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(256), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WeComSession(Base):
    """WeCom's reply window for one customer: 48 hours and 5 messages after their last message."""

    __tablename__ = "wecom_sessions"

    shop_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    open_kfid: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_msgid: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the message that opened it
    sent_since_inbound: Mapped[int] = mapped_column(Integer, default=0)
    welcome_code: Mapped[str | None] = mapped_column(String(256), nullable=True)  # enter_session, usable once
    welcome_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # 20 s after the event
    servicer_state: Mapped[int] = mapped_column(Integer, default=1)  # 1 the API (bot) answers; 2 pool; 3 a servicer
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Worker(Base):
    """A server process that takes inbox and outbox rows, with its heartbeat.

    A worker whose heartbeat is stale (or, on its own host, whose pid is gone) is dead: its rows
    are taken over at once instead of waiting for a lease to run out.
    """

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------------------------------------- ratings, reports (15)


class Rating(Base):
    """A customer's 1-5 stars (and optional comment) for one completed visit: one per booking."""

    __tablename__ = "ratings"
    __table_args__ = (
        UniqueConstraint("booking_id", name="uq_ratings_booking"),
        Index("ix_ratings_shop_at", "shop_id", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class FaqAnswer(Base):
    """The FAQ answered a customer's question (for the reports: answered vs. unanswered_questions)."""

    __tablename__ = "faq_answers"
    __table_args__ = (Index("ix_faq_answers_shop_at", "shop_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    entry_id: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------------------------------------- records (issue 15)


class AuditEvent(Base):
    """The audit trail of records (pets, vaccinations, visit notes, eye records, customer export and
    deletion): who, when, what. ``details`` names the fields changed, never their values (health
    and eye data stay in their own rows, which a customer's deletion removes)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_customer", "shop_id", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no FK: outlives a deletion
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[ActorKind] = mapped_column(_enum(ActorKind, "actor_kind"))
    actor_id: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(40))  # e.g. vaccination.added, eye_record.updated
    subject: Mapped[str] = mapped_column(String(20))  # pet | vaccination | visit_note | eye_record | customer
    subject_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Vaccination(Base):
    """One vaccination of a pet: which kind (config ``vaccinations.kinds``; "general" when the owner
    only said "vaccinated"), when it was given and the last day it counts."""

    __tablename__ = "vaccinations"
    __table_args__ = (Index("ix_vaccinations_pet_kind", "pet_id", "kind", "given_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pet_id: Mapped[int] = mapped_column(ForeignKey("pets.id"))
    kind: Mapped[str] = mapped_column(String(40))
    given_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)  # still valid on this day, expired after it
    source: Mapped[str] = mapped_column(String(12), default="staff")  # staff | customer | migrated
    recorded_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitNote(Base):
    """What was used at a completed visit (products, blade length, the groomer's notes): one per booking,
    offered as "same as last time" at the next booking of the same kind."""

    __tablename__ = "visit_notes"
    __table_args__ = (
        UniqueConstraint("booking_id", name="uq_visit_notes_booking"),
        Index("ix_visit_notes_customer", "customer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id"))
    shop_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    pet_id: Mapped[int | None] = mapped_column(ForeignKey("pets.id"), nullable=True)
    service_id: Mapped[str] = mapped_column(String(40))
    visit_on: Mapped[date] = mapped_column(Date)  # the shop's local date of the visit
    products: Mapped[str] = mapped_column(Text, default="")
    blade: Mapped[str] = mapped_column(String(60), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EyeRecord(Base):
    """An eye exam result entered by the optometrist. Powers are stored in hundredths of a dioptre
    (-300 = -3.00), PD in tenths of a millimetre; right eye = od, left eye = os. Personal health
    data: shown only to the shop's staff and the customer, never logged."""

    __tablename__ = "eye_records"
    __table_args__ = (Index("ix_eye_records_customer", "customer_id", "examined_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), nullable=True)
    examined_on: Mapped[date] = mapped_column(Date)
    patient_name: Mapped[str] = mapped_column(String(100), default="")  # "" = the customer; else e.g. their child
    patient_birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    od_sphere: Mapped[int | None] = mapped_column(Integer, nullable=True)
    od_cylinder: Mapped[int | None] = mapped_column(Integer, nullable=True)
    od_axis: Mapped[int | None] = mapped_column(Integer, nullable=True)
    od_add: Mapped[int | None] = mapped_column(Integer, nullable=True)
    od_va: Mapped[str | None] = mapped_column(String(12), nullable=True)
    os_sphere: Mapped[int | None] = mapped_column(Integer, nullable=True)
    os_cylinder: Mapped[int | None] = mapped_column(Integer, nullable=True)
    os_axis: Mapped[int | None] = mapped_column(Integer, nullable=True)
    os_add: Mapped[int | None] = mapped_column(Integer, nullable=True)
    os_va: Mapped[str | None] = mapped_column(String(12), nullable=True)
    pd: Mapped[int | None] = mapped_column(Integer, nullable=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---------------------------------------------------------------------------------------------- recurring visits (15)


class BookingSeries(Base):
    """A recurring visit ("每6周一次", "every month"): the first booking's service, pet, staff and
    local time of day, repeated every ``every`` ``unit`` (week | month | day); ``count`` visits in
    all, or open-ended. Each visit is an ordinary booking (core/series.py books it through the
    booking service) listed in ``series_visits``."""

    __tablename__ = "booking_series"
    __table_args__ = (Index("ix_booking_series_customer", "shop_id", "customer_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(String(40))
    # Deleting the customer (core/privacy.py) deletes their series; the bookings stay, anonymised.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    pet_id: Mapped[int | None] = mapped_column(ForeignKey("pets.id", ondelete="SET NULL"), nullable=True)
    service_id: Mapped[str] = mapped_column(String(40))
    staff_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # preferred, not required
    addons: Mapped[list[str]] = mapped_column(JSON, default=list)
    every: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(8))  # week | month | day
    count: Mapped[int | None] = mapped_column(Integer, nullable=True)  # None: until cancelled
    first_day: Mapped[date] = mapped_column(Date)  # the shop's local date of visit 1
    local_time: Mapped[str] = mapped_column(String(5))  # "HH:MM" in the shop's zone
    status: Mapped[str] = mapped_column(String(12), default="active")  # active | ended | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SeriesVisit(Base):
    """One visit of a series: when it was planned and the booking that serves it (None while it
    waits for the customer's choice: its day was full)."""

    __tablename__ = "series_visits"
    __table_args__ = (UniqueConstraint("booking_id", name="uq_series_visits_booking"),)

    series_id: Mapped[int] = mapped_column(ForeignKey("booking_series.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1 = the first booking
    planned_start: Mapped[datetime] = mapped_column(UTCDateTime)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), nullable=True)
    outcome: Mapped[str] = mapped_column(String(16))  # booked | moved | needs_choice | chosen
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
