"""Reads what is already booked and turns a shop's day into an availability query.

The bridge between storage and the pure ``core.availability`` pipeline: loads bookings
(active ones; a hold counts until it expires), resource units and time off around a span,
and builds the SlotQuery for a service on a local date.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.availability import (
    Interval,
    ResourceAvailability,
    Slot,
    SlotQuery,
    StaffAvailability,
    to_utc,
)
from core.config import WEEKDAYS, ShopConfig
from core.models import ACTIVE_STATUSES, Booking, BookingResource, BookingStatus, TimeOff

MAX_BOOKING = timedelta(hours=24)  # longer than any service plus add-ons (config caps at 12 h)


@dataclass
class Calendar:
    """Busy time around a span, keyed the way availability needs it."""

    staff_busy: dict[str, list[Interval]] = field(default_factory=lambda: defaultdict(list))
    resource_busy: dict[str, dict[int, list[Interval]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    time_off: dict[str, list[Interval]] = field(default_factory=lambda: defaultdict(list))

    def staff_load(self, staff_id: str, span: Interval) -> int:
        return sum(1 for b in self.staff_busy.get(staff_id, ()) if b.overlaps(span))


def day_span(shop: ShopConfig, day: date) -> Interval:
    """The UTC instants of a whole local day (23 or 25 hours long on DST days)."""
    return Interval(to_utc(day, 0, shop.tz), to_utc(day, 24 * 60, shop.tz))


async def load_calendar(
    session: AsyncSession,
    shop: ShopConfig,
    shop_id: str,
    span: Interval,
    now: datetime,
    *,
    exclude_booking: int | None = None,
) -> Calendar:
    """Active bookings, resource units and time off overlapping ``span`` (widened by the buffer)."""
    pad = timedelta(minutes=shop.booking.buffer_min)
    lo, hi = span.start - pad, span.end + pad
    live = or_(Booking.status != BookingStatus.HELD, Booking.hold_expires_at > now)
    query = (
        select(Booking.id, Booking.staff_id, Booking.start_at, Booking.end_at)
        .where(
            Booking.shop_id == shop_id,
            Booking.status.in_(ACTIVE_STATUSES),
            live,
            Booking.start_at < hi,
            # A lower bound on start_at too, so the (shop_id, start_at) index scans one day,
            # not the whole booking history (no booking is longer than MAX_BOOKING).
            Booking.start_at > lo - MAX_BOOKING,
            Booking.end_at > lo,
        )
        .order_by(Booking.start_at)
    )
    if exclude_booking is not None:
        query = query.where(Booking.id != exclude_booking)
    cal = Calendar()
    spans: dict[int, Interval] = {}
    for booking_id, staff_id, start, end in await session.execute(query):
        spans[booking_id] = Interval(start, end)
        if staff_id is not None:
            cal.staff_busy[staff_id].append(Interval(start, end))
    if spans and shop.resources:
        units = await session.execute(
            select(BookingResource.booking_id, BookingResource.resource_id, BookingResource.unit).where(
                BookingResource.booking_id.in_(list(spans))
            )
        )
        for booking_id, resource_id, unit in units:
            cal.resource_busy[resource_id][unit].append(spans[booking_id])
    offs = await session.execute(
        select(TimeOff.staff_id, TimeOff.start_at, TimeOff.end_at).where(
            TimeOff.shop_id == shop_id, TimeOff.start_at < hi, TimeOff.end_at > lo
        )
    )
    for staff_id, start, end in offs:
        cal.time_off[staff_id].append(Interval(start, end))
    return cal


def slot_query(
    shop: ShopConfig,
    service_id: str,
    day: date,
    now: datetime,
    *,
    duration_min: int,
    staff_ids: Sequence[str],
    calendar: Calendar,
    ignore_busy: bool = False,
) -> SlotQuery:
    service = shop.services[service_id]
    weekday = WEEKDAYS[day.weekday()]
    rules = shop.booking
    return SlotQuery(
        day=day,
        tz=shop.tz,
        now=now,
        opening=shop.hours_on(day),
        duration_min=duration_min,
        step_min=rules.slot_step_min,
        buffer_min=rules.buffer_min,
        lead_time_min=rules.lead_time_min,
        horizon_days=rules.horizon_days,
        staff_required=service.staff_required,
        staff=[
            StaffAvailability(
                staff_id=sid,
                shifts=shop.staff[sid].shifts.get(weekday, []),
                time_off=calendar.time_off.get(sid, []),
                busy=calendar.staff_busy.get(sid, []),
            )
            for sid in (staff_ids if service.staff_required else ())
        ],
        resources=[
            ResourceAvailability(
                resource_id=rid,
                capacity=shop.resources[rid].capacity,
                busy_by_unit=calendar.resource_busy.get(rid, {}),
            )
            for rid in service.resources
        ],
        ignore_busy=ignore_busy,
    )


def nearest(slots: Sequence[Slot], around: datetime, count: int = 3) -> tuple[Slot, ...]:
    """The ``count`` slots closest in time to ``around``, in chronological order."""
    closest = sorted(slots, key=lambda s: (abs((s.start - around).total_seconds()), s.start))[:count]
    return tuple(sorted(closest, key=lambda s: s.start))
