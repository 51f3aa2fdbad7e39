"""Slot placement: putting a booking into the calendar, and what to offer when it does not fit.

``fit`` reads the day's calendar once (inside the caller's write transaction), checks that the
start is free and orders the candidates (the preferred staff member first, then the least
loaded); ``place`` (the ORM path: reschedule, add-on) and ``claim_cells`` (the thin path) then
try them one by one, each claim of occupancy cells (core/occupancy.py) in a savepoint of its
own, so a cell another booking holds moves on to the next candidate and the database itself
refuses an overlap. A claim retried after expired holds are swept reuses the same ``Fit``: the
calendar already leaves lapsed holds out.
``why_not`` tells a start that can never be booked (too soon, closed, outside hours...) from one
that is just busy; ``alternatives`` finds the nearest free starts to a refused one, read after
the write transaction (losers of a race never compute them while holding the write lock).
Used by core/bookings.py (hold, book, confirm, reschedule, add-on); ``Wanted`` also by core/shop_changes.py.

``read_calendar`` is ``core.schedule.load_calendar`` as three prepared Core statements (core/db.py
``Prepared``: one sqlite3 call each inside a unit of work; the ORM reader stays for
bench/availability.py); ``fit`` checks the one start asked for (``availability.slot_at``, not the
whole day); ``claim_cells`` (hold, book, confirm; issue 10) claims a candidate's cells with a
prepared executemany in a savepoint (``UnitOfWork.attempt_many``). The occupancy cells' primary
key still refuses every overlap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.availability import Interval, Slot, SlotQuery, candidate_starts, free_slots, slot_at
from core.config import ShopConfig
from core.db import Database, Prepared, UnitOfWork, prepared_insert
from core.models import ACTIVE_STATUSES, Booking, BookingResource, BookingStatus, Occupancy, TimeOff
from core.occupancy import RESOURCE, STAFF, cells, claim
from core.results import NotAllowed, Reason, Taken
from core.schedule import MAX_BOOKING, Calendar, day_span, nearest, slot_query

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


async def place(s: AsyncSession, shop: ShopConfig, booking: Booking, found: Fit) -> bool:
    """Claim staff and resources for ``booking`` at the start ``fit`` found free: the first
    candidate whose cells are all free (each in a savepoint); False when none could be claimed."""
    buffer = timedelta(minutes=shop.booking.buffer_min)
    for staff_id in found.candidates:
        try:
            async with s.begin_nested():
                units = await _claim_all(s, shop, booking, staff_id, found.start, found.end, buffer)
        except _NextCandidate:
            continue
        except _ResourceFull:
            break
        booking.staff_id = staff_id
        booking.start_at, booking.end_at = found.start, found.end
        booking.resources.extend(BookingResource(resource_id=r, unit=u) for r, u in units)
        return True
    return False


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
    uow = db.current()
    if uow is not None:
        cal = await read_calendar(uow.run, shop, wanted.shop_id, span, now, exclude_booking=wanted.exclude_booking)
    else:
        async with db.reading() as s:
            cal = await read_calendar(
                session_run(s), shop, wanted.shop_id, span, now, exclude_booking=wanted.exclude_booking
            )
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


# ------------------------------------------------------------------------------ the thin path

Run = Callable[[Prepared, dict[str, Any]], Awaitable[list[Any]]]  # UnitOfWork.run, or a session's

_B = cast(Table, Booking.__table__)
_UNITS = cast(Table, BookingResource.__table__)
_OFF = cast(Table, TimeOff.__table__)


def _busy_bookings() -> Any:
    """``load_calendar``'s bookings: active, a hold only until it expires, overlapping the span."""
    return and_(
        _B.c.shop_id == bindparam("c_shop"),
        or_(*(_B.c.status == status for status in ACTIVE_STATUSES)),
        or_(_B.c.status != BookingStatus.HELD, _B.c.hold_expires_at > bindparam("c_now")),
        _B.c.start_at < bindparam("c_hi"),
        _B.c.start_at > bindparam("c_lo_start"),  # the (shop_id, start_at) index scans one day
        _B.c.end_at > bindparam("c_lo"),
        _B.c.id != bindparam("c_exclude"),
    )


_CAL_BOOKINGS = Prepared(select(_B.c.id, _B.c.staff_id, _B.c.start_at, _B.c.end_at).where(_busy_bookings()))
_CAL_UNITS = Prepared(
    select(_UNITS.c.resource_id, _UNITS.c.unit, _B.c.start_at, _B.c.end_at)
    .select_from(_UNITS.join(_B, _UNITS.c.booking_id == _B.c.id))
    .where(_busy_bookings())
)
_CAL_OFF = Prepared(
    select(_OFF.c.staff_id, _OFF.c.start_at, _OFF.c.end_at).where(
        _OFF.c.shop_id == bindparam("c_shop"), _OFF.c.start_at < bindparam("c_hi"), _OFF.c.end_at > bindparam("c_lo")
    )
)
OCCUPANCY_IN = prepared_insert(
    cast(Table, Occupancy.__table__), ("shop_id", "kind", "key", "unit", "cell", "booking_id")
)


def session_run(s: AsyncSession) -> Run:
    """``Run`` on a reading session (outside a unit of work)."""

    async def run(prepared: Prepared, params: dict[str, Any]) -> list[Any]:
        return list((await s.execute(prepared.statement, params)).all())

    return run


async def read_calendar(
    run: Run, shop: ShopConfig, shop_id: str, span: Interval, now: datetime, *, exclude_booking: int | None = None
) -> Calendar:
    """``core.schedule.load_calendar`` (same rows, same Calendar) on prepared statements."""
    pad = timedelta(minutes=shop.booking.buffer_min)
    lo, hi = span.start - pad, span.end + pad
    params = {
        "c_shop": shop_id,
        "c_now": now,
        "c_hi": hi,
        "c_lo": lo,
        "c_lo_start": lo - MAX_BOOKING,
        "c_exclude": -1 if exclude_booking is None else exclude_booking,  # ids are positive
    }
    cal = Calendar()
    for _, staff_id, start, end in await run(_CAL_BOOKINGS, params):
        if staff_id is not None:
            cal.staff_busy[staff_id].append(Interval(start, end))
    if shop.resources:
        for resource_id, unit, start, end in await run(_CAL_UNITS, params):
            cal.resource_busy[resource_id][unit].append(Interval(start, end))
    for staff_id, start, end in await run(_CAL_OFF, params):
        cal.time_off[staff_id].append(Interval(start, end))
    return cal


@dataclass(frozen=True)
class Fit:
    """A start that is free in the calendar: who to try, best first."""

    start: datetime
    end: datetime
    candidates: tuple[str | None, ...]


async def fit(
    run: Run,
    shop: ShopConfig,
    shop_id: str,
    service_id: str,
    start: datetime,
    duration_min: int,
    *,
    staff: list[str],
    staff_pref: str | None,
    now: datetime,
    exclude_booking: int | None,
    prefer: str | None = None,
    lead_time: bool = True,
    calendar: Calendar | None = None,
) -> Fit | NotAllowed | Wanted:
    """``place``'s check, without writing: the free slot at ``start`` and its candidates, or
    why it can never be booked, or the time to offer alternatives around."""
    day = start.astimezone(shop.tz).date()
    span = day_span(shop, day)
    cal = calendar or await read_calendar(run, shop, shop_id, span, now, exclude_booking=exclude_booking)
    query = slot_query(shop, service_id, day, now, duration_min=duration_min, staff_ids=staff, calendar=cal)
    if not lead_time:
        query = replace(query, lead_time_min=0)
    slot = slot_at(query, start)
    if slot is None:
        reason = why_not(shop, day, start, staff_pref, now, query)
        if reason is not None:
            return reason
        return Wanted(shop_id, service_id, start, duration_min, tuple(staff), exclude_booking)
    candidates: list[str | None] = list(slot.staff_ids) if shop.services[service_id].staff_required else [None]
    candidates.sort(key=lambda sid: (sid != prefer, cal.staff_load(sid, span) if sid else 0))
    return Fit(start, start + timedelta(minutes=duration_min), tuple(candidates))


async def claim_cells(
    uow: UnitOfWork, shop: ShopConfig, shop_id: str, service_id: str, booking_id: int, found: Fit
) -> tuple[str | None, list[tuple[str, int]]] | None:
    """Claim the first candidate of ``found`` whose cells are all free (each candidate in a
    savepoint: a refused cell moves on to the next); its staff member and resource units, or
    None when none could be claimed (nothing written then)."""
    buffer = timedelta(minutes=shop.booking.buffer_min)
    resources = shop.services[service_id].resources
    for staff_id in found.candidates:
        try:
            async with uow.savepoint():
                if staff_id is not None:
                    rows = _cells(shop_id, STAFF, staff_id, 0, found.start, found.end + buffer, booking_id)
                    if not await uow.attempt_many(OCCUPANCY_IN, rows):
                        raise _NextCandidate
                units = []
                for resource_id in resources:
                    for unit in range(shop.resources[resource_id].capacity):
                        rows = _cells(shop_id, RESOURCE, resource_id, unit, found.start, found.end, booking_id)
                        if await uow.attempt_many(OCCUPANCY_IN, rows):
                            units.append((resource_id, unit))
                            break
                    else:
                        raise _ResourceFull
        except _NextCandidate:
            continue
        except _ResourceFull:
            return None
        return staff_id, units
    return None


def _cells(
    shop_id: str, kind: str, key: str, unit: int, start: datetime, end: datetime, booking_id: int
) -> list[dict[str, Any]]:
    return [
        {"shop_id": shop_id, "kind": kind, "key": key, "unit": unit, "cell": c, "booking_id": booking_id}
        for c in cells(start, end)
    ]
