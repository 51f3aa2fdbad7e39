"""Staff time off: recorded, and every affected customer told and offered alternatives (the
shop-side change flow in core/shop_changes.py), unless asked not to."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.usecases.errors import Refused
from core.results import Actor, BookingView

if TYPE_CHECKING:
    from bot.bootstrap import Services

MAX_TIME_OFF = timedelta(days=366)


async def record_time_off(
    services: Services,
    shop_id: str,
    staff_id: str,
    start: datetime,
    end: datetime,
    actor: Actor,
    reason: str = "",
    *,
    notify_customers: bool = True,
) -> list[BookingView]:
    """Record ``staff_id`` away from ``start`` to ``end``; returns the bookings it affects.
    Refused (field ``end``) when the range ends before it starts or is longer than a year."""
    if end <= start:
        raise Refused("end", "bad_range", "time off must end after it starts")
    if end - start > MAX_TIME_OFF:
        raise Refused("end", "bad_range", "at most a year of time off at once")
    affected = await services.bookings.add_time_off(
        shop_id, staff_id, start, end, actor, reason, notify_customers=notify_customers
    )
    await services.events.publish({"type": "booking", "shop": shop_id})
    return affected
