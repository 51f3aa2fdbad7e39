"""A repeat asked for in chat ("每两周一次" / "every 2 weeks"): the first visit is booked as usual,
then the other visits inside the booking horizon, each under the same guarantee, told one by one
(core/series.py does the booking; flows.confirm and the policy's buttons call bot/usecases/series.py)."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

from sqlalchemy import select

from bot.bootstrap import Services
from core.clock import FixedClock
from core.models import Booking, BookingStatus
from tests.engine.conftest import SAT, ChatFactory, book, say, with_pet
from tests.helpers import at

GROOMERS = ("xiaomei", "ajie")


async def _active(services: Services) -> list[Booking]:
    async with services.db.reading() as s:
        confirmed = select(Booking).where(Booking.status == BookingStatus.CONFIRMED)
        rows = await s.scalars(confirmed.order_by(Booking.start_at))
        return list(rows)


async def test_every_two_weeks_books_the_visits_in_the_horizon(
    services: Services, clock: FixedClock, make_chat: ChatFactory
) -> None:
    await with_pet(services, "zh")
    chat = make_chat("zh")
    await chat.push("豆豆每两周洗一次澡，从下周六上午10点开始，疫苗都打过了")
    await chat.push("确认", payload="c:ok")
    visits = await _active(services)
    assert len(visits) >= 2  # the first and the ones already inside the 30-day horizon
    gaps = {b.start_at - a.start_at for a, b in pairwise(visits)}
    assert gaps == {timedelta(weeks=2)}  # the same time, two weeks apart
    assert say("zh", "series.created", interval=say("zh", "series.every_weeks", n=2)) in chat.text


async def test_a_taken_visit_moves_to_the_nearest_free_time_and_is_said_so(
    services: Services, clock: FixedClock, make_chat: ChatFactory
) -> None:
    customer, _ = await with_pet(services, "en")
    first = SAT + timedelta(days=7)
    third = first + timedelta(weeks=2)
    for staff in GROOMERS:  # every groomer is taken at the usual time on the third visit's day
        await book(services, "dog_bath_small", at(third, "10:00"), staff=staff)
    chat = make_chat("en")
    await chat.push(f"bath for Max every week, starting Sat {first.day} Nov at 10am, he's vaccinated")
    await chat.push("Confirm", payload="c:ok")
    mine = [b for b in await _active(services) if b.customer_id == customer.id]
    by_day = {b.start_at.date(): b.start_at for b in mine}
    assert by_day[first] == at(first, "10:00")
    assert by_day[third] != at(third, "10:00")  # not double-booked: another time that day
    assert by_day[third].date() == third
    moved = say("en", "series.line_moved", n=3, when="", wanted="10:00").split("(")[1]
    assert moved.split(",")[0] in chat.text  # the customer is told it moved, not shown the usual time
