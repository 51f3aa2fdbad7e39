"""Ratings: the ask after a completed visit (five star buttons, once, out of quiet hours), one
rating per booking whatever is tapped twice or at once, stars 1-5 only, the customer's own
completed visit only, an optional comment once, and a low rating alerting the console at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.i18n import texts
from core.messages import OutgoingMessage
from core.models import BookingEvent, OutboxMessage, Rating, TranscriptEntry
from core.ratings import (
    ASK_AFTER,
    Outcome,
    RatePayload,
    RatingService,
    RatingView,
    comment_prompt,
    parse_payload,
    remember_pending,
    take_pending,
)
from core.results import Actor, Booked
from tests.helpers import MON, SHANGHAI, at, shows
from tests.support.collecting import CollectingChannel


class Published:
    """Collects what the service publishes (the real EventBus is checked separately)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)


async def _completed_visit(
    services: Services,
    clock: FixedClock,
    user: str = "zhao",
    *,
    hhmm: str = "10:00",
    chat: bool = True,
    done_after: timedelta = timedelta(hours=1, minutes=5),
) -> tuple[int, int]:
    """A pawspa bath for 旺财 on Monday, marked completed by the desk; returns (booking, customer)."""
    if chat:
        await CollectingChannel(services.engine, "pawspa", user=user).push("你好")
    customer = await services.customers.identify("pawspa", "test", user)
    pet = await services.customers.add_pet(customer.id, name="旺财", species="dog", size="small")
    booked = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, hhmm), customer_id=customer.id, pet_id=pet.id),
        Actor.customer(customer.id),
    )
    assert isinstance(booked, Booked)
    clock.set(at(MON, hhmm) + done_after)
    done = await services.bookings.mark_attendance("pawspa", booked.booking.id, "completed", Actor.staff("xiaomei"))
    assert isinstance(done, Booked) and done.booking.status.value == "completed"
    return booked.booking.id, customer.id


async def _asks(services: Services) -> list[OutboxMessage]:
    async with services.db.reading() as s:
        rows = await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [r for r in rows if "rating_for" in r.body]


async def _ratings(services: Services) -> list[Rating]:
    async with services.db.reading() as s:
        return list(await s.scalars(select(Rating)))


def test_payloads_are_parsed_strictly() -> None:
    assert parse_payload("rate:12:5") == RatePayload(12, 5)
    assert parse_payload("rate:12:1") == RatePayload(12, 1)
    assert parse_payload("rate:12:skip") == RatePayload(12, None)
    for forged in ("rate:12:0", "rate:12:6", "rate:12:-1", "rate:x:3", "rate:12", "rate:12:3:4", "rc:12", "rate::3"):
        assert parse_payload(forged) is None, forged


async def test_completed_visit_is_asked_once_with_five_star_buttons(services: Services, clock: FixedClock) -> None:
    booking_id, _ = await _completed_visit(services, clock)
    ratings = RatingService(services.db, services.config, clock)
    # completing the visit (mark_attendance) already asked; a second completion click, a retry: no second ask
    assert await ratings.request_rating(booking_id) is False
    [row] = await _asks(services)
    message = OutgoingMessage.from_json(row.body)
    assert shows("rating.ask", message.text) and "旺财" in message.text
    assert [b.payload for b in message.buttons] == [f"rate:{booking_id}:{n}" for n in range(1, 6)]
    assert [b.label.count("★") for b in message.buttons] == [1, 2, 3, 4, 5]
    assert (row.channel, row.external_id, row.kind) == ("test", "zhao", "notice")
    assert row.next_attempt_at == clock.now() + ASK_AFTER  # 11:35, after they have left the shop
    async with services.db.reading() as s:
        said = await s.scalar(select(TranscriptEntry.text).where(TranscriptEntry.author == "bot:rating"))
        audit = await s.scalar(
            select(func.count()).where(BookingEvent.booking_id == booking_id, BookingEvent.action == "rating_requested")
        )
    assert said == message.text  # the transcript keeps the ask
    assert audit == 1


async def test_the_ask_waits_for_the_end_of_quiet_hours(services: Services, clock: FixedClock) -> None:
    late = timedelta(hours=2, minutes=10)
    booking_id, _ = await _completed_visit(services, clock, hhmm="18:30", done_after=late)  # ask due 21:10
    await RatingService(services.db, services.config, clock).request_rating(booking_id)
    [row] = await _asks(services)
    assert row.next_attempt_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M") == "11-24 08:30"


async def test_no_ask_without_a_completed_visit_or_a_chat(services: Services, clock: FixedClock) -> None:
    ratings = RatingService(services.db, services.config, clock)
    customer = await services.customers.identify("pawspa", "test", "qian")
    booked = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "14:00"), customer_id=customer.id),
        Actor.customer(customer.id),
    )
    assert isinstance(booked, Booked)
    assert await ratings.request_rating(booked.booking.id) is False  # only confirmed, not completed
    assert await ratings.request_rating(999_999) is False
    no_chat, _ = await _completed_visit(services, clock, "sun", chat=False)
    assert await ratings.request_rating(no_chat) is False
    assert await _asks(services) == []


async def test_stars_are_validated_and_nothing_is_stored_for_bad_ones(services: Services, clock: FixedClock) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    ratings = RatingService(services.db, services.config, clock)
    for bad in (0, 6, -1, 100, True, "5", 3.5, None):
        result = await ratings.record_rating(booking_id, customer_id, bad, None)  # type: ignore[arg-type]  # hostile input
        assert result.outcome == Outcome.INVALID and not result.ok, bad
        assert result.reply == "rating.unavailable"
    assert await _ratings(services) == []


async def test_only_the_customers_own_completed_visit_can_be_rated(services: Services, clock: FixedClock) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    other = await services.customers.identify("pawspa", "test", "stranger")
    ratings = RatingService(services.db, services.config, clock)
    assert (await ratings.record_rating(booking_id, other.id, 1)).outcome == Outcome.NOT_YOURS
    assert (await ratings.record_rating(987_654, customer_id, 5)).outcome == Outcome.NOT_FOUND
    upcoming = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "16:00"), customer_id=customer_id),
        Actor.customer(customer_id),
    )
    assert isinstance(upcoming, Booked)
    assert (await ratings.record_rating(upcoming.booking.id, customer_id, 5)).outcome == Outcome.NOT_COMPLETED
    assert await _ratings(services) == []


async def test_one_rating_per_booking_and_a_comment_once(services: Services, clock: FixedClock) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    ratings = RatingService(services.db, services.config, clock)
    first = await ratings.record_rating(booking_id, customer_id, 4)
    assert first.outcome == Outcome.RECORDED and first.reply == "rating.thanks"
    again = await ratings.record_rating(booking_id, customer_id, 1)  # a redelivered or second tap
    assert again.outcome == Outcome.ALREADY and again.rating is not None and again.rating.stars == 4
    assert again.reply == "rating.already"
    said = await ratings.add_comment(booking_id, customer_id, "  洗得很干净\x00，谢谢！  ")
    assert said.outcome == Outcome.COMMENTED and said.reply == "rating.thanks_comment"
    later = await ratings.add_comment(booking_id, customer_id, "another comment")
    assert later.outcome == Outcome.ALREADY
    [row] = await _ratings(services)
    assert (row.stars, row.comment, row.customer_id, row.shop_id) == (4, "洗得很干净，谢谢！", customer_id, "pawspa")
    assert row.at == clock.now()
    actions = [e.action for e in await services.bookings.history(booking_id)]
    assert actions.count("rated") == 1 and actions.count("rating_comment") == 1


async def test_stars_with_comment_in_one_call_and_long_comments_are_cut(services: Services, clock: FixedClock) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    ratings = RatingService(services.db, services.config, clock)
    result = await ratings.record_rating(booking_id, customer_id, 5, "好" * 5000)
    assert result.outcome == Outcome.RECORDED
    [row] = await _ratings(services)
    assert row.comment == "好" * 1000
    blank, blank_customer = await _completed_visit(services, clock, "li", hhmm="14:00")
    await ratings.record_rating(blank, blank_customer, 5, "   ")
    stored = await ratings.get(blank)
    assert stored is not None and stored.comment is None  # blank words are no comment


async def test_simultaneous_taps_make_one_rating(services: Services, clock: FixedClock) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    ratings = RatingService(services.db, services.config, clock)
    results = await asyncio.gather(*(ratings.record_rating(booking_id, customer_id, n) for n in (1, 2, 3, 4, 5)))
    assert sorted(r.outcome.value for r in results).count("recorded") == 1
    assert all(r.ok for r in results)
    [row] = await _ratings(services)
    winner = next(r for r in results if r.outcome == Outcome.RECORDED)
    assert winner.rating is not None and row.stars == winner.rating.stars


@pytest.mark.parametrize(("stars", "alerts"), [(1, 1), (2, 1), (3, 0), (5, 0)])
async def test_low_ratings_alert_staff_at_once(services: Services, clock: FixedClock, stars: int, alerts: int) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    published, staff = Published(), Published()
    ratings = RatingService(services.db, services.config, clock, publish=published, notify_staff=staff)
    await ratings.record_rating(booking_id, customer_id, stars)
    assert len(published.events) == alerts and len(staff.events) == alerts
    if alerts:
        assert published.events[0] == {
            "type": "low_rating",
            "shop": "pawspa",
            "booking": booking_id,
            "stars": stars,
            "comment": False,
        }
        await ratings.add_comment(booking_id, customer_id, "等了很久")  # the words follow: staff see them too
        assert published.events[-1]["comment"] is True
    await ratings.record_rating(booking_id, customer_id, stars)  # a second tap alerts nobody again
    assert len(published.events) == alerts * 2


async def test_low_rating_reaches_a_console_subscribed_to_the_event_bus(services: Services, clock: FixedClock) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    await services.events.start()
    queue = services.events.subscribe()
    try:
        ratings = RatingService(services.db, services.config, clock, publish=services.events.publish)
        await ratings.record_rating(booking_id, customer_id, 1)
        event = await asyncio.wait_for(queue.get(), timeout=10)
        while event.get("type") != "low_rating":  # other consoles' events may come first
            event = await asyncio.wait_for(queue.get(), timeout=10)
        assert (event["shop"], event["booking"], event["stars"]) == ("pawspa", booking_id, 1)
    finally:
        services.events.unsubscribe(queue)


def test_the_comment_prompt_is_kinder_after_a_low_rating() -> None:
    low, high = comment_prompt(7, 2, "en"), comment_prompt(7, 5, "zh")
    assert shows("rating.comment_ask_low", low.text, "en") and shows("rating.comment_ask", high.text, "zh")
    assert [b.payload for b in low.buttons] == ["rate:7:skip"]


async def test_the_chat_side_stars_then_a_comment(services: Services, clock: FixedClock) -> None:
    booking_id, customer_id = await _completed_visit(services, clock)
    ratings = RatingService(services.db, services.config, clock)
    tapped = await ratings.answer_button(f"rate:{booking_id}:2", customer_id, "zh")
    [prompt] = tapped.messages
    assert shows("rating.comment_ask_low", prompt.text) and tapped.comment_for == booking_id
    assert [b.payload for b in prompt.buttons] == [f"rate:{booking_id}:skip"]
    data: dict[str, Any] = {}
    remember_pending(data, tapped.comment_for, clock.now())
    clock.advance(timedelta(minutes=10))
    pending = take_pending(data, clock.now())
    assert pending == booking_id and data == {}  # taken once
    [thanks] = (await ratings.answer_comment(booking_id, customer_id, "剪得太短了", "zh")).messages
    assert shows("rating.thanks_comment", thanks.text)
    assert (await ratings.get(booking_id)) == RatingView(
        (await _ratings(services))[0].id,
        booking_id,
        customer_id,
        "pawspa",
        2,
        "剪得太短了",
        clock.now() - timedelta(minutes=10),
    )
    again = await ratings.answer_button(f"rate:{booking_id}:5", customer_id, "en")  # an old button tapped later
    assert [m.text for m in again.messages] == [texts("en").t("rating.already")] and again.comment_for is None
    skipped = await ratings.answer_button(f"rate:{booking_id}:skip", customer_id, "en")
    assert shows("rating.thanks", skipped.messages[0].text, "en") and skipped.comment_for is None
    forged = await ratings.answer_button("rate:1:9", customer_id, "en")
    assert shows("rating.unavailable", forged.messages[0].text, "en")


def test_a_pending_comment_expires() -> None:
    data: dict[str, Any] = {}
    now = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    remember_pending(data, 7, now)
    assert take_pending(data, now + timedelta(hours=3)) is None and data == {}
    remember_pending(data, 7, now)
    remember_pending(data, None, now)
    assert take_pending(data, now) is None
    assert take_pending({"rating_comment": {"booking": "7", "until": "soon"}}, now) is None
