""" "Vaccination expires soon": a pet whose vaccination on file is valid today but runs out before
a visit already booked (for a service that needs it) within ``vaccinations.expiry_notice_days``
days: the owner is told once per booking, in their latest chat, with a Reschedule button, so the
booster can be done in time instead of the question at the counter.

Once per booking, whoever runs it (the daily run of bot/usecases/recalls.py in every process, a
restart): the booking row is locked and the audit row ``vaccination.expiry_notice`` checked and
written in the sending transaction. Texts: core/locales ``recalls.vaccination_expiring``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

from sqlalchemy import select

from core import audit
from core.clock import Clock
from core.config import ShopConfig
from core.db import Database
from core.i18n import texts
from core.messages import Button, OutgoingMessage
from core.models import ACTIVE_STATUSES, AuditEvent, Booking, Pet
from core.ratings import latest_chat, queue_in_chat
from core.results import Actor
from core.vaccinations import (
    GENERAL_VACCINE,
    VaccinationStatus,
    required_kinds,
    status_of,
    vaccinations_of,
    vaccine_name,
)

EXPIRY_NOTICE = "vaccination.expiry_notice"
ACTOR = Actor.system("vaccination")


async def send_expiry_notices(db: Database, clock: Clock, shop: ShopConfig, shop_id: str) -> tuple[int, ...]:
    """Tell each owner whose pet's vaccination runs out before its booked visit; the bookings told."""
    days = shop.vaccinations.expiry_notice_days
    if days is None or shop.kind != "pet":
        return ()
    now = clock.now()
    today = now.astimezone(shop.tz).date()
    until = datetime.combine(today + timedelta(days=days + 1), time(0), tzinfo=shop.tz)  # whole local days
    async with db.reading() as s:
        rows = list(
            await s.execute(
                select(Booking.id, Booking.pet_id, Booking.service_id, Booking.start_at).where(
                    Booking.shop_id == shop_id,
                    Booking.status.in_(ACTIVE_STATUSES),
                    Booking.start_at > now,
                    Booking.start_at < until,
                    Booking.pet_id.is_not(None),
                    Booking.customer_id.is_not(None),
                )
            )
        )
    rows = [r for r in rows if required_kinds(shop, r.service_id) is not None]
    shots = await vaccinations_of(db, sorted({r.pet_id for r in rows if r.pet_id is not None}))
    told: list[int] = []
    for booking_id, pet_id, service_id, start in rows:
        records = shots.get(pet_id, []) if pet_id is not None else []
        at_visit = status_of(records, shop, service_id, start.astimezone(shop.tz).date())
        runs_out = at_visit.state == "expired" and status_of(records, shop, service_id, today).valid
        if runs_out and not at_visit.kinds:  # any vaccination would do: name the one that runs out
            last = max((r for r in records if r.valid_on(today)), key=lambda r: r.expires_on, default=None)
            at_visit = replace(at_visit, kinds=(last.kind,) if last is not None else ())
        if runs_out and await _tell(db, clock, shop, shop_id, booking_id, at_visit):
            told.append(booking_id)
    return tuple(told)


async def _tell(
    db: Database, clock: Clock, shop: ShopConfig, shop_id: str, booking_id: int, status: VaccinationStatus
) -> bool:
    now = clock.now()
    async with db.transaction() as s:
        booking = await s.scalar(select(Booking).where(Booking.id == booking_id).with_for_update())
        if booking is None or booking.status not in ACTIVE_STATUSES or booking.customer_id is None:
            return False
        done = await s.scalar(
            select(AuditEvent.id).where(
                AuditEvent.shop_id == shop_id, AuditEvent.action == EXPIRY_NOTICE, AuditEvent.subject_id == booking_id
            )
        )
        conversation = await latest_chat(s, shop_id, booking.customer_id) if done is None else None
        pet = await s.get(Pet, booking.pet_id) if conversation is not None else None
        if conversation is None or pet is None or status.expired_on is None:
            return False
        t = texts(conversation.language)
        kinds = status.kinds or (GENERAL_VACCINE,)
        text = t.t(
            "recalls.vaccination_expiring",
            pet=pet.name,
            vaccine=t.join([vaccine_name(shop, k, t.lang) for k in kinds]),
            date=t.format_date(status.expired_on),
            when=t.format_when(booking.start_at, shop.tz),
        )
        message = OutgoingMessage(text, (Button(t.t("btn.reschedule"), f"rr:{booking_id}"),))
        queue_in_chat(
            s, conversation, message, now, author="bot:vaccination", extra={"vaccination_expiring": booking_id}
        )
        audit.record(
            s,
            shop_id=shop_id,
            customer_id=booking.customer_id,
            actor=ACTOR,
            now=now,
            action=EXPIRY_NOTICE,
            subject="booking",
            subject_id=booking_id,
        )
        return True
