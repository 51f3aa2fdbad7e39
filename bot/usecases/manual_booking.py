"""Staff book a customer who phoned or walked in (console "new booking").

The customer is found by phone (or ``walk-in:<name>`` without one) or made; when the booking is
not made (a taken slot, a closed hour...) a customer made for it is removed again, so a failure
leaves nobody behind. Atomic by compensation: the customer and the booking are two transactions.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from core.bookings import BookingRequest
from core.models import Booking, ChannelIdentity, Customer
from core.results import Actor, Booked, BookingResult

if TYPE_CHECKING:
    from bot.bootstrap import Services


async def book_for_customer(
    services: Services,
    shop_id: str,
    service_id: str,
    start: datetime,
    actor: Actor,
    *,
    name: str,
    phone: str | None = None,
    staff_id: str | None = None,
    notes: str = "",
) -> BookingResult:
    """Book ``service_id`` at ``start`` for the named customer; the outcome as the engine gets it."""
    external = phone or f"walk-in:{name}"
    known = await _identity_exists(services, shop_id, external)
    customer = await services.customers.identify(shop_id, "phone", external, display_name=name)
    result = await services.bookings.book(
        BookingRequest(shop_id, service_id, start, staff_id=staff_id, customer_id=customer.id, notes=notes), actor
    )
    if not isinstance(result, Booked):
        if not known:
            await _discard_customer(services, customer.id)
        return result
    if phone and customer.phone != phone:
        await services.customers.update(customer.id, phone=phone)
    await services.events.publish({"type": "booking", "shop": shop_id})
    return result


async def _identity_exists(services: Services, shop_id: str, external: str) -> bool:
    async with services.db.reading() as s:
        found = await s.scalar(
            select(ChannelIdentity.id).where(
                ChannelIdentity.shop_id == shop_id,
                ChannelIdentity.channel == "phone",
                ChannelIdentity.external_id == external,
            )
        )
    return found is not None


async def _discard_customer(services: Services, customer_id: int) -> None:
    """Remove a customer made for a booking that was not made (unless something uses it by now)."""
    try:
        async with services.db.transaction() as s:
            if await s.scalar(select(Booking.id).where(Booking.customer_id == customer_id).limit(1)) is not None:
                return  # a concurrent manual booking for the same person succeeded: keep them
            await s.execute(delete(ChannelIdentity).where(ChannelIdentity.customer_id == customer_id))
            await s.execute(delete(Customer).where(Customer.id == customer_id))
    except IntegrityError:  # something else refers to them now: keep them
        pass
