"""Pet records and visit notes: what staff keep about a pet (birth date, weight, notes) and what was
used at each completed visit (products, blade length, the groomer's notes).

``last_visit_notes`` is the console's "same as last time": the latest notes for the same pet (or
customer) and the same kind of service (its category, e.g. every dog bath, or the service itself).
``last_visit_record`` is the chat's (bot/engine/last_visit.py): the notes of the pet's last
completed visit of that kind, and ``note_on_booking`` carries them onto the new booking's note
for staff when the customer says "same again".
Every change is in the audit trail (core/audit.py); input problems raise RecordError naming the
field. Vaccinations live in core/vaccinations.py, eye exams in core/eye_records.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core.audit import RecordError
from core.clock import Clock
from core.config import ShopConfig
from core.db import Database
from core.i18n import texts
from core.models import ACTIVE_STATUSES, Booking, BookingEvent, BookingStatus, Customer, Pet, VisitNote
from core.results import Actor

SPECIES = ("dog", "cat", "other")
SIZES = ("small", "medium", "large")
MAX_NOTES = 2000
MAX_WEIGHT_KG = 150
OLDEST_PET = timedelta(days=365 * 40)


@dataclass(frozen=True)
class PetRecord:
    id: int
    customer_id: int
    name: str
    species: str
    breed: str
    size: str | None
    birth_date: date | None
    weight_kg: float | None
    notes: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "name": self.name,
            "species": self.species,
            "breed": self.breed,
            "size": self.size,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
            "weight_kg": self.weight_kg,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class VisitNotes:
    booking_id: int
    shop_id: str
    customer_id: int | None
    pet_id: int | None
    service_id: str
    visit_on: date
    products: str
    blade: str
    notes: str
    recorded_by: str
    updated_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "booking_id": self.booking_id,
            "pet_id": self.pet_id,
            "service": self.service_id,
            "visit_on": self.visit_on.isoformat(),
            "products": self.products,
            "blade": self.blade,
            "notes": self.notes,
            "recorded_by": self.recorded_by,
            "updated_at": self.updated_at.isoformat(),
        }


def recorded_by(actor: Actor) -> str:
    """Who entered a record, as kept on its row ("staff:mei")."""
    return f"{actor.kind.value}:{actor.id}"[:128]


@dataclass(frozen=True)
class RecordChange:
    """One change to a customer's records as the audit trail (core/audit.py) keeps it: the shop,
    whose records, who and when; ``note`` adds one row in the change's transaction, its subject
    being the action's first word ("pet.added" -> pet, "eye_record.updated" -> eye_record)."""

    shop_id: str
    customer_id: int | None
    actor: Actor
    now: datetime

    def note(
        self, s: AsyncSession, action: str, subject_id: int | None, fields: Iterable[str] = (), **details: Any
    ) -> None:
        audit.record(
            s,
            shop_id=self.shop_id,
            customer_id=self.customer_id,
            actor=self.actor,
            now=self.now,
            action=action,
            subject=action.split(".", 1)[0],
            subject_id=subject_id,
            fields=fields,
            **details,
        )


# ------------------------------------------------------------------------------------------ vaccination validity

VACCINATION_DEFAULT_YEARS = 1  # a vaccination with no recorded expiry counts this long after it was given


def _years_later(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def _counts_until(item: Any) -> tuple[date, date] | None:
    """(given, last valid day) of a vaccination record or a pet, None when nothing is recorded."""
    given = getattr(item, "given_on", None) or getattr(item, "vaccinated_on", None)
    if not isinstance(given, date):
        return None
    expires = getattr(item, "expires_on", None) or getattr(item, "vaccination_expires_on", None)
    if isinstance(expires, date):
        return given, expires
    return given, _years_later(given, VACCINATION_DEFAULT_YEARS)


def vaccination_valid(pet_or_record: Any, on_date: date) -> bool:
    """Does the vaccination on file count for a visit on ``on_date``?

    ``pet_or_record``: a vaccination record (``given_on`` and ``expires_on``, e.g.
    core/vaccinations.py ``VaccinationView`` or the ``Vaccination`` row), a pet (``vaccinated_on``
    and, when it carries one, ``vaccination_expires_on``, e.g. core/customers.py ``PetView``), a
    sequence of records (any one counting is enough), or None. The recorded expiry wins when there
    is one, shorter or longer than a year; without it a vaccination counts until the same day one
    year after it was given (29 Feb -> 28 Feb). Valid from the day it was given through the last
    day, both included; a vaccination given after ``on_date`` does not count for that visit."""
    if pet_or_record is None:
        return False
    if isinstance(pet_or_record, list | tuple):
        return any(vaccination_valid(item, on_date) for item in pet_or_record)
    span = _counts_until(pet_or_record)
    if span is None:
        return False
    given, last = span
    return given <= on_date <= last


def pet_record(p: Pet) -> PetRecord:
    weight = round(p.weight_g / 1000, 3) if p.weight_g is not None else None
    return PetRecord(p.id, p.customer_id, p.name, p.species, p.breed, p.size, p.birth_date, weight, p.notes)


def _notes_view(n: VisitNote) -> VisitNotes:
    return VisitNotes(
        n.booking_id,
        n.shop_id,
        n.customer_id,
        n.pet_id,
        n.service_id,
        n.visit_on,
        n.products,
        n.blade,
        n.notes,
        n.recorded_by,
        n.updated_at,
    )


# ------------------------------------------------------------------------------------------ input


def text_value(data: Mapping[str, Any], field: str, max_len: int, *, required: bool = False) -> str | None:
    """The text ``data`` has for ``field``, stripped (None when the field is absent); RecordError
    for anything but text, control characters, more than ``max_len`` characters or a missing
    required value."""
    if field not in data:
        if required:
            raise RecordError(field, "is required")
        return None
    value = data[field]
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RecordError(field, "must be text")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise RecordError(field, "control characters are not allowed")
    value = value.strip()
    if required and not value:
        raise RecordError(field, "is required")
    if len(value) > max_len:
        raise RecordError(field, f"at most {max_len} characters")
    return value


def parse_day(value: Any, field: str, *, today: date, oldest: timedelta, allow_future: bool = False) -> date | None:
    """A YYYY-MM-DD date (or empty: None) not in the future and not older than ``oldest``."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) != 10:
        raise RecordError(field, "must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise RecordError(field, "must be a date YYYY-MM-DD") from None
    if not allow_future and day > today:
        raise RecordError(field, "cannot be in the future")
    if day < today - oldest:
        raise RecordError(field, "is too long ago")
    return day


def _weight_g(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError("weight_kg", "must be a number of kilograms")
    try:
        kg = float(value)
    except (TypeError, ValueError):
        raise RecordError("weight_kg", "must be a number of kilograms") from None
    if not math.isfinite(kg) or not 0 < kg <= MAX_WEIGHT_KG:
        raise RecordError("weight_kg", f"must be between 0 and {MAX_WEIGHT_KG} kg")
    return round(kg * 1000)


def parse_pet_fields(data: Mapping[str, Any], *, today: date, creating: bool) -> dict[str, Any]:
    """The pet fields present in ``data``, checked (RecordError names the field at fault)."""
    out: dict[str, Any] = {}
    name = text_value(data, "name", 100, required=creating)
    if name is not None:
        if not name:
            raise RecordError("name", "is required")
        out["name"] = name
    species = text_value(data, "species", 20, required=creating)
    if species is not None:
        if species not in SPECIES:
            raise RecordError("species", f"must be one of {', '.join(SPECIES)}")
        out["species"] = species
    breed = text_value(data, "breed", 100)
    if breed is not None:
        out["breed"] = breed
    if "size" in data:
        size = text_value(data, "size", 10) or None
        if size is not None and size not in SIZES:
            raise RecordError("size", f"must be one of {', '.join(SIZES)} (or empty)")
        out["size"] = size
    if "birth_date" in data:
        out["birth_date"] = parse_day(data["birth_date"], "birth_date", today=today, oldest=OLDEST_PET)
    if "weight_kg" in data:
        out["weight_g"] = _weight_g(data["weight_kg"])
    notes = text_value(data, "notes", MAX_NOTES)
    if notes is not None:
        out["notes"] = notes
    return out


def _audit_fields(fields: Mapping[str, Any]) -> list[str]:
    return ["weight_kg" if k == "weight_g" else k for k in fields]


# ------------------------------------------------------------------------------------------ pets


async def _customer_in_shop(s: AsyncSession, shop_id: str, customer_id: int) -> Customer:
    customer = await s.get(Customer, customer_id)
    if customer is None or customer.shop_id != shop_id:
        raise LookupError(f"no customer {customer_id} at {shop_id}")
    return customer


async def pets_of(db: Database, shop_id: str, customer_id: int) -> list[PetRecord]:
    async with db.reading() as s:
        await _customer_in_shop(s, shop_id, customer_id)
        rows = await s.scalars(select(Pet).where(Pet.customer_id == customer_id).order_by(Pet.id))
        return [pet_record(p) for p in rows]


async def add_pet(
    db: Database, clock: Clock, shop: ShopConfig, shop_id: str, customer_id: int, data: Mapping[str, Any], actor: Actor
) -> PetRecord:
    now = clock.now()
    fields = parse_pet_fields(data, today=now.astimezone(shop.tz).date(), creating=True)
    async with db.transaction() as s:
        await _customer_in_shop(s, shop_id, customer_id)
        pet = Pet(customer_id=customer_id, breed="", notes="", **fields)
        s.add(pet)
        await s.flush()
        RecordChange(shop_id, customer_id, actor, now).note(s, "pet.added", pet.id, _audit_fields(fields))
        return pet_record(pet)


async def update_pet(
    db: Database, clock: Clock, shop: ShopConfig, shop_id: str, pet_id: int, data: Mapping[str, Any], actor: Actor
) -> PetRecord:
    """Change the fields given (only those); LookupError if the pet is not this shop's."""
    now = clock.now()
    fields = parse_pet_fields(data, today=now.astimezone(shop.tz).date(), creating=False)
    async with db.transaction() as s:
        pet = await s.get(Pet, pet_id)
        if pet is None:
            raise LookupError(f"no pet {pet_id}")
        await _customer_in_shop(s, shop_id, pet.customer_id)
        changed = [k for k, v in fields.items() if getattr(pet, k) != v]
        for key in changed:
            setattr(pet, key, fields[key])
        if changed:
            RecordChange(shop_id, pet.customer_id, actor, now).note(
                s, "pet.updated", pet.id, _audit_fields(dict.fromkeys(changed))
            )
        await s.flush()
        return pet_record(pet)


# ------------------------------------------------------------------------------------------ visit notes


def service_kind(shop: ShopConfig, service_id: str) -> str:
    """The kind of service for "same as last time": its category (every dog bath) or itself."""
    service = shop.services.get(service_id)
    return service.category if service is not None and service.category else service_id


def parse_visit_fields(data: Mapping[str, Any]) -> dict[str, str]:
    out = {
        "products": text_value(data, "products", MAX_NOTES) or "",
        "blade": text_value(data, "blade", 60) or "",
        "notes": text_value(data, "notes", MAX_NOTES) or "",
    }
    return out


async def record_visit_notes(
    db: Database, clock: Clock, shop: ShopConfig, shop_id: str, booking_id: int, data: Mapping[str, Any], actor: Actor
) -> VisitNotes:
    """Keep what was used at a completed visit (one set per booking; saving again replaces it).

    LookupError: no such booking at this shop; RecordError("booking", ...) if it is not completed.
    """
    fields = parse_visit_fields(data)
    now = clock.now()
    async with db.transaction() as s:
        # The booking's row lock makes two staff saving at once take turns: the second updates.
        booking = await s.scalar(select(Booking).where(Booking.id == booking_id).with_for_update())
        if booking is None or booking.shop_id != shop_id:
            raise LookupError(f"no booking {booking_id} at {shop_id}")
        if booking.status != BookingStatus.COMPLETED:
            raise RecordError(
                "booking", f"visit notes are kept for completed visits (this one is {booking.status.value})"
            )
        row = await s.scalar(select(VisitNote).where(VisitNote.booking_id == booking_id))
        action = "visit_note.updated"
        if row is None:
            action = "visit_note.added"
            row = VisitNote(
                booking_id=booking_id,
                shop_id=shop_id,
                customer_id=booking.customer_id,
                pet_id=booking.pet_id,
                service_id=booking.service_id,
                visit_on=booking.start_at.astimezone(shop.tz).date(),
                created_at=now,
            )
            s.add(row)
            changed = [k for k, v in fields.items() if v]
        else:
            changed = [k for k, v in fields.items() if getattr(row, k) != v]
        for key, value in fields.items():
            setattr(row, key, value)
        row.recorded_by = recorded_by(actor)
        row.updated_at = now
        await s.flush()
        RecordChange(shop_id, booking.customer_id, actor, now).note(s, action, row.id, changed, booking_id=booking_id)
        return _notes_view(row)


async def visit_notes_for(db: Database, shop_id: str, booking_id: int) -> VisitNotes | None:
    async with db.reading() as s:
        row = await s.scalar(select(VisitNote).where(VisitNote.booking_id == booking_id, VisitNote.shop_id == shop_id))
        return _notes_view(row) if row is not None else None


async def visit_notes_of(db: Database, shop_id: str, customer_id: int, limit: int = 50) -> list[VisitNotes]:
    async with db.reading() as s:
        rows = await s.scalars(
            select(VisitNote)
            .where(VisitNote.shop_id == shop_id, VisitNote.customer_id == customer_id)
            .order_by(VisitNote.visit_on.desc(), VisitNote.id.desc())
            .limit(limit)
        )
        return [_notes_view(r) for r in rows]


async def last_visit_notes(
    db: Database,
    shop: ShopConfig,
    shop_id: str,
    customer_id: int,
    service_id: str,
    *,
    pet_id: int | None = None,
    before: date | None = None,
) -> VisitNotes | None:
    """The latest notes for this customer (this pet, when given) and the same kind of service,
    with something in them; ``before``: only visits before that local date."""
    kind = service_kind(shop, service_id)
    same_kind = [sid for sid in shop.services if service_kind(shop, sid) == kind] or [service_id]
    query = select(VisitNote).where(
        VisitNote.shop_id == shop_id,
        VisitNote.customer_id == customer_id,
        VisitNote.service_id.in_(same_kind),
    )
    if pet_id is not None:
        query = query.where(VisitNote.pet_id == pet_id)
    if before is not None:
        query = query.where(VisitNote.visit_on < before)
    async with db.reading() as s:
        rows = await s.scalars(query.order_by(VisitNote.visit_on.desc(), VisitNote.id.desc()).limit(20))
        for row in rows:
            if row.products or row.blade or row.notes:
                return _notes_view(row)
    return None


async def last_visit_record(
    db: Database,
    shop: ShopConfig,
    shop_id: str,
    customer_id: int,
    pet_id: int,
    service_id: str,
    *,
    before: datetime,
) -> VisitNotes | None:
    """The visit notes of this customer's pet's last completed visit of the same kind of service
    that started before ``before`` (None when there was no such visit, or staff kept no notes at
    it: "last time" is then not what an older visit had)."""
    kind = service_kind(shop, service_id)
    same_kind = [sid for sid in shop.services if service_kind(shop, sid) == kind] or [service_id]
    async with db.reading() as s:
        last = await s.scalar(
            select(Booking.id)
            .where(
                Booking.shop_id == shop_id,
                Booking.customer_id == customer_id,
                Booking.pet_id == pet_id,
                Booking.service_id.in_(same_kind),
                Booking.status == BookingStatus.COMPLETED,
                Booking.start_at < before,
            )
            .order_by(Booking.start_at.desc(), Booking.id.desc())
            .limit(1)
        )
        if last is None:
            return None
        row = await s.scalar(
            select(VisitNote).where(
                VisitNote.booking_id == last, VisitNote.shop_id == shop_id, VisitNote.customer_id == customer_id
            )
        )
        return _notes_view(row) if row is not None else None


async def note_on_booking(
    db: Database, clock: Clock, shop_id: str, booking_id: int, customer_id: int, text: str, actor: Actor
) -> bool:
    """Add ``text`` to the note staff see on an active booking of this customer (on a line of its
    own; the same text twice is kept once), recorded in the booking's events as ``noted``.
    False when the booking is not this customer's active booking at this shop."""
    text = text.strip()[:MAX_NOTES]
    now = clock.now()
    async with db.transaction() as s:
        booking = await s.scalar(select(Booking).where(Booking.id == booking_id).with_for_update())
        if (
            booking is None
            or booking.shop_id != shop_id
            or booking.customer_id != customer_id
            or booking.status not in ACTIVE_STATUSES
        ):
            return False
        if not text or text in booking.notes.splitlines():
            return True
        booking.notes = f"{booking.notes}\n{text}" if booking.notes else text
        booking.updated_at = now
        s.add(
            BookingEvent(
                booking_id=booking.id,
                at=now,
                actor_kind=actor.kind,
                actor_id=actor.id,
                action="noted",
                details={"source": "same_as_last"},
            )
        )
        return True


def same_as_last_text(notes: VisitNotes, pet_name: str, lang: str) -> str | None:
    """ "Last time {pet} had: products ...; blade ... Same again this time?" (None when there is
    nothing a customer would recognise: the groomer's notes are for staff)."""
    catalog = texts(lang)
    details = [catalog.t("visit.products", text=notes.products)] if notes.products else []
    if notes.blade:
        details.append(catalog.t("visit.blade", text=notes.blade))
    if not details:
        return None
    return catalog.t("visit.same_as_last", pet=pet_name, details=catalog.t("visit.detail_sep").join(details))
