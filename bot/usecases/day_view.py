"""A shop's day (or week) for staff: the bookings in it and the requests waiting for approval,
with each booking's note for staff (what the customer or staff asked for, "same as last time"
products and blade): shown on the day view and the booking's details, as plain text."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.usecases.handoff import customer_names
from core.models import Booking, BookingStatus
from core.results import BookingView

if TYPE_CHECKING:
    from bot.bootstrap import Services


@dataclass(frozen=True)
class DayView:
    bookings: list[BookingView]  # overlapping the range, lapsed holds left out, by start
    pending: list[BookingView]  # every future request waiting for the shop's approval, by start
    names: dict[int, str]  # customer id -> name
    notes: dict[int, str] = field(default_factory=dict)  # booking id -> its note for staff (when it has one)


async def day_view(services: Services, shop_id: str, start: datetime, end: datetime) -> DayView:
    """Bookings of ``shop_id`` between ``start`` and ``end`` (UTC) and the pending requests."""
    async with services.db.reading() as s:
        rows = list(
            await s.scalars(
                select(Booking)
                .where(
                    Booking.shop_id == shop_id,
                    Booking.start_at < end,
                    Booking.end_at > start,
                    Booking.status.not_in((BookingStatus.EXPIRED,)),
                )
                .order_by(Booking.start_at)
            )
        )
        pending = list(
            await s.scalars(
                select(Booking)
                .where(
                    Booking.shop_id == shop_id,
                    Booking.status == BookingStatus.PENDING,
                    Booking.start_at > services.clock.now(),
                )
                .order_by(Booking.start_at)
            )
        )
    names = await customer_names(services, {b.customer_id for b in (*rows, *pending) if b.customer_id})
    notes = {b.id: b.notes for b in (*rows, *pending) if b.notes}
    return DayView([BookingView.of(b) for b in rows], [BookingView.of(b) for b in pending], names, notes)
