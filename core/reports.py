"""Attendance figures per shop and month: how many came, how many did not, how many confirmed.

no-show rate = no-shows / (completed + no-shows); confirmation rate = bookings whose customer
tapped "I'll be there" / bookings that were sent a reminder. Months are the shop's local months.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from core.config import ShopConfig
from core.db import Database
from core.models import Booking, BookingEvent, BookingStatus, Reminder, ReminderStatus


@dataclass(frozen=True)
class MonthFigures:
    month: str  # YYYY-MM in the shop's zone
    booked: int
    completed: int
    no_show: int
    cancelled: int
    reminded: int
    confirmed_by_customer: int

    @property
    def no_show_rate(self) -> float | None:
        attended = self.completed + self.no_show
        return self.no_show / attended if attended else None

    @property
    def confirmation_rate(self) -> float | None:
        return self.confirmed_by_customer / self.reminded if self.reminded else None


async def monthly(db: Database, shop_id: str, shop: ShopConfig) -> list[MonthFigures]:
    async with db.reading() as s:
        bookings = list(
            await s.execute(
                select(Booking.id, Booking.start_at, Booking.status).where(
                    Booking.shop_id == shop_id,
                    Booking.status != BookingStatus.EXPIRED,
                    Booking.status != BookingStatus.HELD,
                )
            )
        )
        reminded = set(
            await s.scalars(
                select(Reminder.booking_id)
                .join(Booking, Booking.id == Reminder.booking_id)
                .where(
                    Booking.shop_id == shop_id,
                    Reminder.status == ReminderStatus.QUEUED,
                    Reminder.kind.in_(("day_before", "same_day")),
                )
            )
        )
        confirmed = set(
            await s.scalars(
                select(BookingEvent.booking_id)
                .join(Booking, Booking.id == BookingEvent.booking_id)
                .where(Booking.shop_id == shop_id, BookingEvent.action == "customer_confirmed")
            )
        )
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for booking_id, start, status in bookings:
        month = start.astimezone(shop.tz).strftime("%Y-%m")
        row = counts[month]
        row["booked"] += 1
        row[status.value] += 1
        row["reminded"] += booking_id in reminded
        row["confirmed"] += booking_id in reminded and booking_id in confirmed
    return [
        MonthFigures(
            month=month,
            booked=row["booked"],
            completed=row["completed"],
            no_show=row["no_show"],
            cancelled=row["cancelled"],
            reminded=row["reminded"],
            confirmed_by_customer=row["confirmed"],
        )
        for month, row in sorted(counts.items())
    ]
