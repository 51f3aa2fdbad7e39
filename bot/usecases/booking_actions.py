"""What staff do to one booking: approve, decline, cancel, reschedule, record attendance, write
the follow-up. The rules (cut-offs, states, reminders) are core/bookings.py's; this sequences
them for the console and ``chatbook booking mark`` and tells open consoles.

Each operation is ONE core/bookings.py operation, so one transaction: the booking's change, its
cells, its audit row, its reminders and notices (the "declined" / "cancelled" notice, the
rating ask's outbox row) commit together or not at all (tests/test_usecases.py makes the
database refuse the audit row half-way). Open consoles are told only after it committed. The
follow-up is one store write (outbox row + transcript line) after reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.messages import OutgoingMessage
from core.models import Booking
from core.results import Actor, BookingResult, BookingView

if TYPE_CHECKING:
    from bot.bootstrap import Services

ACTIONS = ("approve", "decline", "cancel", "reschedule", "attendance", "follow_up")


@dataclass(frozen=True)
class NoChat:
    """The follow-up cannot be written: ``no_customer`` or ``no_channel`` (call them instead)."""

    reason: str


async def shop_of(services: Services, booking_id: int) -> str | None:
    """The shop a booking belongs to (for the access check), or None when there is none."""
    async with services.db.reading() as s:
        row = await s.get(Booking, booking_id)
    return row.shop_id if row is not None else None


async def find_by_code(services: Services, shop_id: str, code: str) -> BookingView | None:
    return await services.bookings.find_by_code(shop_id, code)


async def approve(services: Services, shop_id: str, booking_id: int, actor: Actor) -> BookingResult:
    return await _told(services, shop_id, await services.bookings.approve(shop_id, booking_id, actor))


async def decline(services: Services, shop_id: str, booking_id: int, actor: Actor, reason: str = "") -> BookingResult:
    return await _told(services, shop_id, await services.bookings.decline(shop_id, booking_id, actor, reason))


async def cancel(services: Services, shop_id: str, booking_id: int, actor: Actor, reason: str = "") -> BookingResult:
    return await _told(services, shop_id, await services.bookings.cancel(shop_id, booking_id, actor, reason))


async def reschedule(
    services: Services, shop_id: str, booking_id: int, start: datetime, actor: Actor, *, staff_id: str | None = None
) -> BookingResult:
    result = await services.bookings.reschedule(shop_id, booking_id, start, actor, staff_id=staff_id)
    return await _told(services, shop_id, result)


async def mark_attendance(
    services: Services, shop_id: str, booking_id: int, outcome: str, actor: Actor
) -> BookingResult:
    """Staff record "arrived", "completed" or "no_show"."""
    result = await services.bookings.mark_attendance(shop_id, booking_id, outcome, actor)
    return await _told(services, shop_id, result)


async def follow_up(
    services: Services, shop_id: str, booking_id: int, username: str, message: OutgoingMessage
) -> int | NoChat:
    """Staff write after the visit, in the customer's latest chat; returns the outbox id."""
    async with services.db.reading() as s:
        row = await s.get(Booking, booking_id)
    customer_id = row.customer_id if row is not None else None
    if customer_id is None:
        return NoChat("no_customer")
    conv = await services.store.latest_conversation(shop_id, customer_id)
    if conv is None:
        return NoChat("no_channel")
    return await services.store.enqueue(conv, message, author=f"staff:{username}")


async def _told(services: Services, shop_id: str, result: BookingResult) -> BookingResult:
    await services.events.publish({"type": "booking", "shop": shop_id})
    return result
