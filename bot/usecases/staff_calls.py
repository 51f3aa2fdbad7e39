"""Whom staff must phone: customers who have not answered a shop-side change (by its deadline,
or all of them) and messages no channel could deliver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.results import BookingView

if TYPE_CHECKING:
    from bot.bootstrap import Services


@dataclass(frozen=True)
class Person:
    name: str  # "?" when unknown
    phone: str | None


@dataclass(frozen=True)
class Undelivered:
    person: Person
    error: str
    text: str


@dataclass(frozen=True)
class Unanswered:
    person: Person
    booking: BookingView
    respond_by: datetime


@dataclass(frozen=True)
class Calls:
    undelivered: list[Undelivered]
    unanswered: list[Unanswered]


async def calls(services: Services, shop_id: str, *, overdue_only: bool = True) -> Calls:
    rows = await services.bookings.open_shop_changes(shop_id, overdue_only=overdue_only)
    undelivered = []
    for message in await services.outbox.needing_staff(shop_id):  # every channel failed for good
        conv = await services.store.load(message.conversation_id) if message.conversation_id else None
        person = await _person(services, conv.customer_id if conv else None)
        undelivered.append(Undelivered(person, str(message.error or ""), str(message.body.get("text", ""))))
    unanswered = [
        Unanswered(await _person(services, booking.customer_id), booking, change.respond_by) for change, booking in rows
    ]
    return Calls(undelivered, unanswered)


async def _person(services: Services, customer_id: int | None) -> Person:
    customer = await services.customers.get(customer_id) if customer_id else None
    if customer is None:
        return Person("?", None)
    return Person(customer.display_name, customer.phone or None)
