"""The waitlist: a full day can be waited for; a freed slot is offered to one customer at a time,
held while they decide; two accepts never both win; lapsed offers move on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.messages import OutgoingMessage
from core.models import OutboxMessage
from core.results import Actor, Booked
from tests.helpers import MON, shows
from tests.support.collecting import CollectingChannel

WANG = "dr_wang"


async def _fill_monday(services: Services) -> list[int]:
    """Book every adult exam slot on Monday (one exam room: the whole day is full)."""
    ids = []
    while slots := await services.bookings.free_slots("clearsight", "adult_exam", MON):
        result = await services.bookings.book(
            BookingRequest("clearsight", "adult_exam", slots[0].start), Actor.staff("desk")
        )
        assert isinstance(result, Booked)
        ids.append(result.booking.id)
    return ids


async def _offers(services: Services) -> dict[str, OutgoingMessage]:
    from sqlalchemy import select

    async with services.db.reading() as s:
        rows = list(await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "notice")))
    return {r.external_id: OutgoingMessage.from_json(r.body) for r in rows}


async def _chat(services: Services, user: str) -> CollectingChannel:
    chat = CollectingChannel(services.engine, "clearsight", user=user)
    await chat.push("你好")
    return chat


async def test_join_from_chat_then_a_cancellation_is_offered_and_taken(services: Services, clock: FixedClock) -> None:
    taken = await _fill_monday(services)
    chat = await _chat(services, "li")
    await chat.push("预约成人验光")
    await chat.push("11月23日")  # Monday: full
    join = chat.button("有空位时通知我")
    await chat.push(join.label, payload=join.payload)
    assert shows("waitlist.joined", chat.text)
    assert await services.waitlist.tick() == []  # nothing free yet
    await services.bookings.cancel("clearsight", taken[3], Actor.staff("desk"))
    [offer] = await services.waitlist.tick()
    await services.reminders.tick()
    message = (await _offers(services))["li"]
    assert shows("waitlist.offer", message.text) and "15分钟" in message.text
    # While offered, the slot is held for Li: nobody else can book it.
    freed = await services.bookings.get("clearsight", offer.booking_id)
    assert freed is not None and freed.status.value == "held"
    assert await services.bookings.free_slots("clearsight", "adult_exam", MON) == []
    await chat.push(message.buttons[0].label, payload=message.buttons[0].payload)
    assert shows("waitlist.taken", chat.text)
    booked = await services.bookings.get("clearsight", offer.booking_id)
    assert booked is not None and booked.status.value == "confirmed" and booked.customer_id is not None


async def test_one_at_a_time_and_lapsed_offers_move_on(services: Services, clock: FixedClock) -> None:
    taken = await _fill_monday(services)
    first, second = await _chat(services, "first"), await _chat(services, "second")
    for user in ("first", "second"):
        customer = await services.customers.identify("clearsight", "test", user)
        await services.waitlist.join("clearsight", customer.id, "adult_exam", MON)
        clock.advance(timedelta(seconds=1))
    await services.bookings.cancel("clearsight", taken[0], Actor.staff("desk"))
    offers = await services.waitlist.tick()
    assert len(offers) == 1  # one customer at a time, the first to join
    await services.reminders.tick()
    assert set(await _offers(services)) == {"first"}
    clock.advance(timedelta(minutes=16))  # "first" does not answer in time
    [moved_on] = await services.waitlist.tick()
    await services.reminders.tick()
    assert set(await _offers(services)) == {"first", "second"}
    late = (await _offers(services))["first"]
    await first.push(late.buttons[0].label, payload=late.buttons[0].payload)
    assert shows("waitlist.missed", first.text)  # the lapsed offer cannot be taken any more
    fresh = (await _offers(services))["second"]
    await second.push(fresh.buttons[0].label, payload=fresh.buttons[0].payload)
    assert shows("waitlist.taken", second.text)
    assert moved_on.customer_id == (await services.customers.identify("clearsight", "test", "second")).id


async def test_two_accepts_never_both_win(services: Services) -> None:
    taken = await _fill_monday(services)
    chat = await _chat(services, "solo")
    customer = await services.customers.identify("clearsight", "test", "solo")
    await services.waitlist.join("clearsight", customer.id, "adult_exam", MON)
    await services.bookings.cancel("clearsight", taken[0], Actor.staff("desk"))
    [offer] = await services.waitlist.tick()
    # The same offer accepted twice at once (two taps, two devices): one booking, one winner.
    results = await asyncio.gather(
        services.waitlist.accept("clearsight", offer.booking_id, customer.id),
        services.waitlist.accept("clearsight", offer.booking_id, customer.id),
    )
    booked = [r for r in results if isinstance(r, Booked)]
    assert len(booked) == len(results)
    assert {r.booking.id for r in booked} == {offer.booking_id}
    # And someone else cannot grab the held slot meanwhile.
    intruder = await services.bookings.book(
        BookingRequest("clearsight", "adult_exam", booked[0].booking.start),
        Actor.customer(999),
    )
    assert not intruder.ok
    await chat.push("退出候补")
    assert shows("waitlist.nothing", chat.text)  # the accepted entry is done: nothing left to leave


async def test_no_thanks_releases_the_slot_for_the_next(services: Services) -> None:
    taken = await _fill_monday(services)
    chat = await _chat(services, "nope")
    await _chat(services, "yes")
    for user in ("nope", "yes"):
        customer = await services.customers.identify("clearsight", "test", user)
        await services.waitlist.join("clearsight", customer.id, "adult_exam", MON)
    await services.bookings.cancel("clearsight", taken[5], Actor.staff("desk"))
    await services.waitlist.tick()
    await services.reminders.tick()
    offer = (await _offers(services))["nope"]
    await chat.push(offer.buttons[1].label, payload=offer.buttons[1].payload)  # "不用了"
    assert shows("waitlist.passed", chat.text)
    [next_offer] = await services.waitlist.tick()
    assert next_offer.customer_id == (await services.customers.identify("clearsight", "test", "yes")).id
