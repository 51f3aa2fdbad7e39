"""The shop-side change flow: when the shop cannot keep a booking (staff time off).

Recording an absence lists the active bookings it touches; with ``notify_customers`` each
affected customer is told in the same transaction (a ``shop_change`` notice through the
reminder queue, answered in chat) and a ``shop_changes`` row keeps the deadline for an answer
(``respond_within``, at the latest 2 hours before the visit). ``change_options`` are the
alternatives offered (the same time with another qualified staff member first, then the nearest
free times); ``open_changes`` lists who has not answered (overdue: staff call them); a change is
resolved when the customer rebooks or cancels (``resolve``, in that operation's transaction).
The operations themselves stay on core/bookings.py's BookingService, which calls these.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import reminders
from core.db import Database
from core.models import ACTIVE_STATUSES, Booking, BookingStatus, ShopChange, TimeOff
from core.results import Actor, BookingView
from core.slot_placement import Wanted

if TYPE_CHECKING:
    from core.bookings import BookingService

Audit = Callable[..., None]  # BookingService._audit: (session, booking, actor, now, action, **details)


async def record_time_off(
    s: AsyncSession,
    *,
    shop_id: str,
    staff_id: str,
    start: datetime,
    end: datetime,
    actor: Actor,
    reason: str,
    now: datetime,
    notify_customers: bool,
    respond_within: timedelta,
    audit: Audit,
) -> list[BookingView]:
    """In the caller's transaction: the absence, and the active bookings it affects (each
    customer told and given a deadline to answer with ``notify_customers``; holds are not)."""
    s.add(TimeOff(shop_id=shop_id, staff_id=staff_id, start_at=start, end_at=end, reason=reason, created_at=now))
    rows = list(
        await s.scalars(
            select(Booking)
            .where(
                Booking.shop_id == shop_id,
                Booking.staff_id == staff_id,
                Booking.status.in_(ACTIVE_STATUSES),
                or_(Booking.status != BookingStatus.HELD, Booking.hold_expires_at > now),
                Booking.start_at < end,
                Booking.end_at > start,
            )
            .order_by(Booking.start_at)
        )
    )
    if notify_customers:
        for booking in rows:
            if booking.status == BookingStatus.HELD:
                continue
            deadline = min(now + respond_within, booking.start_at - timedelta(hours=2))
            s.add(
                ShopChange(
                    booking_id=booking.id,
                    staff_id=staff_id,
                    reason=reason[:200],
                    respond_by=max(deadline, now),
                    created_at=now,
                    resolution="",
                )
            )
            await reminders.notify(s, booking, "shop_change", now)
            audit(s, booking, actor, now, "shop_change", staff=staff_id, reason=reason)
    return [BookingView.of(b) for b in rows]


async def change_options(
    bookings: BookingService, shop_id: str, booking_id: int, count: int = 3
) -> list[tuple[datetime, str | None]]:
    """Alternatives for a booking the shop cannot keep: the same time with another qualified
    staff member first, then the nearest free times with the same one (who is away now)."""
    shop = bookings.shop(shop_id)
    booking = await bookings.get(shop_id, booking_id)
    if booking is None:
        return []
    duration = booking.duration_min
    everyone = tuple(bookings._service_staff(shop, booking.service_id, None))
    options: list[tuple[datetime, str | None]] = []
    day = booking.start.astimezone(shop.tz).date()
    same_day = await bookings.free_slots(
        shop_id, booking.service_id, day, addons=booking.addons, exclude_booking=booking.id
    )
    for slot in same_day:
        if slot.start == booking.start:
            options.extend((slot.start, sid) for sid in slot.staff_ids if sid != booking.staff_id)
    options = options[: max(count - 1, 1)]
    mine = (booking.staff_id,) if booking.staff_id else everyone
    nearby = await bookings._alternatives(
        Wanted(shop_id, booking.service_id, booking.start, duration, mine, booking.id)
    )
    for slot in nearby.alternatives:
        staff = booking.staff_id if booking.staff_id in slot.staff_ids else (slot.staff_ids or (None,))[0]
        if len(options) < count and (slot.start, staff) not in options:
            options.append((slot.start, staff))
    return options


async def open_changes(
    db: Database, shop_id: str, now: datetime, *, overdue_only: bool = False
) -> list[tuple[ShopChange, BookingView]]:
    """Shop-side changes the customer has not answered yet (overdue ones: call them)."""
    async with db.reading() as s:
        query: Any = (
            select(ShopChange, Booking)
            .join(Booking, Booking.id == ShopChange.booking_id)
            .where(Booking.shop_id == shop_id, ShopChange.resolved_at.is_(None))
            .order_by(ShopChange.respond_by)
        )
        if overdue_only:
            query = query.where(ShopChange.respond_by <= now)
        return [(change, BookingView.of(booking)) for change, booking in await s.execute(query)]


async def resolve(s: AsyncSession, booking_id: int, now: datetime, resolution: str) -> None:
    """The customer answered a shop-side change of this booking ("rebooked", "cancelled")."""
    await s.execute(
        update(ShopChange)
        .where(ShopChange.booking_id == booking_id, ShopChange.resolved_at.is_(None))
        .values(resolved_at=now, resolution=resolution)
        .execution_options(synchronize_session=False)
    )
