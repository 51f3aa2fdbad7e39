"""Slot placement: putting a booking into the calendar, and what to offer when it does not fit.

``place`` finds the booking's staff member and resource units at a start time: the day's
calendar is read inside the caller's write transaction, the start must be one of the free slots,
then the candidates (the preferred staff member first, then the least loaded) are tried one by
one, each claim of occupancy cells (core/occupancy.py) in a savepoint of its own, so a cell
another booking holds moves on to the next candidate and the database itself refuses an overlap.
``why_not`` tells a start that can never be booked (too soon, closed, outside hours...) from one
that is just busy; ``alternatives`` finds the nearest free starts to a refused one, read after
the write transaction (losers of a race never compute them while holding the write lock).
Used by core/bookings.py (hold, book, confirm, reschedule, add-on) and core/shop_changes.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.availability import Interval, Slot, SlotQuery, candidate_starts, free_slots
from core.config import ShopConfig
from core.db import Database
from core.models import Booking, BookingResource
from core.occupancy import RESOURCE, STAFF, claim
from core.results import NotAllowed, Reason, Taken
from core.schedule import day_span, load_calendar, nearest, slot_query

ALTERNATIVES = 3
ALTERNATIVE_DAYS = (-1, 0, 1, 2, 3, 4, 5, 6, 7)  # around a refused day: the day before, then a week on


@dataclass(frozen=True)
class Wanted:
    """A refused time: the alternatives are looked up after the write transaction ends,
    so that losers of a race do not compute them while holding the write lock."""

    shop_id: str
    service_id: str
    around: datetime
    duration_min: int
    staff: tuple[str, ...]
    exclude_booking: int | None
    reason: str = "slot_taken"


class _NextCandidate(Exception):
    pass


class _ResourceFull(Exception):
    pass


async def place(
    s: AsyncSession,
    shop: ShopConfig,
    booking: Booking,
    start: datetime,
    duration_min: int,
    *,
    staff: list[str],
    staff_pref: str | None,
    now: datetime,
    prefer: str | None = None,
    lead_time: bool = True,
) -> NotAllowed | Wanted | None:
    """Claim staff and resources for ``booking`` at ``start`` (``staff``: who may do the
    service); None when it worked, else why not or the time to offer alternatives around."""
    service_id = booking.service_id
    service = shop.services[service_id]
    day = start.astimezone(shop.tz).date()
    span = day_span(shop, day)
    cal = await load_calendar(s, shop, booking.shop_id, span, now, exclude_booking=booking.id)
    query = slot_query(shop, service_id, day, now, duration_min=duration_min, staff_ids=staff, calendar=cal)
    if not lead_time:
        query = replace(query, lead_time_min=0)
    slot = next((x for x in free_slots(query) if x.start == start), None)
    if slot is None:
        reason = why_not(shop, day, start, staff_pref, now, query)
        if reason is not None:
            return reason
        return Wanted(booking.shop_id, service_id, start, duration_min, tuple(staff), booking.id)
    candidates: list[str | None] = list(slot.staff_ids) if service.staff_required else [None]
    candidates.sort(key=lambda sid: (sid != prefer, cal.staff_load(sid, span) if sid else 0))
    end = start + timedelta(minutes=duration_min)
    buffer = timedelta(minutes=shop.booking.buffer_min)
    for staff_id in candidates:
        try:
            async with s.begin_nested():
                units = await _claim_all(s, shop, booking, staff_id, start, end, buffer)
        except _NextCandidate:
            continue
        except _ResourceFull:
            break
        booking.staff_id = staff_id
        booking.start_at, booking.end_at = start, end
        booking.resources.extend(BookingResource(resource_id=r, unit=u) for r, u in units)
        return None
    return Wanted(booking.shop_id, service_id, start, duration_min, tuple(staff), booking.id)


async def _claim_all(
    s: AsyncSession,
    shop: ShopConfig,
    booking: Booking,
    staff_id: str | None,
    start: datetime,
    end: datetime,
    buffer: timedelta,
) -> list[tuple[str, int]]:
    shop_id, booking_id = booking.shop_id, booking.id
    if staff_id is not None and not await claim(
        s, shop_id=shop_id, kind=STAFF, key=staff_id, unit=0, span=(start, end + buffer), booking_id=booking_id
    ):
        raise _NextCandidate
    units = []
    for resource_id in shop.services[booking.service_id].resources:
        for unit in range(shop.resources[resource_id].capacity):
            if await claim(
                s,
                shop_id=shop_id,
                kind=RESOURCE,
                key=resource_id,
                unit=unit,
                span=(start, end),
                booking_id=booking_id,
            ):
                units.append((resource_id, unit))
                break
        else:
            raise _ResourceFull
    return units


def why_not(
    shop: ShopConfig, day: date, start: datetime, staff_pref: str | None, now: datetime, query: SlotQuery
) -> NotAllowed | None:
    """Why ``start`` can never be booked, or None when it is just busy (then: taken)."""
    rules = shop.booking
    today = now.astimezone(shop.tz).date()
    if start < now + timedelta(minutes=query.lead_time_min) or day < today:
        return NotAllowed(Reason.TOO_SOON, f"book at least {rules.lead_time_min} minutes ahead")
    if day > today + timedelta(days=rules.horizon_days):
        return NotAllowed(Reason.TOO_FAR, f"book at most {rules.horizon_days} days ahead")
    if not shop.hours_on(day):
        return NotAllowed(Reason.CLOSED, f"closed on {day.isoformat()}")
    if start not in candidate_starts(query):
        return NotAllowed(Reason.OUTSIDE_HOURS, "not a bookable start time in opening hours")
    if staff_pref is not None and start not in {x.start for x in free_slots(replace(query, ignore_busy=True))}:
        return NotAllowed(Reason.STAFF_NOT_WORKING, f"'{staff_pref}' is not working then")
    return None


async def alternatives(db: Database, shop: ShopConfig, wanted: Wanted, now: datetime) -> Taken:
    """The nearest free starts to the refused time (a week either way of its day)."""
    today = now.astimezone(shop.tz).date()
    center = wanted.around.astimezone(shop.tz).date()
    last = today + timedelta(days=shop.booking.horizon_days)
    days = sorted({d for k in ALTERNATIVE_DAYS if today <= (d := center + timedelta(days=k)) <= last})
    if not days:
        return Taken((), reason=wanted.reason)
    span = Interval(day_span(shop, days[0]).start, day_span(shop, days[-1]).end)
    async with db.reading() as s:
        cal = await load_calendar(s, shop, wanted.shop_id, span, now, exclude_booking=wanted.exclude_booking)
    found: list[Slot] = []
    for day in days:
        query = slot_query(
            shop,
            wanted.service_id,
            day,
            now,
            duration_min=wanted.duration_min,
            staff_ids=wanted.staff,
            calendar=cal,
        )
        found.extend(free_slots(query))
    return Taken(nearest(found, wanted.around, ALTERNATIVES), reason=wanted.reason)
