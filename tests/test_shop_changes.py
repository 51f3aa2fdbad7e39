"""A groomer or optometrist off sick: every affected customer is told at once, offered
alternatives one tap away (and the shop's goodwill offer); who does not answer is listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.messages import OutgoingMessage
from core.models import OutboxMessage
from core.results import Actor, Booked
from tests.helpers import MON, SHANGHAI, at, hhmm, shows
from tests.support.collecting import CollectingChannel

DESK = Actor.staff("desk")


async def _customer_booking(services: Services, user: str, start: str, staff: str) -> tuple[CollectingChannel, int]:
    chat = CollectingChannel(services.engine, "pawspa", user=user)
    await chat.push("你好")
    customer = await services.customers.identify("pawspa", "test", user)
    result = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, start), staff_id=staff, customer_id=customer.id),
        Actor.customer(customer.id),
    )
    assert isinstance(result, Booked)
    return chat, result.booking.id


async def _offers(services: Services) -> dict[str, OutgoingMessage]:
    from sqlalchemy import select

    async with services.db.reading() as s:
        rows = list(await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "notice")))
    return {r.external_id: OutgoingMessage.from_json(r.body) for r in rows}


async def test_staff_off_offers_alternatives_and_a_tap_rebooks(services: Services, clock: FixedClock) -> None:
    alice_chat, alice = await _customer_booking(services, "alice", "14:00", "xiaomei")
    _, bob = await _customer_booking(services, "bob", "16:00", "xiaomei")
    await _customer_booking(services, "carol", "14:00", "ajie")  # Ajie is busy at 14:00
    affected = await services.bookings.add_time_off(
        "pawspa",
        "xiaomei",
        at(MON, "00:00"),
        at(MON + timedelta(days=1), "00:00"),
        DESK,
        "sick",
        notify_customers=True,
    )
    assert sorted(b.id for b in affected) == sorted([alice, bob])
    await services.reminders.tick()
    offers = await _offers(services)
    assert set(offers) == {"alice", "bob"}  # Carol's groomer is fine: she hears nothing
    alice_offer = offers["alice"]
    assert shows("reminder.shop_change", alice_offer.text) and "小美" in alice_offer.text
    assert "赠送一次体内外驱虫" in alice_offer.text  # the shop's goodwill offer
    options = [b for b in alice_offer.buttons if b.payload.startswith("sc:")]
    assert options
    for option in options:  # never Xiaomei on the day she is off
        _, _, minutes, staff = option.payload.split(":")
        start = datetime.fromtimestamp(int(minutes) * 60, tz=UTC)
        assert not (staff == "xiaomei" and start.astimezone(SHANGHAI).date() == MON)
    # Bob at 16:00 can move to Ajie at the same time; Alice (14:00, Ajie busy) gets other times.
    assert any(b.payload.endswith(":ajie") and "16:00" in b.label for b in offers["bob"].buttons)
    assert not any("14:00" in b.label and b.payload.endswith(":ajie") for b in options)
    # Alice taps the first option: rebooked atomically, told in the same chat.
    await alice_chat.push(options[0].label, payload=options[0].payload)
    assert shows("reminder.rebooked", alice_chat.text)
    moved = await services.bookings.get("pawspa", alice)
    assert moved is not None and moved.start != at(MON, "14:00")
    # Bob does not answer; after the deadline the desk sees whom to call.
    assert [b.code for _, b in await services.bookings.open_shop_changes("pawspa", overdue_only=True)] == []
    clock.advance(timedelta(hours=13))
    overdue = await services.bookings.open_shop_changes("pawspa", overdue_only=True)
    assert [booking.id for _, booking in overdue] == [bob]
    assert hhmm(overdue[0][1].start) == "16:00"
