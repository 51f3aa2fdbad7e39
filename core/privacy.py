"""Everything we keep about one person: exported as JSON, or deleted (`chatbook customer export|delete`).

Export: the customer, their channel identities, pets and vaccinations, visit notes (theirs and
their pets'), eye records, bookings (with add-ons and their booking events), recurring series
(with each planned visit), waitlist entries, conversations with transcripts, ratings, the staff
alerts about their chats and visits, and the records audit trail about them.

Delete, in one transaction: upcoming bookings are cancelled (their slots freed, reminders
cancelled) and every booking is kept anonymised for the shop's counts (no customer, pet or notes);
pets, vaccinations, visit notes, eye records, series and their planned visits, ratings, waitlist
entries, conversations, transcripts, undelivered and sent messages (staff alerts about them
included), inbox rows and WeCom reply windows of their identities, the identities and the
customer row itself are removed. The audit trail keeps that it happened (who, when, how many
rows), with no personal data. tests/test_privacy_complete.py checks, table by table, that every
row linked to the person is exported and deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit, occupancy, reminders
from core.db import Database, rowcount
from core.models import (
    ACTIVE_STATUSES,
    AuditEvent,
    Booking,
    BookingEvent,
    BookingSeries,
    BookingStatus,
    ChannelIdentity,
    Conversation,
    Customer,
    EyeRecord,
    InboundMessage,
    OutboxMessage,
    Pet,
    Rating,
    Reminder,
    SeriesVisit,
    ShopChange,
    TranscriptEntry,
    UnansweredQuestion,
    Vaccination,
    VisitNote,
    WaitlistEntry,
    WeComSession,
)
from core.results import Actor
from core.staff_alerts import KIND as STAFF_ALERT

EXPORT_VERSION = 1


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, str | int | float | bool):  # enums
        return value.value
    return value


def _row(obj: Any, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every column of an ORM row, JSON-ready."""
    return {c.key: _plain(getattr(obj, c.key)) for c in obj.__table__.columns if c.key not in skip}


async def _messages_to(
    s: AsyncSession, shop_id: str, customer_id: int, conversations: list[int]
) -> list[OutboxMessage]:
    """Messages to the person (sent or not): of their conversations or to any of their identities."""
    to_them: ColumnElement[bool] = OutboxMessage.conversation_id.in_(conversations)
    for channel, external in await s.execute(
        select(ChannelIdentity.channel, ChannelIdentity.external_id).where(ChannelIdentity.customer_id == customer_id)
    ):
        to_them |= (OutboxMessage.channel == channel) & (OutboxMessage.external_id == external)
    query = select(OutboxMessage).where(OutboxMessage.shop_id == shop_id, OutboxMessage.kind != STAFF_ALERT, to_them)
    return list(await s.scalars(query.order_by(OutboxMessage.id)))


async def _staff_alerts(
    s: AsyncSession, shop_id: str, conversations: list[int], bookings: list[int]
) -> list[OutboxMessage]:
    """The shop's staff alerts (core/staff_alerts.py) about these conversations or bookings."""
    rows = await s.scalars(
        select(OutboxMessage).where(OutboxMessage.shop_id == shop_id, OutboxMessage.kind == STAFF_ALERT)
    )
    chats, visits = set(conversations), set(bookings)
    out = []
    for row in rows:
        about = (row.body or {}).get("alert") or {}
        if about.get("conversation") in chats or about.get("booking") in visits:
            out.append(row)
    return out


async def find_customer(db: Database, shop_id: str, who: str) -> int | None:
    """A customer of the shop by id, phone number or channel:external id ("web:abc")."""
    async with db.reading() as s:
        text = who.strip()
        if text.isdigit() and len(text) <= 10:
            found = await s.get(Customer, int(text))
            if found is not None and found.shop_id == shop_id:
                return found.id
        digits = "".join(c for c in text if c.isdigit())
        if len(digits) >= 6:
            for cid, phone in await s.execute(
                select(Customer.id, Customer.phone).where(Customer.shop_id == shop_id, Customer.phone.is_not(None))
            ):
                if "".join(c for c in phone or "" if c.isdigit()) == digits:
                    return int(cid)
        channel, _, external = text.partition(":")
        if external:
            found_id = await s.scalar(
                select(ChannelIdentity.customer_id).where(
                    ChannelIdentity.shop_id == shop_id,
                    ChannelIdentity.channel == channel,
                    ChannelIdentity.external_id == external,
                )
            )
            return int(found_id) if found_id is not None else None
    return None


async def _conversation_ids(s: AsyncSession, customer_id: int) -> list[int]:
    return list(await s.scalars(select(Conversation.id).where(Conversation.customer_id == customer_id)))


async def export_customer(db: Database, shop_id: str, customer_id: int, actor: Actor, now: datetime) -> dict[str, Any]:
    """Everything kept about the customer, as one JSON-ready document (the export is audited)."""
    async with db.reading() as s:
        customer = await s.get(Customer, customer_id)
        if customer is None or customer.shop_id != shop_id:
            raise LookupError(f"no customer {customer_id} at {shop_id}")
        doc: dict[str, Any] = {"export_version": EXPORT_VERSION, "exported_at": now.isoformat(), "shop": shop_id}
        doc["customer"] = _row(customer)
        doc["identities"] = [
            _row(i) for i in await s.scalars(select(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id))
        ]
        pets = list(await s.scalars(select(Pet).where(Pet.customer_id == customer_id).order_by(Pet.id)))
        vaccinations = list(
            await s.scalars(
                select(Vaccination).where(Vaccination.pet_id.in_([p.id for p in pets])).order_by(Vaccination.id)
            )
        )
        doc["pets"] = [{**_row(p), "vaccinations": [_row(v) for v in vaccinations if v.pet_id == p.id]} for p in pets]
        pet_ids = [p.id for p in pets]
        doc["visit_notes"] = [
            _row(n)
            for n in await s.scalars(
                select(VisitNote)
                .where((VisitNote.customer_id == customer_id) | VisitNote.pet_id.in_(pet_ids))
                .order_by(VisitNote.visit_on, VisitNote.id)
            )
        ]
        doc["eye_records"] = [
            _row(r)
            for r in await s.scalars(
                select(EyeRecord).where(EyeRecord.customer_id == customer_id).order_by(EyeRecord.examined_on)
            )
        ]
        bookings = list(
            await s.scalars(select(Booking).where(Booking.customer_id == customer_id).order_by(Booking.start_at))
        )
        events = list(
            await s.scalars(
                select(BookingEvent)
                .where(BookingEvent.booking_id.in_([b.id for b in bookings]))
                .order_by(BookingEvent.id)
            )
        )
        doc["bookings"] = [
            {
                **_row(b),
                "addons": [a.addon_id for a in b.addons],
                "events": [_row(e, skip=("booking_id",)) for e in events if e.booking_id == b.id],
            }
            for b in bookings
        ]
        series = list(
            await s.scalars(
                select(BookingSeries).where(BookingSeries.customer_id == customer_id).order_by(BookingSeries.id)
            )
        )
        planned = list(
            await s.scalars(
                select(SeriesVisit)
                .where(SeriesVisit.series_id.in_([r.id for r in series]))
                .order_by(SeriesVisit.series_id, SeriesVisit.seq)
            )
        )
        doc["series"] = [
            {**_row(r), "visits": [_row(v, skip=("series_id",)) for v in planned if v.series_id == r.id]}
            for r in series
        ]
        doc["waitlist"] = [
            _row(w) for w in await s.scalars(select(WaitlistEntry).where(WaitlistEntry.customer_id == customer_id))
        ]
        conversations = list(
            await s.scalars(
                select(Conversation).where(Conversation.customer_id == customer_id).order_by(Conversation.id)
            )
        )
        entries = list(
            await s.scalars(
                select(TranscriptEntry)
                .where(TranscriptEntry.conversation_id.in_([c.id for c in conversations]))
                .order_by(TranscriptEntry.id)
            )
        )
        doc["conversations"] = [
            {
                **_row(c, skip=("lock_owner", "locked_until", "data")),
                "transcript": [_row(e, skip=("conversation_id",)) for e in entries if e.conversation_id == c.id],
            }
            for c in conversations
        ]
        doc["ratings"] = [
            _row(r)
            for r in await s.scalars(select(Rating).where(Rating.customer_id == customer_id).order_by(Rating.id))
        ]
        doc["messages"] = [
            _row(m, skip=("claimed_by", "lease_until"))
            for m in await _messages_to(s, shop_id, customer_id, [c.id for c in conversations])
        ]
        doc["staff_alerts"] = [
            _row(m, skip=("claimed_by", "lease_until"))
            for m in await _staff_alerts(s, shop_id, [c.id for c in conversations], [b.id for b in bookings])
        ]
        doc["audit_trail"] = [
            _row(a, skip=("shop_id", "customer_id"))
            for a in await s.scalars(
                select(AuditEvent)
                .where(AuditEvent.shop_id == shop_id, AuditEvent.customer_id == customer_id)
                .order_by(AuditEvent.id)
            )
        ]
    async with db.transaction() as s:
        audit.record(
            s,
            shop_id=shop_id,
            customer_id=customer_id,
            actor=actor,
            now=now,
            action="customer.exported",
            subject="customer",
            subject_id=customer_id,
        )
    return doc


@dataclass(frozen=True)
class Deleted:
    """How many rows of each kind went (bookings: kept, anonymised; cancelled: of those, upcoming)."""

    counts: dict[str, int]

    def __str__(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)


async def _cancel_upcoming(s: AsyncSession, bookings: list[Booking], actor: Actor, now: datetime) -> int:
    active = [b for b in bookings if b.status in ACTIVE_STATUSES]
    await occupancy.release(s, [b.id for b in active])
    for b in active:
        previous = b.status.value
        b.status = BookingStatus.CANCELLED
        b.hold_expires_at = None
        b.updated_at = now
        await reminders.cancel(s, b.id, "customer deleted")
        s.add(
            BookingEvent(
                booking_id=b.id,
                at=now,
                actor_kind=actor.kind,
                actor_id=actor.id,
                action="cancelled",
                details={"reason": "customer deleted", "previous": previous},
            )
        )
    return len(active)


async def _delete_conversations(s: AsyncSession, shop_id: str, customer_id: int, counts: dict[str, int]) -> None:
    identities = list(
        (
            await s.execute(
                select(ChannelIdentity.channel, ChannelIdentity.external_id).where(
                    ChannelIdentity.customer_id == customer_id
                )
            )
        ).all()
    )
    conversations = await _conversation_ids(s, customer_id)
    outbox_ids = set(await s.scalars(select(OutboxMessage.id).where(OutboxMessage.conversation_id.in_(conversations))))
    for channel, external in identities:
        outbox_ids |= set(
            await s.scalars(
                select(OutboxMessage.id).where(
                    OutboxMessage.shop_id == shop_id,
                    OutboxMessage.channel == channel,
                    OutboxMessage.external_id == external,
                )
            )
        )
        keys = (f"{shop_id}|{channel}|{external}",)
        counts["inbox_messages"] += rowcount(
            await s.execute(delete(InboundMessage).where(InboundMessage.conv_key.in_(keys)))
        )
        if channel == "wecom":
            await s.execute(
                delete(WeComSession).where(WeComSession.shop_id == shop_id, WeComSession.external_userid == external)
            )
    if outbox_ids:
        await s.execute(update(Reminder).where(Reminder.outbox_id.in_(outbox_ids)).values(outbox_id=None))
        counts["messages"] = rowcount(await s.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))))
    # what they asked that the FAQ could not answer is kept without a link to them: the same words
    # in that shop's list go too
    said = set(
        await s.scalars(
            select(TranscriptEntry.text).where(
                TranscriptEntry.conversation_id.in_(conversations), TranscriptEntry.author == "customer"
            )
        )
    )
    if said:
        counts["unanswered_questions"] = rowcount(
            await s.execute(
                delete(UnansweredQuestion).where(
                    UnansweredQuestion.shop_id == shop_id, UnansweredQuestion.text.in_([t[:500] for t in said])
                )
            )
        )
    counts["transcript_entries"] = rowcount(
        await s.execute(delete(TranscriptEntry).where(TranscriptEntry.conversation_id.in_(conversations)))
    )
    counts["conversations"] = rowcount(await s.execute(delete(Conversation).where(Conversation.id.in_(conversations))))
    counts["identities"] = rowcount(
        await s.execute(delete(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id))
    )


async def delete_customer(db: Database, shop_id: str, customer_id: int, actor: Actor, now: datetime) -> Deleted:
    """Remove everything about the person; bookings stay, anonymised, for the shop's figures."""
    counts: dict[str, int] = {"inbox_messages": 0}
    async with db.transaction() as s:
        customer = await s.get(Customer, customer_id)
        if customer is None or customer.shop_id != shop_id:
            raise LookupError(f"no customer {customer_id} at {shop_id}")
        bookings = list(await s.scalars(select(Booking).where(Booking.customer_id == customer_id).with_for_update()))
        booking_ids = [b.id for b in bookings]
        counts["bookings_cancelled"] = await _cancel_upcoming(s, bookings, actor, now)
        pet_ids = list(await s.scalars(select(Pet.id).where(Pet.customer_id == customer_id)))
        counts["ratings"] = rowcount(await s.execute(delete(Rating).where(Rating.customer_id == customer_id)))
        series_ids = list(await s.scalars(select(BookingSeries.id).where(BookingSeries.customer_id == customer_id)))
        if series_ids:
            await s.execute(delete(SeriesVisit).where(SeriesVisit.series_id.in_(series_ids)))
        counts["series"] = rowcount(await s.execute(delete(BookingSeries).where(BookingSeries.id.in_(series_ids))))
        alerts = await _staff_alerts(s, shop_id, await _conversation_ids(s, customer_id), booking_ids)
        if alerts:
            await s.execute(
                update(Reminder).where(Reminder.outbox_id.in_([a.id for a in alerts])).values(outbox_id=None)
            )
            await s.execute(delete(OutboxMessage).where(OutboxMessage.id.in_([a.id for a in alerts])))
        counts["staff_alerts"] = len(alerts)
        counts["visit_notes"] = rowcount(
            await s.execute(
                delete(VisitNote).where((VisitNote.customer_id == customer_id) | VisitNote.pet_id.in_(pet_ids))
            )
        )
        counts["eye_records"] = rowcount(await s.execute(delete(EyeRecord).where(EyeRecord.customer_id == customer_id)))
        counts["waitlist"] = rowcount(
            await s.execute(delete(WaitlistEntry).where(WaitlistEntry.customer_id == customer_id))
        )
        await s.execute(update(WaitlistEntry).where(WaitlistEntry.pet_id.in_(pet_ids)).values(pet_id=None))
        for b in bookings:  # kept for the shop's counts, with nothing that says who
            b.customer_id = None
            b.pet_id = None
            b.notes = ""
        if booking_ids:
            await s.execute(update(ShopChange).where(ShopChange.booking_id.in_(booking_ids)).values(reason=""))
            for event in await s.scalars(select(BookingEvent).where(BookingEvent.booking_id.in_(booking_ids))):
                reason = (event.details or {}).get("reason")
                if reason and reason != "customer deleted":  # typed text may name the person
                    event.details = {**event.details, "reason": ""}
        await s.flush()
        counts["vaccinations"] = rowcount(await s.execute(delete(Vaccination).where(Vaccination.pet_id.in_(pet_ids))))
        counts["pets"] = rowcount(await s.execute(delete(Pet).where(Pet.customer_id == customer_id)))
        await _delete_conversations(s, shop_id, customer_id, counts)
        await s.execute(delete(Customer).where(Customer.id == customer_id))
        counts["bookings_anonymised"] = len(bookings)
        audit.record(
            s,
            shop_id=shop_id,
            customer_id=customer_id,
            actor=actor,
            now=now,
            action="customer.deleted",
            subject="customer",
            subject_id=customer_id,
            counts=dict(counts),
        )
    return Deleted(counts)
