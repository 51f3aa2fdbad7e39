"""Customers' records for the console (bot/console/records_api.py): the reads and the few steps
the adapter used to write as queries itself (issue 13: adapters hold no SQL).

- ``shop_of``: the shop a customer, pet, vaccination, booking, eye record or series belongs to
  (the adapter's per-shop check), None when there is none.
- ``find_customers``: a shop's customers by name or phone digits, with how many pets each has.
- ``recent_bookings``: a customer's last bookings as the customer page lists them.
- ``visit_facts`` / ``eye_record_owner``: the few facts of a booking or an exam a route needs.
- ``complete_visit``: a visit marked completed (if it is not yet) and its notes kept.
- ``send_eye_summary``: the exam in plain words to the customer's latest chat, audited.

Record rules (checks, audit, eye values) stay in core/records.py, core/vaccinations.py and
core/eye_records.py; nothing here logs a record's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, or_, select

from core import eye_records, records
from core.config import AppConfig
from core.db import Database
from core.messages import OutgoingMessage
from core.models import Booking, BookingSeries, BookingStatus, Customer, EyeRecord, Pet, Vaccination
from core.records import RecordChange
from core.results import Actor, NotAllowed

if TYPE_CHECKING:
    from bot.bootstrap import Services

Owned = Literal["customer", "pet", "vaccination", "booking", "eye_record", "series"]
MAX_RESULTS = 50
RECENT_BOOKINGS = 30


async def shop_of(db: Database, kind: Owned, object_id: int) -> str | None:
    """The shop this object belongs to, or None when there is no such object."""
    async with db.reading() as s:
        if kind == "customer":
            query = select(Customer.shop_id).where(Customer.id == object_id)
        elif kind == "pet":
            query = select(Customer.shop_id).join(Pet, Pet.customer_id == Customer.id).where(Pet.id == object_id)
        elif kind == "vaccination":
            query = (
                select(Customer.shop_id)
                .join(Pet, Pet.customer_id == Customer.id)
                .join(Vaccination, Vaccination.pet_id == Pet.id)
                .where(Vaccination.id == object_id)
            )
        elif kind == "booking":
            query = select(Booking.shop_id).where(Booking.id == object_id)
        elif kind == "eye_record":
            query = select(EyeRecord.shop_id).where(EyeRecord.id == object_id)
        else:
            query = select(BookingSeries.shop_id).where(BookingSeries.id == object_id)
        found = await s.scalar(query)
    return str(found) if found is not None else None


@dataclass(frozen=True)
class CustomerHit:
    id: int
    name: str
    phone: str | None  # in full: the adapter masks it
    pets: int


async def find_customers(db: Database, shop_id: str, q: str | None, *, limit: int = MAX_RESULTS) -> list[CustomerHit]:
    """The shop's customers whose name contains ``q`` (or whose phone has its 3+ digits), newest first."""
    query = select(Customer).where(Customer.shop_id == shop_id)
    if q:
        digits = "".join(c for c in q if c.isdigit())
        like = f"%{q.replace('%', '').replace('_', '')}%"
        match = [Customer.display_name.ilike(like)]
        if len(digits) >= 3:
            match.append(Customer.phone.like(f"%{digits}%"))
        query = query.where(or_(*match))
    async with db.reading() as s:
        rows = list(await s.scalars(query.order_by(Customer.id.desc()).limit(limit)))
        counted = await s.execute(
            select(Pet.customer_id, func.count())
            .where(Pet.customer_id.in_([c.id for c in rows]))
            .group_by(Pet.customer_id)
        )
        pets: Mapping[int, int] = {int(cid): int(n) for cid, n in counted}
    return [CustomerHit(c.id, c.display_name, c.phone, int(pets.get(c.id, 0))) for c in rows]


async def recent_bookings(db: Database, config: AppConfig, customer_id: int) -> list[dict[str, Any]]:
    """The customer's last bookings (not expired holds), newest first, times in the shop's zone."""
    async with db.reading() as s:
        rows = list(
            await s.scalars(
                select(Booking)
                .where(Booking.customer_id == customer_id, Booking.status != BookingStatus.EXPIRED)
                .order_by(Booking.start_at.desc())
                .limit(RECENT_BOOKINGS)
            )
        )
    out = []
    for b in rows:
        shop = config.shops.get(b.shop_id)
        tz = shop.tz if shop else None
        out.append(
            {
                "id": b.id,
                "code": b.code,
                "service": b.service_id,
                "service_name": shop.services[b.service_id].name.model_dump()
                if shop and b.service_id in shop.services
                else None,
                "start": b.start_at.astimezone(tz).isoformat() if tz else b.start_at.isoformat(),
                "status": b.status.value,
                "pet_id": b.pet_id,
                "notes": b.notes,  # for staff; the console writes it as text
            }
        )
    return out


@dataclass(frozen=True)
class VisitFacts:
    id: int
    shop_id: str
    status: BookingStatus
    customer_id: int | None
    service_id: str
    pet_id: int | None
    start: datetime


async def visit_facts(db: Database, booking_id: int) -> VisitFacts | None:
    async with db.reading() as s:
        b = await s.get(Booking, booking_id)
        if b is None:
            return None
        return VisitFacts(b.id, b.shop_id, b.status, b.customer_id, b.service_id, b.pet_id, b.start_at)


async def complete_visit(
    services: Services, shop_id: str, booking_id: int, data: Mapping[str, Any], actor: Actor
) -> records.VisitNotes | NotAllowed:
    """Mark the visit completed (unless it is already) and keep what was used; NotAllowed when the
    booking cannot be completed. RecordError (a bad field) is raised before anything changes."""
    shop = services.config.shops[shop_id]
    records.parse_visit_fields(data)
    facts = await visit_facts(services.db, booking_id)
    if facts is None or facts.shop_id != shop_id:
        raise LookupError(f"no booking {booking_id} at {shop_id}")
    if facts.status != BookingStatus.COMPLETED:
        result = await services.bookings.mark_attendance(shop_id, booking_id, "completed", actor)
        if isinstance(result, NotAllowed):
            return result
    notes = await records.record_visit_notes(services.db, services.clock, shop, shop_id, booking_id, data, actor)
    await services.events.publish({"type": "booking", "shop": shop_id})
    return notes


async def eye_record_owner(db: Database, record_id: int) -> int | None:
    """The customer an exam belongs to."""
    async with db.reading() as s:
        found = await s.scalar(select(EyeRecord.customer_id).where(EyeRecord.id == record_id))
    return int(found) if found is not None else None


async def send_eye_summary(services: Services, shop_id: str, record_id: int, actor: Actor) -> int | None:
    """The exam in plain words (with its recall month) to the customer's latest chat in their
    language, and ``eye_record.sent`` in the audit trail; the outbox id, None when the customer
    has no chat with us (LookupError: no such exam at this shop)."""
    shop = services.config.shops[shop_id]
    customer_id = await eye_record_owner(services.db, record_id)
    if customer_id is None:
        raise LookupError(f"no eye record {record_id}")
    exams = await eye_records.eye_records_of(services.db, shop_id, customer_id)
    record = next((r for r in exams if r.id == record_id), None)
    if record is None:
        raise LookupError(f"no eye record {record_id} at {shop_id}")
    conv = await services.store.latest_conversation(shop_id, customer_id)
    if conv is None:
        return None
    recall = eye_records.recall_for(shop, record, eye_records.previous_of(exams, record))
    text = eye_records.eye_summary(record, conv.language, recall_on=recall)
    outbox_id = await services.store.enqueue(conv, OutgoingMessage(text), author=records.recorded_by(actor))
    async with services.db.transaction() as s:
        RecordChange(shop_id, customer_id, actor, services.clock.now()).note(s, "eye_record.sent", record_id)
    return outbox_id
