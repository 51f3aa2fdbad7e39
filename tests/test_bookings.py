"""Booking operations on real SQLite and PostgreSQL: what customers and staff notice."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.models import BookingStatus, Occupancy
from core.results import Actor, Booked, NotAllowed, Reason, Taken
from tests.helpers import MON, THU, TUE, at, hhmm, overlaps_in_database

ALICE, BOB = Actor.customer(1), Actor.customer(2)
DESK = Actor.staff("front_desk")


def bath(start_hhmm: str, day=MON, staff: str | None = "xiaomei", **kw) -> BookingRequest:
    return BookingRequest("pawspa", "dog_bath_small", at(day, start_hhmm), staff_id=staff, **kw)


async def test_hold_then_confirm(services: Services) -> None:
    held = await services.bookings.hold(bath("10:00"), ALICE)
    assert isinstance(held, Booked) and held.booking.status == BookingStatus.HELD
    assert held.booking.hold_expires_at == services.clock.now() + timedelta(minutes=10)
    assert len(held.booking.code) == 6
    # The hold already takes the slot away from everybody else.
    taken = await services.bookings.book(bath("10:00"), BOB)
    assert isinstance(taken, Taken)
    confirmed = await services.bookings.confirm("pawspa", held.booking.id, ALICE)
    assert isinstance(confirmed, Booked) and confirmed.booking.status == BookingStatus.CONFIRMED
    assert confirmed.booking.hold_expires_at is None
    actions = [e.action for e in await services.bookings.history(held.booking.id)]
    assert actions == ["held", "confirmed"]


async def test_expired_hold_frees_the_slot(services: Services, clock: FixedClock) -> None:
    held = await services.bookings.hold(bath("10:00"), ALICE)
    assert isinstance(held, Booked)
    assert "10:00" not in [
        hhmm(s.start) for s in await services.bookings.free_slots("pawspa", "dog_bath_small", MON, staff_id="xiaomei")
    ]
    clock.advance(timedelta(minutes=11))
    # Shown as free again without anybody having to clean up first...
    free = await services.bookings.free_slots("pawspa", "dog_bath_small", MON, staff_id="xiaomei")
    assert "10:00" in [hhmm(s.start) for s in free]
    # ...and really free: Bob gets it, Alice's late confirmation is told it is gone.
    bob = await services.bookings.book(bath("10:00"), BOB)
    assert isinstance(bob, Booked)
    late = await services.bookings.confirm("pawspa", held.booking.id, ALICE)
    assert isinstance(late, Taken) and len(late.alternatives) == 3
    history = [e.action for e in await services.bookings.history(held.booking.id)]
    assert history == ["held", "hold_expired"]


async def test_confirming_an_expired_hold_that_nobody_took(services: Services, clock: FixedClock) -> None:
    held = await services.bookings.hold(bath("10:00"), ALICE)
    assert isinstance(held, Booked)
    clock.advance(timedelta(minutes=30))
    assert await services.bookings.release_expired_holds() == 1
    again = await services.bookings.confirm("pawspa", held.booking.id, ALICE)
    assert isinstance(again, Booked) and again.booking.status == BookingStatus.CONFIRMED


async def test_staff_approval_pending_occupies_the_slot(services: Services) -> None:
    grooming = BookingRequest("pawspa", "grooming", at(MON, "10:00"), staff_id="lin")
    first = await services.bookings.book(grooming, ALICE)
    assert isinstance(first, Booked) and first.booking.status == BookingStatus.PENDING
    # A pending request holds the slot: a second request cannot also be approved later.
    second = await services.bookings.book(grooming, BOB)
    assert isinstance(second, Taken)
    approved = await services.bookings.approve("pawspa", first.booking.id, DESK)
    assert isinstance(approved, Booked) and approved.booking.status == BookingStatus.CONFIRMED
    assert isinstance(await services.bookings.approve("pawspa", first.booking.id, DESK), NotAllowed)


async def test_decline_frees_the_slot(services: Services) -> None:
    grooming = BookingRequest("pawspa", "grooming", at(MON, "10:00"), staff_id="lin")
    first = await services.bookings.book(grooming, ALICE)
    assert isinstance(first, Booked)
    declined = await services.bookings.decline("pawspa", first.booking.id, DESK, reason="fully booked")
    assert isinstance(declined, Booked) and declined.booking.status == BookingStatus.CANCELLED
    assert isinstance(await services.bookings.book(grooming, BOB), Booked)


async def test_staff_booking_is_confirmed_directly(services: Services) -> None:
    walk_in = await services.bookings.book(BookingRequest("pawspa", "grooming", at(MON, "10:00")), DESK)
    assert isinstance(walk_in, Booked) and walk_in.booking.status == BookingStatus.CONFIRMED


async def test_reschedule_moves_atomically(services: Services) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    assert isinstance(alice, Booked)
    moved = await services.bookings.reschedule("pawspa", alice.booking.id, at(MON, "14:00"), ALICE)
    assert isinstance(moved, Booked)
    assert hhmm(moved.booking.start) == "14:00" and hhmm(moved.booking.end) == "15:00"
    assert moved.booking.code == alice.booking.code
    # The old time is free again, the new one is not.
    assert isinstance(await services.bookings.book(bath("10:00"), BOB), Booked)
    assert isinstance(await services.bookings.book(bath("14:00"), BOB), Taken)
    event = (await services.bookings.history(alice.booking.id))[-1]
    assert event.action == "rescheduled"
    assert event.details["before"]["start"] == at(MON, "10:00").isoformat()
    assert event.details["after"]["start"] == at(MON, "14:00").isoformat()


async def test_reschedule_into_a_taken_slot_keeps_the_old_one(services: Services) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    bob = await services.bookings.book(bath("14:00"), BOB)
    assert isinstance(alice, Booked) and isinstance(bob, Booked)
    ajie = await services.bookings.book(bath("14:00", staff="ajie"), Actor.customer(3))
    assert isinstance(ajie, Booked)  # both small-dog groomers are busy at 14:00
    refused = await services.bookings.reschedule("pawspa", alice.booking.id, at(MON, "14:00"), ALICE)
    assert isinstance(refused, Taken) and refused.alternatives
    kept = await services.bookings.get("pawspa", alice.booking.id)
    assert kept is not None and hhmm(kept.start) == "10:00" and kept.status == BookingStatus.CONFIRMED
    # ...and it still holds its slot.
    assert isinstance(await services.bookings.book(bath("10:00"), Actor.customer(3)), Taken)
    assert await overlaps_in_database(services) == []


async def test_reschedule_overlapping_itself(services: Services) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    assert isinstance(alice, Booked)
    later = await services.bookings.reschedule("pawspa", alice.booking.id, at(MON, "10:30"), ALICE)
    assert isinstance(later, Booked) and hhmm(later.booking.start) == "10:30"


async def test_cancel_policy(services: Services, clock: FixedClock) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    assert isinstance(alice, Booked)
    clock.set(at(MON, "08:30"))  # 90 minutes before: inside the 2-hour cut-off
    too_late = await services.bookings.cancel("pawspa", alice.booking.id, ALICE)
    assert isinstance(too_late, NotAllowed) and too_late.reason == Reason.CUTOFF_PASSED
    assert isinstance(
        await services.bookings.reschedule("pawspa", alice.booking.id, at(MON, "16:00"), ALICE), NotAllowed
    )
    by_staff = await services.bookings.cancel("pawspa", alice.booking.id, DESK, reason="customer phoned")
    assert isinstance(by_staff, Booked) and by_staff.booking.status == BookingStatus.CANCELLED
    assert isinstance(await services.bookings.cancel("pawspa", alice.booking.id, DESK), NotAllowed)
    async with services.db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(Occupancy)) == 0


async def test_cancel_in_time_frees_the_slot(services: Services) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    assert isinstance(alice, Booked)
    assert isinstance(await services.bookings.cancel("pawspa", alice.booking.id, ALICE), Booked)
    assert isinstance(await services.bookings.book(bath("10:00"), BOB), Booked)


async def test_add_on_extends_when_the_time_after_is_free(services: Services) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    assert isinstance(alice, Booked)
    added = await services.bookings.add_addon("pawspa", alice.booking.id, "conditioner", ALICE)
    assert isinstance(added, Booked)
    assert hhmm(added.booking.end) == "11:15" and added.booking.addons == ("conditioner",)
    assert added.booking.price_cents == 8800 + 4000
    # The extra 15 minutes (plus buffer) are really taken now.
    assert isinstance(await services.bookings.book(bath("11:00"), BOB), Taken)
    again = await services.bookings.add_addon("pawspa", alice.booking.id, "conditioner", ALICE)
    assert isinstance(again, NotAllowed) and again.reason == Reason.ADDON_ALREADY_ADDED
    nope = await services.bookings.add_addon("pawspa", alice.booking.id, "massage", ALICE)
    assert isinstance(nope, NotAllowed) and nope.reason == Reason.UNKNOWN_ADDON


async def test_add_on_that_does_not_fit(services: Services) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    bob = await services.bookings.book(bath("11:30"), BOB)
    assert isinstance(alice, Booked) and isinstance(bob, Booked)
    # 10:00-11:15 plus the 10-minute buffer still ends before Bob's 11:30...
    assert isinstance(await services.bookings.add_addon("pawspa", alice.booking.id, "conditioner", ALICE), Booked)
    # ...but 10 more minutes of deworming would run into him.
    refused = await services.bookings.add_addon("pawspa", alice.booking.id, "deworming", ALICE)
    assert isinstance(refused, Taken) and refused.reason == "addon_does_not_fit"
    assert len(refused.alternatives) == 3
    assert all(s.end - s.start == timedelta(minutes=85) for s in refused.alternatives)
    unchanged = await services.bookings.get("pawspa", alice.booking.id)
    assert unchanged is not None and hhmm(unchanged.end) == "11:15" and unchanged.addons == ("conditioner",)


async def test_rules_say_no_with_a_reason(services: Services) -> None:
    cases = {
        Reason.CLOSED: bath("10:00", day=TUE),
        Reason.TOO_SOON: BookingRequest("pawspa", "nail_trim", at(MON - timedelta(days=2), "10:00")),
        Reason.TOO_FAR: bath("10:00", day=MON + timedelta(days=40)),
        Reason.OUTSIDE_HOURS: bath("20:30"),
        Reason.STAFF_NOT_WORKING: BookingRequest("pawspa", "grooming", at(THU, "10:00"), staff_id="lin"),
        Reason.STAFF_NOT_QUALIFIED: BookingRequest("pawspa", "grooming", at(MON, "10:00"), staff_id="xiaomei"),
        Reason.UNKNOWN_SERVICE: BookingRequest("pawspa", "car_wash", at(MON, "10:00")),
    }
    for reason, request in cases.items():
        result = await services.bookings.book(request, ALICE)
        assert isinstance(result, NotAllowed) and result.reason == reason, (reason, result)
    off_grid = await services.bookings.book(bath("10:10"), ALICE)
    assert isinstance(off_grid, NotAllowed) and off_grid.reason == Reason.OUTSIDE_HOURS


async def test_time_off_reports_affected_bookings(services: Services) -> None:
    alice = await services.bookings.book(bath("10:00"), ALICE)
    assert isinstance(alice, Booked)
    affected = await services.bookings.add_time_off(
        "pawspa", "xiaomei", at(MON, "00:00"), at(MON + timedelta(days=1), "00:00"), DESK, reason="sick"
    )
    assert [b.code for b in affected] == [alice.booking.code]
    assert await services.bookings.free_slots("pawspa", "dog_bath_small", MON, staff_id="xiaomei") == []


async def test_any_staff_picks_a_free_qualified_one(services: Services) -> None:
    first = await services.bookings.book(bath("14:00", staff=None), ALICE)
    second = await services.bookings.book(bath("14:00", staff=None), BOB)
    third = await services.bookings.book(bath("14:00", staff=None), Actor.customer(3))
    assert isinstance(first, Booked) and isinstance(second, Booked)
    assert {first.booking.staff_id, second.booking.staff_id} == {"xiaomei", "ajie"}
    assert isinstance(third, Taken)  # only two groomers do small dogs


async def test_exam_room_is_shared(services: Services) -> None:
    wang = await services.bookings.book(
        BookingRequest("clearsight", "adult_exam", at(MON, "10:00"), staff_id="dr_wang"), ALICE
    )
    assert isinstance(wang, Booked) and wang.booking.resources == (("exam_room", 0),)
    chen = await services.bookings.book(
        BookingRequest("clearsight", "child_exam", at(MON, "10:15"), staff_id="dr_chen"), BOB
    )
    assert isinstance(chen, Taken)
    assert all(hhmm(s.start) not in ("10:00", "10:15") for s in chen.alternatives)
    pickup = await services.bookings.book(BookingRequest("clearsight", "glasses_pickup", at(MON, "10:00")), BOB)
    assert isinstance(pickup, Booked) and pickup.booking.staff_id is None
