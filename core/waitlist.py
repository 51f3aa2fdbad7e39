"""The waitlist: when a day is full, customers wait for it; a freed slot goes to one of them.

One customer at a time per (service, day), first come first served: the freed slot is held for
them (a normal hold, so nobody else can take it meanwhile) for ``waitlist_offer_min`` minutes,
and accepting is confirming that hold, which is atomic: two accepts can never both win. An
offer that runs out moves on to the next customer (the one who let it lapse goes to the back
of the queue). Freed slots are found by a periodic match (cancellations, reschedules, expired
holds and added shifts all show up the same way: as free slots).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update

from core import reminders
from core.bookings import BookingRequest, BookingService
from core.clock import Clock
from core.config import AppConfig
from core.db import Database, rowcount
from core.models import Booking, BookingStatus, WaitlistEntry, WaitlistStatus
from core.results import Actor, Booked, BookingResult, NotAllowed, Reason
from core.when import period_of

SYSTEM = Actor.system("waitlist")


@dataclass(frozen=True)
class Offer:
    entry_id: int
    booking_id: int
    customer_id: int


class Waitlist:
    def __init__(self, db: Database, config: AppConfig, clock: Clock, bookings: BookingService) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.bookings = bookings

    async def join(
        self,
        shop_id: str,
        customer_id: int,
        service_id: str,
        day: date,
        *,
        staff_id: str | None = None,
        period: str | None = None,
        pet_id: int | None = None,
    ) -> int:
        """Put the customer on the list (joining twice for the same thing keeps one entry)."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            existing = await s.scalar(
                select(WaitlistEntry.id).where(
                    WaitlistEntry.shop_id == shop_id,
                    WaitlistEntry.customer_id == customer_id,
                    WaitlistEntry.service_id == service_id,
                    WaitlistEntry.day == day,
                    WaitlistEntry.status.in_((WaitlistStatus.WAITING, WaitlistStatus.OFFERED)),
                )
            )
            if existing is not None:
                return int(existing)
            entry = WaitlistEntry(
                shop_id=shop_id,
                customer_id=customer_id,
                service_id=service_id,
                day=day,
                staff_id=staff_id,
                period=period,
                pet_id=pet_id,
                status=WaitlistStatus.WAITING,
                created_at=now,
                updated_at=now,
            )
            s.add(entry)
            await s.flush()
            return entry.id

    async def leave(self, shop_id: str, customer_id: int) -> int:
        """Take the customer off every list; returns how many entries were left."""
        async with self.db.transaction() as s:
            result = await s.execute(
                update(WaitlistEntry)
                .where(
                    WaitlistEntry.shop_id == shop_id,
                    WaitlistEntry.customer_id == customer_id,
                    WaitlistEntry.status == WaitlistStatus.WAITING,
                )
                .values(status=WaitlistStatus.LEFT, updated_at=self.clock.now())
                .execution_options(synchronize_session=False)
            )
            return rowcount(result)

    async def tick(self) -> list[Offer]:
        """Move lapsed offers on and offer freed slots; returns the offers made."""
        await self._lapse_offers()
        offers: list[Offer] = []
        for shop_id in self.config.shops:
            offers.extend(await self._offer_freed(shop_id))
        return offers

    async def _lapse_offers(self) -> None:
        now = self.clock.now()
        async with self.db.transaction() as s:
            await s.execute(
                update(WaitlistEntry)
                .where(WaitlistEntry.status == WaitlistStatus.OFFERED, WaitlistEntry.offer_expires_at <= now)
                .values(
                    status=WaitlistStatus.WAITING,
                    offer_booking_id=None,
                    offer_expires_at=None,
                    created_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )

    async def _offer_freed(self, shop_id: str) -> list[Offer]:
        shop = self.config.shops[shop_id]
        today = self.clock.now().astimezone(shop.tz).date()
        async with self.db.reading() as s:
            waiting = list(
                await s.scalars(
                    select(WaitlistEntry)
                    .where(
                        WaitlistEntry.shop_id == shop_id,
                        WaitlistEntry.status.in_((WaitlistStatus.WAITING, WaitlistStatus.OFFERED)),
                        WaitlistEntry.day >= today,
                    )
                    .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
                )
            )
        busy = {(e.service_id, e.day) for e in waiting if e.status == WaitlistStatus.OFFERED}
        offers = []
        for entry in waiting:
            key = (entry.service_id, entry.day)
            if entry.status != WaitlistStatus.WAITING or key in busy:
                continue
            offer = await self._try_offer(entry)
            if offer is not None:
                busy.add(key)
                offers.append(offer)
        return offers

    async def _try_offer(self, entry: WaitlistEntry) -> Offer | None:
        shop = self.config.shops[entry.shop_id]
        slots = await self.bookings.free_slots(entry.shop_id, entry.service_id, entry.day, staff_id=entry.staff_id)
        if entry.period:
            slots = [x for x in slots if period_of(x.start.astimezone(shop.tz).time()) == entry.period]
        if not slots:
            return None
        now = self.clock.now()
        async with self.db.transaction() as s:  # claim the entry first: one offer per entry, ever
            claimed = await s.execute(
                update(WaitlistEntry)
                .where(WaitlistEntry.id == entry.id, WaitlistEntry.status == WaitlistStatus.WAITING)
                .values(status=WaitlistStatus.OFFERED, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if not rowcount(claimed):
                return None
        request = BookingRequest(
            entry.shop_id,
            entry.service_id,
            slots[0].start,
            staff_id=entry.staff_id,
            customer_id=entry.customer_id,
            pet_id=entry.pet_id,
        )
        held = await self.bookings.hold(request, SYSTEM, minutes=shop.booking.waitlist_offer_min)
        async with self.db.transaction() as s:
            if not isinstance(held, Booked):
                await s.execute(
                    update(WaitlistEntry)
                    .where(WaitlistEntry.id == entry.id)
                    .values(status=WaitlistStatus.WAITING)
                    .execution_options(synchronize_session=False)
                )
                return None
            await s.execute(
                update(WaitlistEntry)
                .where(WaitlistEntry.id == entry.id)
                .values(offer_booking_id=held.booking.id, offer_expires_at=held.booking.hold_expires_at)
                .execution_options(synchronize_session=False)
            )
            booking = await s.get(Booking, held.booking.id)
            assert booking is not None
            await reminders.notify(s, booking, "waitlist_offer", now)
        return Offer(entry.id, held.booking.id, entry.customer_id)

    async def accept(self, shop_id: str, booking_id: int, customer_id: int) -> BookingResult:
        """Take the offered slot: confirming the hold (atomic; a lapsed offer may be gone)."""
        entry = await self._entry_for(shop_id, booking_id, customer_id)
        if entry is None:
            return NotAllowed(Reason.NOT_FOUND, "no such offer")
        result = await self.bookings.confirm(shop_id, booking_id, Actor.customer(customer_id))
        if isinstance(result, Booked):
            await self._set(entry.id, WaitlistStatus.BOOKED)
        return result

    async def decline(self, shop_id: str, booking_id: int, customer_id: int) -> None:
        """No thanks: release the held slot (the next customer gets it) and leave the list."""
        entry = await self._entry_for(shop_id, booking_id, customer_id)
        if entry is None:
            return
        booking = await self.bookings.get(shop_id, booking_id)
        if booking is not None and booking.status == BookingStatus.HELD:
            await self.bookings.cancel(
                shop_id, booking_id, Actor.customer(customer_id), reason="waitlist offer declined"
            )
        await self._set(entry.id, WaitlistStatus.LEFT)

    async def _entry_for(self, shop_id: str, booking_id: int, customer_id: int) -> WaitlistEntry | None:
        async with self.db.reading() as s:
            return await s.scalar(
                select(WaitlistEntry).where(
                    WaitlistEntry.shop_id == shop_id,
                    WaitlistEntry.offer_booking_id == booking_id,
                    WaitlistEntry.customer_id == customer_id,
                )
            )

    async def _set(self, entry_id: int, status: WaitlistStatus) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(WaitlistEntry)
                .where(WaitlistEntry.id == entry_id)
                .values(status=status, updated_at=self.clock.now())
                .execution_options(synchronize_session=False)
            )


__all__ = ["Offer", "Waitlist"]
