"""Hold, book and confirm on the thin path (issue 10), on real SQLite and PostgreSQL: what a
customer or the shop would notice if the shortcuts were wrong.

- inside one piece of work (a chat turn), a booking that is refused rolls back alone: the
  booking made just before it in the same work stays, and nothing is double booked;
- the turn reads its own hold back (the confirmation step) as it is, without asking the
  database again, and confirming it in the same turn plans its reminders once;
- an expired hold that nobody swept yet never blocks its time: a reschedule onto it works,
  and the hold's history says it expired.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.models import Booking, BookingStatus, Reminder
from core.reminders import plan_reminders, rules_for
from core.results import Actor, Booked, Taken
from tests.helpers import MON, at, overlaps_in_database, statements

ALICE, BOB = Actor.customer(1), Actor.customer(2)
DESK = Actor.staff("front_desk")


def bath(start_hhmm: str, staff: str | None = "xiaomei") -> BookingRequest:
    return BookingRequest("pawspa", "dog_bath_small", at(MON, start_hhmm), staff_id=staff)


async def test_a_refused_booking_in_a_turn_rolls_back_alone(services: Services) -> None:
    async with services.db.unit_of_work():
        first = await services.bookings.book(bath("10:00"), ALICE)
        second = await services.bookings.book(bath("10:00"), BOB)
    assert isinstance(first, Booked) and first.booking.status == BookingStatus.CONFIRMED
    assert isinstance(second, Taken) and len(second.alternatives) == 3
    async with services.db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(Booking)) == 1
    assert await services.bookings.get("pawspa", first.booking.id) == first.booking
    assert await overlaps_in_database(services) == []


async def test_the_turn_reads_its_own_hold_back_and_confirms_it_once(services: Services) -> None:
    async with services.db.unit_of_work():
        held = await services.bookings.hold(bath("11:00"), ALICE)
        assert isinstance(held, Booked)
        with statements(services) as seen:
            again = await services.bookings.get("pawspa", held.booking.id)
        assert again == held.booking
        assert not [q for q in seen if "FROM bookings" in q], seen  # not read again
        confirmed = await services.bookings.confirm("pawspa", held.booking.id, ALICE)
    assert isinstance(confirmed, Booked) and confirmed.booking.status == BookingStatus.CONFIRMED
    stored = await services.bookings.get("pawspa", held.booking.id)
    assert stored == confirmed.booking and stored.hold_expires_at is None
    shop = services.config.shops["pawspa"]
    rules = rules_for(shop, stored.service_id)
    plan = plan_reminders(stored.start, shop.tz, rules, lambda d: bool(shop.hours_on(d)), services.clock.now())
    async with services.db.reading() as s:
        kinds = sorted(await s.scalars(select(Reminder.kind).where(Reminder.booking_id == stored.id)))
    assert kinds == sorted(p.kind for p in plan) and kinds  # its reminders, once each
    assert [e.action for e in await services.bookings.history(stored.id)] == ["held", "confirmed"]


async def test_an_expired_hold_nobody_swept_never_blocks_its_time(services: Services, clock: FixedClock) -> None:
    held = await services.bookings.hold(bath("10:00"), ALICE)
    other = await services.bookings.book(bath("14:00"), BOB)
    assert isinstance(held, Booked) and isinstance(other, Booked)
    clock.advance(timedelta(minutes=11))  # Alice's hold ran out; no sweep has run since
    moved = await services.bookings.reschedule("pawspa", other.booking.id, at(MON, "10:00"), DESK, staff_id="xiaomei")
    assert isinstance(moved, Booked) and moved.booking.start == at(MON, "10:00")
    booked = await services.bookings.book(bath("10:00", staff=None), Actor.customer(3))
    assert not (isinstance(booked, Booked) and booked.booking.staff_id == "xiaomei")
    assert [e.action for e in await services.bookings.history(held.booking.id)] == ["held", "hold_expired"]
    late = await services.bookings.confirm("pawspa", held.booking.id, ALICE)
    assert isinstance(late, Taken)
    assert await overlaps_in_database(services) == []
