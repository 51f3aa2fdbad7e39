"""Reminders: planned in the shop's wall-clock time, replaced on reschedule, dropped on cancel,
queued exactly once across restarts and processes, and answerable from the chat."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from bot.scheduler import queue_reminders
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import AppConfig, ReminderRules
from core.messages import OutgoingMessage
from core.models import OutboxMessage, Reminder, ReminderStatus
from core.reminders import plan_reminders
from core.results import Actor, Booked
from tests.helpers import MON, WED, at, shows
from tests.support.collecting import CollectingChannel

BERLIN = ZoneInfo("Europe/Berlin")
SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = ReminderRules.model_validate(
    {"day_before": "18:00", "same_day_before_min": 120, "morning_at": "09:00", "quiet_hours": "21:00-08:30"}
)


def local(day: date, hhmm: str, tz: ZoneInfo) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=tz).astimezone(UTC)


def planned(visit: datetime, tz: ZoneInfo, now: datetime, closed: tuple[int, ...] = ()) -> dict[str, str]:
    plan = plan_reminders(visit, tz, RULES, lambda d: d.weekday() not in closed, now)
    return {p.kind: p.due_at.astimezone(tz).strftime("%m-%d %H:%M") for p in plan}


def test_day_before_and_same_day() -> None:
    now = local(date(2026, 11, 20), "12:00", SHANGHAI)
    assert planned(local(MON, "10:00", SHANGHAI), SHANGHAI, now) == {
        "day_before": "11-22 18:00",
        "same_day": "11-23 08:30",
    }
    assert planned(local(MON, "15:00", SHANGHAI), SHANGHAI, now) == {
        "day_before": "11-22 18:00",
        "same_day": "11-23 09:00",
    }


def test_day_before_skips_back_over_closed_days() -> None:
    now = local(date(2026, 11, 20), "12:00", SHANGHAI)
    # Visit on Wednesday; the shop is closed on Tuesdays: the reminder goes out Monday 18:00.
    assert planned(local(WED, "15:00", SHANGHAI), SHANGHAI, now, closed=(1,))["day_before"] == "11-23 18:00"


def test_reminders_already_due_are_not_planned() -> None:
    now = local(date(2026, 11, 22), "19:00", SHANGHAI)
    assert planned(local(MON, "15:00", SHANGHAI), SHANGHAI, now) == {"same_day": "11-23 09:00"}
    late = local(MON, "14:30", SHANGHAI)
    assert planned(local(MON, "15:00", SHANGHAI), SHANGHAI, late) == {}


@pytest.mark.parametrize(
    ("visit_day", "utc_hour"),
    [(date(2026, 3, 29), 17), (date(2026, 3, 30), 16), (date(2026, 10, 25), 16), (date(2026, 10, 26), 17)],
)
def test_day_before_keeps_its_wall_clock_time_across_dst(visit_day: date, utc_hour: int) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    plan = plan_reminders(local(visit_day, "10:00", BERLIN), BERLIN, RULES, lambda d: True, now)
    day_before = next(p for p in plan if p.kind == "day_before")
    assert day_before.due_at.astimezone(BERLIN).strftime("%H:%M") == "18:00"
    assert day_before.due_at.hour == utc_hour  # the same wall time is another UTC hour


# ----------------------------------------------------------------------------- with a database


async def _chat_booking(services: Services, user: str = "wang", hhmm: str = "10:00") -> tuple[CollectingChannel, int]:
    chat = CollectingChannel(services.engine, "clearsight", user=user)
    await chat.push("你好")  # the customer now has a chat to be reminded in
    customer = await services.customers.identify("clearsight", "test", user)
    held = await services.bookings.hold(
        BookingRequest("clearsight", "adult_exam", at(MON, hhmm), customer_id=customer.id), Actor.customer(customer.id)
    )
    assert isinstance(held, Booked)
    assert isinstance(
        await services.bookings.confirm("clearsight", held.booking.id, Actor.customer(customer.id)), Booked
    )
    return chat, held.booking.id


async def _reminders(services: Services, booking_id: int) -> dict[str, tuple[str, str]]:
    async with services.db.reading() as s:
        rows = await s.scalars(select(Reminder).where(Reminder.booking_id == booking_id).order_by(Reminder.id))
        return {
            f"{r.kind}@{r.for_start.astimezone(SHANGHAI):%H:%M}": (
                r.due_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"),
                r.status.value,
            )
            for r in rows
        }


async def _queued(services: Services) -> list[OutboxMessage]:
    async with services.db.reading() as s:
        return list(await s.scalars(select(OutboxMessage).where(OutboxMessage.kind.in_(("reminder", "notice")))))


async def test_booking_plans_reminders_and_they_are_queued_once(services: Services, clock: FixedClock) -> None:
    chat, booking_id = await _chat_booking(services)
    assert await _reminders(services, booking_id) == {
        "day_before@10:00": ("11-22 18:00", "pending"),
        "same_day@10:00": ("11-23 08:00", "pending"),
    }
    assert await services.reminders.tick() == 0  # nothing due yet
    clock.set(at(MON, "00:00") - timedelta(hours=5, minutes=59))  # Sunday 18:01 in Shanghai
    assert await services.reminders.tick() == 1
    assert await services.reminders.tick() == 0  # never twice
    [row] = await _queued(services)
    message = OutgoingMessage.from_json(row.body)
    assert shows("reminder.day_before", message.text) and "11月23日（周一）10:00" in message.text
    assert [b.payload for b in message.buttons] == [f"rc:{booking_id}", f"rr:{booking_id}", f"rx:{booking_id}"]
    assert (row.channel, row.external_id) == ("test", "wang")
    # The customer taps "I'll be there": thanked, and the shop sees it in the audit trail.
    await chat.push(message.buttons[0].label, payload=message.buttons[0].payload)
    assert shows("reminder.thanks", chat.text)
    assert (await services.bookings.history(booking_id))[-1].action == "customer_confirmed"


async def test_reschedule_replaces_and_cancel_drops(services: Services, clock: FixedClock) -> None:
    _, booking_id = await _chat_booking(services)
    moved = await services.bookings.reschedule("clearsight", booking_id, at(MON, "15:00"), Actor.customer(1))
    assert isinstance(moved, Booked)
    assert await _reminders(services, booking_id) == {
        "day_before@15:00": ("11-22 18:00", "pending"),
        "same_day@15:00": ("11-23 09:00", "pending"),
    }
    assert isinstance(await services.bookings.cancel("clearsight", booking_id, Actor.customer(1)), Booked)
    assert {status for _, status in (await _reminders(services, booking_id)).values()} == {"cancelled"}
    clock.set(at(MON, "09:30"))
    await services.reminders.tick()
    assert await _queued(services) == []  # nothing for a cancelled booking


async def test_reminders_survive_a_restart(services: Services, demo_config: AppConfig, clock: FixedClock) -> None:
    _, booking_id = await _chat_booking(services)
    url = services.db.url.render_as_string(hide_password=False)
    await services.close()  # the server stops before anything is due
    clock.set(at(MON, "08:10"))
    restarted = await bootstrap(demo_config, clock=clock, database_url=url, migrate=False)
    try:
        assert await restarted.reminders.tick() == 2  # both were due while it was down
        statuses = await _reminders(restarted, booking_id)
        assert statuses["same_day@10:00"][1] == "queued"
        # The day-before one is not sent on the day itself ("see you tomorrow" would confuse).
        assert statuses["day_before@10:00"][1] == "skipped"
    finally:
        await restarted.close()


async def test_two_processes_queue_each_reminder_once(
    services: Services, demo_config: AppConfig, clock: FixedClock
) -> None:
    bookings = []
    for i, hhmm in enumerate(("10:00", "10:30", "11:00", "11:30", "14:00", "14:30")):
        bookings.append((await _chat_booking(services, user=f"c{i}", hhmm=hhmm))[1])
    url = services.db.url.render_as_string(hide_password=False)
    other = await bootstrap(demo_config, clock=clock, database_url=url, migrate=False)
    try:
        for moment in (at(MON, "00:00") - timedelta(hours=5, minutes=55), at(MON, "09:05")):  # Sun 18:05, Mon 09:05
            clock.set(moment)
            await asyncio.gather(*(svc.reminders.tick(limit=2) for svc in (services, other) for _ in range(6)))
    finally:
        await other.close()
    sent = Counter(row.body["reminder_id"] for row in await _queued(services))
    per_reminder = list(sent.items())
    # Due by 09:05: six day-before reminders and five same-day ones (the 11:30 visit's is at 09:30).
    assert len(per_reminder) == 11 and all(count == 1 for _, count in per_reminder)


async def test_a_wave_reaches_every_shop_from_its_first_batch(services: Services, clock: FixedClock) -> None:
    """18:00 on Sunday: four clearsight customers and one pawspa customer are all due at once.
    The shops are served round robin, so the first small batch already holds the pawspa
    customer's reminder (they do not wait behind every clearsight one); then the scheduler's
    job queues the rest of the wave, each reminder exactly once."""
    for i, hhmm in enumerate(("10:00", "10:30", "11:00", "11:30")):
        await _chat_booking(services, user=f"c{i}", hhmm=hhmm)
    chat = CollectingChannel(services.engine, "pawspa", user="li")
    await chat.push("你好")
    customer = await services.customers.identify("pawspa", "test", "li")
    booked = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "10:00"), customer_id=customer.id),
        Actor.customer(customer.id),
    )
    assert isinstance(booked, Booked) and booked.booking.status.value == "confirmed"
    clock.set(at(MON, "00:00") - timedelta(hours=5, minutes=55))  # Sunday 18:05 in Shanghai
    assert await services.reminders.tick(limit=2) == 2
    assert sorted(row.shop_id for row in await _queued(services)) == ["clearsight", "pawspa"]
    await queue_reminders(services)  # what the scheduler runs every second
    queued = await _queued(services)
    assert sorted(row.shop_id for row in queued) == ["clearsight"] * 4 + ["pawspa"]
    assert set(Counter(row.body["reminder_id"] for row in queued).values()) == {1}
    assert await services.reminders.drain(2) == 0  # nothing left, nothing twice


async def test_staff_actions_tell_the_customer_at_once(services: Services) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user="li")
    await chat.push("你好")
    customer = await services.customers.identify("pawspa", "test", "li")
    pending = await services.bookings.book(
        BookingRequest("pawspa", "grooming", at(MON, "10:00"), customer_id=customer.id), Actor.customer(customer.id)
    )
    declined_one = await services.bookings.book(
        BookingRequest("pawspa", "grooming", at(MON, "15:00"), customer_id=customer.id), Actor.customer(customer.id)
    )
    assert isinstance(pending, Booked) and isinstance(declined_one, Booked)
    await services.bookings.approve("pawspa", pending.booking.id, Actor.staff("lin"))
    await services.bookings.decline("pawspa", declined_one.booking.id, Actor.staff("lin"), reason="full")
    await services.reminders.tick()
    bodies = [OutgoingMessage.from_json(r.body).text for r in await _queued(services)]
    kinds = sorted(k for b in bodies for k in ("reminder.confirmation", "reminder.declined") if shows(k, b))
    assert kinds == ["reminder.confirmation", "reminder.declined"]  # the approved one and the declined one


async def test_reminder_buttons_reschedule_and_cancel(services: Services, clock: FixedClock) -> None:
    chat, booking_id = await _chat_booking(services)
    await chat.push("改期", payload=f"rr:{booking_id}")
    assert shows("manage.reschedule_day", chat.text)
    await chat.push("取消", payload=f"rx:{booking_id}")
    assert shows("manage.cancel_confirm", chat.text)
    await chat.press("取消预约")
    booking = await services.bookings.get("clearsight", booking_id)
    assert booking is not None and booking.status.value == "cancelled"
    assert ReminderStatus.CANCELLED.value in {s for _, s in (await _reminders(services, booking_id)).values()}


async def test_completion_sends_follow_up_and_plans_a_rebook_nudge(services: Services, clock: FixedClock) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user="zhao")
    await chat.push("你好")
    customer = await services.customers.identify("pawspa", "test", "zhao")
    pet = await services.customers.add_pet(customer.id, name="旺财", species="dog", size="small")
    booked = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "10:00"), customer_id=customer.id, pet_id=pet.id),
        Actor.customer(customer.id),
    )
    assert isinstance(booked, Booked)
    desk = Actor.staff("xiaomei")
    too_early = await services.bookings.mark_attendance("pawspa", booked.booking.id, "no_show", desk)
    assert not too_early.ok  # not before the start
    clock.set(at(MON, "11:05"))
    done = await services.bookings.mark_attendance("pawspa", booked.booking.id, "completed", desk)
    assert isinstance(done, Booked) and done.booking.status.value == "completed"
    await services.reminders.tick()
    queued = await _queued(services)  # (the rating request of issue 15 is queued beside it)
    [follow_up] = [OutgoingMessage.from_json(r.body) for r in queued if r.body.get("reminder_kind") == "follow_up"]
    assert "旺财今天洗得香香的" in follow_up.text
    plan = await _reminders(services, booked.booking.id)
    assert plan["rebook@10:00"] == ("12-23 10:00", "pending")  # 30 days later, an open day, mid-morning
    clock.set(at(MON, "10:00") + timedelta(days=30, hours=1))
    await services.reminders.tick()
    assert any(shows("reminder.rebook", OutgoingMessage.from_json(r.body).text) for r in await _queued(services))
