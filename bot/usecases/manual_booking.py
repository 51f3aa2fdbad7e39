"""Staff book a customer who phoned or walked in (console "new booking").

The customer is found by phone (or ``walk-in:<name>`` without one) or made, and booked, in ONE
unit of work (``Database.unit_of_work``): the new customer, the booking, its occupancy, its
audit row and its reminder and confirmation rows commit together or not at all. A booking that
is not made (a taken slot, a closed hour...) or a failure half-way (the database refusing a
row) rolls the whole unit back, so nobody is left behind and nothing is half-done. Open
consoles are told once it committed.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from core.bookings import BookingRequest
from core.results import Actor, Booked, BookingResult

if TYPE_CHECKING:
    from bot.bootstrap import Services


class _NotBooked(Exception):
    """Roll the unit of work back: the booking was not made (the outcome rides along)."""

    def __init__(self, result: BookingResult) -> None:
        super().__init__("not booked")
        self.result = result


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
    try:
        async with services.db.unit_of_work():
            customer = await services.customers.identify(shop_id, "phone", external, display_name=name)
            request = BookingRequest(
                shop_id, service_id, start, staff_id=staff_id, customer_id=customer.id, notes=notes
            )
            result = await services.bookings.book(request, actor)
            if not isinstance(result, Booked):
                raise _NotBooked(result)
            if phone and customer.phone != phone:
                await services.customers.update(customer.id, phone=phone)
    except _NotBooked as not_booked:
        return not_booked.result
    await services.events.publish({"type": "booking", "shop": shop_id})
    return result
