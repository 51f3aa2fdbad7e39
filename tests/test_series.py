"""Recurring visits ("每周一次", "every 6 weeks"): the series through the engine's application
function (bot/usecases/series.py) after the first booking is confirmed, on SQLite and PostgreSQL.

What a customer notices: every visit inside the booking horizon is booked at once and listed;
a clash in the 4th visit moves only that one, to the nearest free time the same day, and the
reply says so; a day with no free time at all offers buttons and the tap books it; later visits
are booked as their day opens (with the normal confirmation); each visit has its own reminders;
one visit is cancelled or moved alone, or the rest of the series at once; never a double booking.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.bootstrap import Services
from bot.engine.recurrence import recurrence_in
from bot.usecases import series as usecase
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.models import (
    AuditEvent,
    Booking,
    BookingSeries,
    BookingStatus,
    OutboxMessage,
    Reminder,
    ReminderStatus,
    SeriesVisit,
)
from core.privacy import delete_customer
from core.records import note_on_booking
from core.results import Actor, Booked, BookingView
from core.series import Recurrence, SeriesService, parse_payload, payload, visit_day
from tests.helpers import MON, SHANGHAI, at, hhmm, overlaps_in_database, shows
from tests.support.collecting import CollectingChannel
from tests.test_records import console_staff

WEEKLY = Recurrence(1, "week")


async def _customer(services: Services, user: str) -> tuple[int, int]:
    """A customer who has chatted with pawspa (so later notices have a chat to go to), with 旺财."""
    await CollectingChannel(services.engine, "pawspa", user=user).push("你好")
    customer = await services.customers.identify("pawspa", "test", user)
    pet = await services.customers.add_pet(customer.id, name="旺财", species="dog", size="small")
    return customer.id, pet.id


async def _book(services: Services, start: datetime, customer_id: int, pet_id: int | None = None) -> BookingView:
    """What the engine has done when the hook runs: the first visit confirmed in chat."""
    result = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", start, customer_id=customer_id, pet_id=pet_id),
        Actor.customer(customer_id),
    )
    assert isinstance(result, Booked), result
    return result.booking


async def _bookings(services: Services, customer_id: int) -> list[Booking]:
    async with services.db.reading() as s:
        return list(
            await s.scalars(select(Booking).where(Booking.customer_id == customer_id).order_by(Booking.start_at))
        )


# ------------------------------------------------------------------------------------------ the parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("每6周一次", Recurrence(6, "week")),
        ("周一上午10点洗澡，每6周一次", Recurrence(6, "week")),
        ("每两周", Recurrence(2, "week")),
        ("每隔两周来一次", Recurrence(2, "week")),
        ("每隔一周", Recurrence(2, "week")),
        ("两周一次就好", Recurrence(2, "week")),
        ("每个月一次", Recurrence(1, "month")),
        ("每月一次，共6次", Recurrence(1, "month", 6)),
        ("一个月一次", Recurrence(1, "month")),
        ("每三个月", Recurrence(3, "month")),
        ("每周一次", Recurrence(1, "week")),
        ("每十天一次", Recurrence(10, "day")),
        ("every 6 weeks", Recurrence(6, "week")),
        ("Every other week please", Recurrence(2, "week")),
        ("every second week", Recurrence(2, "week")),
        ("monthly", Recurrence(1, "month")),
        ("every month, 4 times", Recurrence(1, "month", 4)),
        ("once a month", Recurrence(1, "month")),
        ("fortnightly", Recurrence(2, "week")),
        ("weekly for 5 visits", Recurrence(1, "week", 5)),
    ],
)
def test_recurrence_is_read_in_both_languages(text: str, expected: Recurrence) -> None:
    assert recurrence_in(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "每周六有空",
        "每周一上班，周三可以",
        "每星期天都不行",
        "我每周都很忙",
        "每月都来你们家",
        "每天都可以",
        "不用每周，一次就好",
        "every Saturday I'm busy",
        "I can come every day",
        "not every week, just once",
        "下周一上午十点",
        "book a bath on Monday",
        "每100周一次",  # beyond what a series takes: a single visit, not a wrong series
        "",
    ],
)
def test_habits_and_single_visits_are_not_a_series(text: str) -> None:
    assert recurrence_in(text) is None


def test_planning_keeps_the_rhythm() -> None:
    first = date(2026, 1, 31)
    assert visit_day(first, Recurrence(1, "month"), 2) == date(2026, 2, 28)  # the month's last day
    assert visit_day(first, Recurrence(1, "month"), 3) == date(2026, 3, 31)  # not drifting to the 28th
    assert visit_day(first, Recurrence(6, "week"), 3) == first + timedelta(weeks=12)
    assert Recurrence.from_json(Recurrence(2, "week", 5).as_json()) == Recurrence(2, "week", 5)
    assert Recurrence.from_json({"every": 0, "unit": "week"}) is None
    assert Recurrence.from_json({"every": 1, "unit": "year"}) is None
    start = at(MON, "10:00")
    assert parse_payload(payload(7, 4, start)) == (7, 4, start)
    for forged in ("sr:7:4", "sr:x:4:202612141000", "sr:7:4:2026121410", "sr:7:4:209913991000", "rate:1:2"):
        assert parse_payload(forged) is None, forged


# ------------------------------------------------------------------------------------------ transcripts


async def test_weekly_series_with_a_clash_in_the_4th_visit(services: Services, clock: FixedClock) -> None:
    """ "每周一次" after booking Monday 10:00: five Mondays fit the 30-day horizon; the 4th (14 Dec)
    10:00 is taken (the only groomer on Monday mornings is booked), so that visit alone moves to
    the nearest free time THE SAME DAY, 11:30 (10:00-11:00 plus the 10-minute cleaning buffer),
    and the reply says so. The others keep 10:00."""
    customer_id, pet_id = await _customer(services, "zhao")
    other, _ = await _customer(services, "qian")
    fourth = MON + timedelta(weeks=3)
    await _book(services, at(fourth, "10:00"), other)  # someone else has the 4th Monday's 10:00
    first = await _book(services, at(MON, "10:00"), customer_id, pet_id)

    wish = recurrence_in("每周一次")
    assert wish is not None
    reply = await usecase.continue_series(services.bookings, first, wish, "zh")

    [message] = reply.messages
    assert shows("series.created", message.text)
    lines = message.text.split("\n")
    plain = [line for line in lines if shows("series.line", line) and not shows("series.line_moved", line)]
    assert [line[:2] for line in plain] == ["1.", "2.", "3.", "5."]
    [moved] = [line for line in lines if shows("series.line_moved", line)]
    assert moved.startswith("4.") and "11:30" in moved and "10:00" in moved  # what changed, and why
    assert shows("series.later", message.text)  # the 6th Monday opens later: the customer is told

    mine = await _bookings(services, customer_id)
    assert [(b.start_at.astimezone(SHANGHAI).date(), hhmm(b.start_at)) for b in mine] == [
        (MON + timedelta(weeks=k), "11:30" if k == 3 else "10:00") for k in range(5)
    ]
    assert all(b.status == BookingStatus.CONFIRMED and b.pet_id == pet_id for b in mine)
    assert await overlaps_in_database(services) == []

    # every visit has its own reminders (the day before and the same day), planned for its own time
    async with services.db.reading() as s:
        planned = list(await s.execute(select(Reminder.booking_id, Reminder.kind, Reminder.for_start)))
    for booking in mine:
        kinds = {kind for bid, kind, for_start in planned if bid == booking.id and for_start == booking.start_at}
        assert {"day_before", "same_day"} <= kinds, booking.start_at

    # the same message again (a redelivery) books nothing twice
    again = await usecase.continue_series(services.bookings, first, wish, "zh")
    assert again.series_id == reply.series_id
    assert len(await _bookings(services, customer_id)) == 5


async def test_one_visit_changes_alone_and_the_rest_can_be_cancelled(services: Services, clock: FixedClock) -> None:
    customer_id, pet_id = await _customer(services, "sun")
    first = await _book(services, at(MON, "14:00"), customer_id, pet_id)
    reply = await usecase.continue_series(services.bookings, first, WEEKLY, "en")
    assert reply.series_id is not None
    series = SeriesService(services.bookings)
    visits = [b.id for b in await _bookings(services, customer_id)]
    assert len(visits) == 5

    # cancel visit 2 only: the others stay, its reminders are gone, no later run books it again
    cancelled = await series.cancel_visit("pawspa", reply.series_id, 2, Actor.customer(customer_id))
    assert isinstance(cancelled, Booked) and cancelled.booking.status == BookingStatus.CANCELLED
    async with services.db.reading() as s:
        left = set(await s.scalars(select(Reminder.status).where(Reminder.booking_id == visits[1])))
    assert left == {ReminderStatus.CANCELLED}

    # move visit 3 to 16:00 that day; visit 4 keeps its time
    moved = await series.move_visit(
        "pawspa", reply.series_id, 3, at(MON + timedelta(weeks=2), "16:00"), Actor.customer(customer_id)
    )
    assert isinstance(moved, Booked) and hhmm(moved.booking.start) == "16:00"

    # a week later: visit 6 opens and is booked by the system (the customer gets the confirmation)
    clock.set(clock.now() + timedelta(days=7))
    assert await usecase.extend(services.bookings) == 1
    mine = await _bookings(services, customer_id)
    assert [hhmm(b.start_at) for b in mine if b.status != BookingStatus.CANCELLED] == [
        "14:00", "16:00", "14:00", "14:00", "14:00"
    ]  # fmt: skip
    async with services.db.reading() as s:
        confirmation = await s.scalar(
            select(Reminder.id).where(Reminder.booking_id == mine[-1].id, Reminder.kind == "confirmation")
        )
    assert confirmation is not None

    # "cancel the rest" from visit 4: visits 4-6 are cancelled, nothing more is ever booked
    gone = await usecase.cancel_rest(services.bookings, "pawspa", reply.series_id, Actor.staff("xiaomei"), from_seq=4)
    assert len(gone) == 3
    clock.set(clock.now() + timedelta(days=14))
    assert await usecase.extend(services.bookings) == 0
    active = [b for b in await _bookings(services, customer_id) if b.status == BookingStatus.CONFIRMED]
    assert [b.start_at.astimezone(SHANGHAI).date() for b in active] == [MON, MON + timedelta(weeks=2)]
    async with services.db.reading() as s:
        status = await s.scalar(select(BookingSeries.status).where(BookingSeries.id == reply.series_id))
    assert status == "cancelled"


async def test_a_full_day_asks_the_customer_and_the_tap_books_it(services: Services, clock: FixedClock) -> None:
    """The 3rd Monday has nobody working (both groomers off): that visit cannot be moved within
    its day, so it is left unbooked and the customer picks one of the nearest free times."""
    customer_id, pet_id = await _customer(services, "li")
    third = MON + timedelta(weeks=2)
    for staff in ("xiaomei", "ajie"):
        await services.bookings.add_time_off(
            "pawspa", staff, at(third, "00:00"), at(third, "23:55"), Actor.staff("boss")
        )
    first = await _book(services, at(MON, "10:00"), customer_id, pet_id)
    reply = await usecase.continue_series(services.bookings, first, Recurrence(1, "week", 4), "en")

    summary, choice = reply.messages
    assert shows("series.line_needs_choice", summary.text, "en")
    assert shows("series.count", summary.text, "en") and not shows("series.later", summary.text, "en")
    assert shows("series.choose", choice.text, "en") and 1 <= len(choice.buttons) <= 3
    assert len(await _bookings(services, customer_id)) == 3  # visits 1, 2 and 4

    tap = choice.buttons[0].payload
    parsed = parse_payload(tap)
    assert parsed is not None
    chosen = await usecase.answer_button(services.bookings, tap, customer_id, "en")
    assert chosen.messages[0].text.startswith("Done: visit 3")
    assert len(await _bookings(services, customer_id)) == 4
    # tapping it again, or another customer's tap, books nothing
    twice = await usecase.answer_button(services.bookings, tap, customer_id, "en")
    assert shows("series.unavailable", twice.messages[0].text, "en")
    stranger, _ = await _customer(services, "wu")
    assert shows(
        "series.unavailable",
        (await usecase.answer_button(services.bookings, tap, stranger, "en")).messages[0].text,
        "en",
    )
    assert len(await _bookings(services, customer_id)) == 4
    assert await overlaps_in_database(services) == []


async def test_every_six_weeks_books_later_visits_as_they_open(services: Services, clock: FixedClock) -> None:
    """The 30-day horizon holds only the first visit of "every 6 weeks": the reply says the next
    ones are booked when they open; when the 2nd opens and its time is taken, it moves the same
    day and the customer gets a notice in their chat saying so (besides the confirmation)."""
    customer_id, pet_id = await _customer(services, "zhou")
    first = await _book(services, at(MON, "10:00"), customer_id, pet_id)
    wish = recurrence_in("every 6 weeks")
    assert wish == Recurrence(6, "week")
    reply = await usecase.continue_series(services.bookings, first, wish, "en")
    [message] = reply.messages
    assert shows("series.later", message.text, "en") and message.text.count("\n") == 2  # title, visit 1, later

    second = MON + timedelta(weeks=6)
    clock.set(clock.now() + timedelta(days=20))  # 4 Jan is now inside the horizon
    other, _ = await _customer(services, "wang")
    await _book(services, at(second, "10:00"), other)
    assert await usecase.extend(services.bookings) == 1
    mine = await _bookings(services, customer_id)
    assert [hhmm(b.start_at) for b in mine] == ["10:00", "11:30"]
    async with services.db.reading() as s:
        notices = [r for r in await s.scalars(select(OutboxMessage)) if r.body.get("series") == reply.series_id]
        visits = list(await s.scalars(select(SeriesVisit).where(SeriesVisit.series_id == reply.series_id)))
    [notice] = notices
    assert shows("series.later_booked", notice.body["text"]) and shows("series.line_moved", notice.body["text"])
    assert (notice.channel, notice.external_id) == ("test", "zhou")
    assert [v.outcome for v in visits] == ["booked", "moved"]
    assert await usecase.extend(services.bookings) == 0  # nothing new until the 3rd opens


# ------------------------------------------------------------------------------------------ console and privacy


async def test_console_lists_the_series_and_cancels_the_rest(services: Services, clock: FixedClock) -> None:
    customer_id, pet_id = await _customer(services, "zheng")
    first = await _book(services, at(MON, "10:00"), customer_id, pet_id)
    reply = await usecase.continue_series(services.bookings, first, Recurrence(2, "week"), "zh")
    assert reply.series_id is not None
    async with console_staff(services, ("mei", "pawspa"), ("wang", "clearsight")) as (mei, wang):
        status, page = await mei.get(f"/api/console/records/customers/{customer_id}")
        assert status == 200
        [shown] = page["series"]
        assert (shown["every"], shown["unit"], shown["time"], shown["status"]) == (2, "week", "10:00", "active")
        assert shown["interval"] == {"zh": "每2周", "en": "every 2 weeks"}  # what the card says
        assert [v["seq"] for v in shown["visits"]] == [1, 2, 3]
        assert shown["visits"][1]["booking"]["start"].startswith("2026-12-07T10:00")  # the shop's zone
        path = f"/api/console/records/series/{reply.series_id}/cancel_rest"
        assert (await wang.post(path, {}))[0] == 403  # another shop's staff
        assert (await mei.post(path, {}, csrf=False))[0] == 403
        status, body = await mei.post(path, {"from_seq": "zero"})
        assert status == 400 and body["field"] == "from_seq"
        assert (await mei.post("/api/console/records/series/99999/cancel_rest", {}))[0] == 404
        status, body = await mei.post(path, {"from_seq": 2})
        assert status == 200 and len(body["cancelled"]) == 2
        status, page = await mei.get(f"/api/console/records/customers/{customer_id}")
        [shown] = page["series"]
        assert shown["status"] == "cancelled" and shown["upcoming"] == 1  # visit 1 stays
        assert [v["booking"]["status"] for v in shown["visits"]] == ["confirmed", "cancelled", "cancelled"]


async def test_the_note_given_with_the_first_booking_is_on_every_visit(services: Services, clock: FixedClock) -> None:
    """ "Same as last time" (products, blade) said yes to while booking the first visit: staff see
    that note on every visit of the series, those booked at once, the one booked later as its day
    opened and the one the customer chose from buttons; the day view and the customer page show it."""
    customer_id, pet_id = await _customer(services, "qian")
    for staff in ("xiaomei", "ajie"):  # the 3rd Monday nobody works: that visit waits for a choice
        third = MON + timedelta(weeks=2)
        await services.bookings.add_time_off(
            "pawspa", staff, at(third, "00:00"), at(third, "23:55"), Actor.staff("boss")
        )
    first = await _book(services, at(MON, "10:00"), customer_id, pet_id)
    note = "上次（11月2日）：沐浴露 燕麦低敏；剃刀 7号 <b>"
    assert await note_on_booking(services.db, clock, "pawspa", first.id, customer_id, note, Actor.customer(customer_id))
    reply = await usecase.continue_series(services.bookings, first, Recurrence(1, "week", 6), "zh")
    choice = reply.messages[-1]
    await usecase.answer_button(services.bookings, choice.buttons[0].payload, customer_id, "zh")
    other, _ = await _customer(services, "sun")  # a booking without a note shows none
    plain = await _book(services, at(MON, "14:00"), other)
    clock.set(clock.now() + timedelta(days=14))  # visits 5 and 6 come inside the horizon
    assert await usecase.extend(services.bookings) >= 1
    mine = await _bookings(services, customer_id)
    assert len(mine) == 6 and [b.notes for b in mine] == [note] * 6

    async with console_staff(services, ("mei", "pawspa")) as (mei,):
        _, page = await mei.get(f"/api/console/day?shop=pawspa&date={MON.isoformat()}")
        assert [x["notes"] for x in page["bookings"] if x["id"] == plain.id] == [""]
        for b in mine:
            day = b.start_at.astimezone(SHANGHAI).date().isoformat()
            status, page = await mei.get(f"/api/console/day?shop=pawspa&date={day}")
            assert status == 200
            assert [x["notes"] for x in page["bookings"] if x["id"] == b.id] == [note]
        status, records_page = await mei.get(f"/api/console/records/customers/{customer_id}")
        assert {r["notes"] for r in records_page["bookings"]} == {note}


async def test_deleting_the_customer_deletes_their_series(services: Services, clock: FixedClock) -> None:
    customer_id, pet_id = await _customer(services, "feng")
    first = await _book(services, at(MON, "10:00"), customer_id, pet_id)
    await usecase.continue_series(services.bookings, first, WEEKLY, "zh")
    await delete_customer(services.db, "pawspa", customer_id, Actor.staff("boss"), clock.now())
    async with services.db.reading() as s:
        assert list(await s.scalars(select(BookingSeries))) == []
        assert list(await s.scalars(select(SeriesVisit))) == []
    assert await usecase.extend(services.bookings) == 0


async def test_inside_the_turns_unit_of_work_it_commits_or_rolls_back_with_it(
    services: Services, clock: FixedClock
) -> None:
    """The engine calls the hook inside the turn's unit of work: the visits commit with the turn,
    and a turn that fails leaves no series and no visit behind."""
    customer_id, pet_id = await _customer(services, "chen")
    other, _ = await _customer(services, "han")
    await _book(services, at(MON + timedelta(weeks=1), "10:00"), other)  # a clash inside the turn too
    async with services.db.unit_of_work():
        first = await _book(services, at(MON, "10:00"), customer_id, pet_id)
        reply = await usecase.continue_series(services.bookings, first, Recurrence(1, "week", 3), "zh")
    assert [hhmm(b.start_at) for b in await _bookings(services, customer_id)] == ["10:00", "11:30", "10:00"]
    assert reply.series_id is not None

    class TurnFailed(Exception):
        pass

    with pytest.raises(TurnFailed):
        async with services.db.unit_of_work():
            again = await _book(services, at(MON, "15:00"), customer_id, pet_id)
            await usecase.continue_series(services.bookings, again, WEEKLY, "zh")
            raise TurnFailed
    assert len(await _bookings(services, customer_id)) == 3
    async with services.db.reading() as s:
        assert len(list(await s.scalars(select(BookingSeries)))) == 1
    assert await overlaps_in_database(services) == []


# ------------------------------------------------------------------ moving a whole series (staff)

SAT1, SAT2, SAT3 = date(2026, 11, 28), date(2026, 12, 5), date(2026, 12, 12)


async def _weekly_bath(services: Services) -> tuple[int, int]:
    """Ann's weekly small-dog bath, three Saturdays at 10:00; on the third Saturday both groomers
    of small dogs are already busy at 14:00."""
    await CollectingChannel(services.engine, "pawspa", user="ann", channel="web").push("hello")
    ann = await services.customers.identify("pawspa", "web", "ann", display_name="Ann")
    pet = await services.customers.add_pet(ann.id, name="Lucky", species="dog", size="small")
    for groomer in ("xiaomei", "ajie"):
        taken = await services.bookings.book(
            BookingRequest("pawspa", "dog_bath_small", at(SAT3, "14:00"), staff_id=groomer), Actor.staff("mei")
        )
        assert isinstance(taken, Booked)
    first = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(SAT1, "10:00"), customer_id=ann.id, pet_id=pet.id),
        Actor.staff("mei"),
    )
    assert isinstance(first, Booked)
    started = await SeriesService(services.bookings).start(
        "pawspa", first.booking.id, Recurrence(1, "week", count=3), Actor.staff("mei")
    )
    assert [v.outcome for v in started.visits] == ["booked", "booked", "booked"]
    return ann.id, started.series.id


async def _starts(services: Services, series_id: int) -> list[str]:
    view = await SeriesService(services.bookings).get("pawspa", series_id)
    assert view is not None
    return [v.booking.start.astimezone(SHANGHAI).strftime("%m-%d %H:%M") for v in view.visits if v.booking is not None]


async def test_moving_a_series_with_a_clash_moves_nothing_and_names_it(services: Services) -> None:
    ann, series_id = await _weekly_bath(services)
    moved = await usecase.move_rest(services.bookings, "pawspa", series_id, Actor.staff("mei"), local_time="14:00")
    assert not moved.applied
    assert [(v.seq, v.outcome) for v in moved.visits] == [(1, "moved"), (2, "moved"), (3, "clash")]
    [clash] = moved.clashes
    assert clash.to_start == at(SAT3, "14:00") and clash.alternatives  # the nearest free starts that day
    assert all(a.astimezone(SHANGHAI).date() == SAT3 for a in clash.alternatives)
    assert [hhmm(a) for a in clash.alternatives] == ["15:30", "12:30", "16:00"]  # nearest first (bath 60 + buffer)
    assert await _starts(services, series_id) == ["11-28 10:00", "12-05 10:00", "12-12 10:00"]  # nothing half-done
    async with services.db.reading() as s:
        told = [m for m in await s.scalars(select(OutboxMessage)) if m.body.get("series_moved")]
    assert told == []

    pick = clash.alternatives[0]  # staff choose an alternative for the clashing visit
    done = await usecase.move_rest(
        services.bookings, "pawspa", series_id, Actor.staff("mei"), local_time="14:00", choices={3: pick}
    )
    assert done.applied and [v.outcome for v in done.visits] == ["moved", "moved", "moved"]
    assert await _starts(services, series_id) == ["11-28 14:00", "12-05 14:00", f"12-12 {hhmm(pick)}"]
    assert await overlaps_in_database(services) == []
    view = await SeriesService(services.bookings).get("pawspa", series_id)
    assert view is not None and view.local_time == "14:00"
    async with services.db.reading() as s:
        told = [m for m in await s.scalars(select(OutboxMessage)) if m.body.get("series_moved")]
        events = list(await s.scalars(select(AuditEvent).where(AuditEvent.action == "series.moved")))
    assert len(told) == 1 and told[0].external_id == "ann" and told[0].body["text"].count("\n") == 4
    [event] = events
    assert (event.customer_id, event.subject_id, event.actor_id) == (ann, series_id, "mei")
    assert event.details["before"] == {"weekday": 5, "time": "10:00"}
    assert event.details["after"] == {"weekday": 5, "time": "14:00"} and event.details["moved"] == [1, 2, 3]


async def test_keep_the_clashing_visit_and_move_to_another_weekday(services: Services) -> None:
    _ann, series_id = await _weekly_bath(services)
    kept = await usecase.move_rest(
        services.bookings, "pawspa", series_id, Actor.staff("mei"), local_time="14:00", keep_clashing=True
    )
    assert kept.applied and [v.outcome for v in kept.visits] == ["moved", "moved", "kept"]
    assert await _starts(services, series_id) == ["11-28 14:00", "12-05 14:00", "12-12 10:00"]

    sunday = await usecase.move_rest(services.bookings, "pawspa", series_id, Actor.staff("mei"), weekday=6)
    assert sunday.applied
    assert await _starts(services, series_id) == ["11-29 14:00", "12-06 14:00", "12-13 14:00"]
    assert await overlaps_in_database(services) == []
    with pytest.raises(ValueError):
        await usecase.move_rest(services.bookings, "pawspa", series_id, Actor.staff("mei"), local_time="25:00")
    with pytest.raises(usecase.SeriesError):
        await usecase.move_rest(services.bookings, "clearsight", series_id, Actor.staff("wang"), local_time="11:00")


async def test_console_moves_a_series_or_names_each_clash(services: Services) -> None:
    _ann, series_id = await _weekly_bath(services)
    path = f"/api/console/records/series/{series_id}/move"
    async with console_staff(services, ("mei", "pawspa"), ("wang", "clearsight")) as (mei, wang):
        assert (await wang.post(path, {"time": "14:00"}))[0] == 403  # another shop's series
        assert (await mei.post(path, {"time": "14:00"}, csrf=False))[0] == 403
        for bad_body, field in (({"weekday": 7}, "weekday"), ({}, "time"), ({"time": "2pm"}, "time")):
            status, body = await mei.post(path, bad_body)
            assert status == 400 and body["field"] == field, bad_body
        status, body = await mei.post(path, {"time": "14:00"})
        assert status == 409 and body["applied"] is False
        assert [(v["seq"], v["outcome"]) for v in body["visits"]] == [(1, "moved"), (2, "moved"), (3, "clash")]
        clash = body["visits"][2]
        assert clash["to"].startswith("2026-12-12T14:00") and clash["alternatives"][0].startswith("2026-12-12T15:30")
        assert await _starts(services, series_id) == ["11-28 10:00", "12-05 10:00", "12-12 10:00"]
        status, body = await mei.post(path, {"time": "14:00", "choices": {"3": clash["alternatives"][0]}})
        assert status == 200 and body["applied"] is True
        assert await _starts(services, series_id) == ["11-28 14:00", "12-05 14:00", "12-12 15:30"]
        assert (await mei.post("/api/console/records/series/99999/move", {"time": "11:00"}))[0] == 404
