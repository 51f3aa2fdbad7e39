"""After a visit, in chat: the stars and the comment (core/ratings.py), and "my results" at the optician.

The ask itself is queued by the booking's completion (core/bookings.py ``mark_attendance``); here the
customer taps a star on it, writes a comment, and the rating on record is what they said.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.bootstrap import Services
from core.clock import FixedClock
from core.models import OutboxMessage, Rating
from core.results import Actor, Booked
from tests.engine.conftest import MON, SAT, ChatFactory, book, customer_of, say, with_pet
from tests.helpers import at


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee, the unit of work and the
    channels are tested on both databases elsewhere); this keeps CI's clock down."""
    return sqlite_services


async def _completed(services: Services, clock: FixedClock, lang: str) -> int:
    customer, pet = await with_pet(services, lang)
    booking = await book(services, "dog_bath_small", at(MON, "10:00"), customer=customer, pet=pet)
    clock.set(at(MON, "11:05"))
    done = await services.bookings.mark_attendance("pawspa", booking.id, "completed", Actor.staff("xiaomei"))
    assert isinstance(done, Booked)
    return booking.id


async def test_a_low_rating_and_its_comment_are_kept_once(
    services: Services, clock: FixedClock, make_chat: ChatFactory
) -> None:
    chat = make_chat("zh")
    await chat.push("你好")  # the customer has a chat the ask can go to
    booking_id = await _completed(services, clock, "zh")
    async with services.db.reading() as s:
        asks = [r for r in await s.scalars(select(OutboxMessage)) if "rating_for" in r.body]
    assert len(asks) == 1  # completing the visit queued exactly one "how was it?"
    await chat.push("★★", payload=f"rate:{booking_id}:2")
    assert say("zh", "rating.comment_ask_low", n=2) in chat.text
    await chat.push("吹风的时候太吵了，豆豆很害怕")
    assert say("zh", "rating.thanks_comment") in chat.text
    await chat.push("★★★★★", payload=f"rate:{booking_id}:5")  # a second tap changes nothing
    async with services.db.reading() as s:
        [rating] = list(await s.scalars(select(Rating)))
    assert (rating.booking_id, rating.stars) == (booking_id, 2)
    assert rating.comment == "吹风的时候太吵了，豆豆很害怕"


async def test_a_new_request_after_the_stars_is_not_taken_as_the_comment(
    services: Services, clock: FixedClock, make_chat: ChatFactory
) -> None:
    chat = make_chat("en")
    await chat.push("hello")
    booking_id = await _completed(services, clock, "en")
    await chat.push("★★★★", payload=f"rate:{booking_id}:4")
    await chat.push("bath for Max next Saturday at 3pm")
    assert say("en", "ask.vaccinated", pet="Max") in chat.text  # the booking goes on
    async with services.db.reading() as s:
        [rating] = list(await s.scalars(select(Rating)))
    assert rating.stars == 4 and rating.comment is None


async def test_my_results_without_an_exam_on_file_says_so(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("zh", shop="clearsight")
    await chat.push("我的验光结果")
    assert chat.text == say("zh", "info.no_eye_result")


async def test_an_expired_vaccination_on_file_is_asked_about_with_its_date(
    services: Services, make_chat: ChatFactory
) -> None:
    from datetime import date

    from core.vaccinations import record_vaccination, vaccinations_of

    customer, pet = await with_pet(services, "zh")
    shop = services.config.shop("pawspa")
    assert shop is not None
    await record_vaccination(
        services.db, services.clock, "pawspa", shop, pet.id, None, date(2025, 10, 1), Actor.customer(customer.id)
    )
    chat = make_chat("zh")
    await chat.push("下周三下午3点给豆豆洗澡")
    assert "2026" in chat.text or "10月1日" in chat.text  # the record's expiry is named, not a bare yes/no
    assert say("zh", "ask.vaccinated", pet="豆豆") not in chat.text
    await chat.push("上个月打过加强针了")
    assert say("zh", "summary.title") in chat.text
    await chat.press(say("zh", "btn.confirm"))
    records = (await vaccinations_of(services.db, [pet.id]))[pet.id]
    assert max(r.given_on for r in records) > date(2025, 10, 1)  # the new shot is on file for next time


async def test_faq_answers_are_counted_for_the_reports(services: Services, make_chat: ChatFactory) -> None:
    from core.models import FaqAnswer

    chat = make_chat("en")
    await chat.push("Is there parking?")
    await chat.push("what's the weather like on Mars?")  # not answered: not counted
    async with services.db.reading() as s:
        answered = [row.entry_id for row in await s.scalars(select(FaqAnswer))]
    assert answered == ["parking"]


async def test_my_results_tell_the_latest_exam_to_that_customer_only(
    services: Services, make_chat: ChatFactory
) -> None:
    from core.eye_records import parse_exam, save_eye_record

    customer = await customer_of(services, "zh", shop="clearsight")
    exam = parse_exam(
        {"od_sphere": "-3.00", "od_cylinder": "-0.50", "od_axis": "180", "os_sphere": "-2.75", "pd": "62"},
        today=SAT,
    )
    await save_eye_record(services.db, services.clock, "clearsight", customer.id, exam, Actor.staff("dr_wang"))
    chat = make_chat("zh", shop="clearsight")
    await chat.push("我的验光结果")
    assert "右眼近视约300度，散光50度" in chat.text and "瞳距62毫米" in chat.text
    other = make_chat("zh", shop="clearsight", user="someone-else")
    await other.push("我的验光结果")
    assert other.text == say("zh", "info.no_eye_result")  # another customer sees nothing of it
