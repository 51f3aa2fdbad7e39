"""The application layer (bot/usecases/): the console and the CLI call the same use cases, so
they behave alike: a staff reply never talks over the colleague who has the chat, whichever
door it comes through; time off the wrong way round is refused with the field named; a staff
booking operation (manual booking, cancel, attendance) is one unit of work: when the database
refuses a row half-way, nothing of it is left (no customer, booking, cells, notices, outbox)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from bot.bootstrap import Services
from bot.cli import main
from bot.engine.store import ConversationState
from bot.usecases import Refused, booking_actions, handoff
from bot.usecases.manual_booking import book_for_customer
from bot.usecases.time_off import record_time_off
from core.bookings import BookingRequest
from core.messages import OutgoingMessage
from core.models import (
    Booking,
    BookingEvent,
    BookingStatus,
    ChannelIdentity,
    Customer,
    Occupancy,
    OutboxMessage,
    Reminder,
    TimeOff,
    TranscriptEntry,
)
from core.results import Actor, Booked, Taken
from tests.conftest import CONFIG_PATH, NOW
from tests.support.collecting import CollectingChannel


async def _escalated(services: Services) -> ConversationState:
    chat = CollectingChannel(services.engine, "pawspa", user="cust", channel="web")
    await chat.push("人工")
    [item] = await handoff.waiting(services, "pawspa")
    conv = await handoff.find(services, item.conversation_id)
    assert conv is not None
    return conv


async def _staff_lines(services: Services, text: str) -> tuple[int, int]:
    """(outbox rows, transcript lines) carrying ``text``."""
    async with services.db.reading() as s:
        bodies = list(await s.scalars(select(OutboxMessage.body)))
        lines = await s.scalar(select(func.count()).where(TranscriptEntry.text == text))
    return sum(body.get("text") == text for body in bodies), int(lines or 0)


async def test_a_reply_is_refused_when_a_colleague_has_the_chat(services: Services) -> None:
    conv = await _escalated(services)
    assert await handoff.take(services, conv, handoff.Staff("lily", "Lily")) is None
    refused = await handoff.reply(services, conv, handoff.Staff("ming"), OutgoingMessage("我来回答"))
    assert refused == handoff.Taken("lily")
    assert await _staff_lines(services, "我来回答") == (0, 0)  # nothing reached the customer
    sent = await handoff.reply(services, conv, handoff.Staff("lily"), OutgoingMessage("您好"))
    assert isinstance(sent, int) and await _staff_lines(services, "您好") == (1, 1)


async def test_the_cli_reply_keeps_the_console_guard(
    sqlite_services: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    services = sqlite_services
    conv = await _escalated(services)
    assert await handoff.take(services, conv, handoff.Staff("lily", "Lily")) is None  # in the console
    monkeypatch.setenv("CHATBOOK_DATABASE_URL", services.db.url.render_as_string(hide_password=False))
    args = ["handoff", "reply", "--config", str(CONFIG_PATH), "--staff", "ming", str(conv.id), "我来回答"]
    assert await asyncio.to_thread(main, args) == 1
    assert f"#{conv.id} is taken by lily" in capsys.readouterr().err
    assert await _staff_lines(services, "我来回答") == (0, 0)
    mine = ["handoff", "reply", "--config", str(CONFIG_PATH), "--staff", "lily", str(conv.id), "马上为您查"]
    assert await asyncio.to_thread(main, mine) == 0  # the one who has the chat may go on from the CLI
    assert await _staff_lines(services, "马上为您查") == (1, 1)


async def test_time_off_that_ends_before_it_starts_is_refused_and_not_recorded(services: Services) -> None:
    with pytest.raises(Refused) as refused:
        await record_time_off(services, "pawspa", "xiaomei", NOW + timedelta(hours=2), NOW, Actor.staff("desk"))
    assert refused.value.field == "end" and refused.value.code == "bad_range"
    async with services.db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(TimeOff)) == 0


async def test_the_bot_hands_a_chat_to_the_front_desk_unless_told_whom(services: Services) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user="asker", channel="web")
    await chat.push("营业时间是几点？")
    [item] = [i for i in await services.store.recent("pawspa") if i.external_id == "asker"]
    await handoff.hand_to_staff(services.store, item.conversation_id, route=None, reason="faq:vaccines")
    [waiting] = await handoff.waiting(services, "pawspa")
    assert waiting.conversation_id == item.conversation_id
    assert (waiting.route, waiting.reason) == ("front_desk", "faq:vaccines")
    assert await chat.push("还在吗？") == []  # staff have it now: the bot is silent


# ----------------------------------------------------------------------------- one unit of work


REFUSED = (DBAPIError, sqlite3.Error)  # inside a unit of work SQLite's own error comes through as it is


async def _refuse_audit(services: Services, action: str | None) -> None:
    """Make the database refuse the audit row of ``action`` (a broken disk, a bad trigger), or
    (None) stop refusing: a real failure half-way through an operation, no mock."""
    async with services.db.engine.begin() as conn:
        if services.db.dialect == "postgresql":
            await conn.execute(text("DROP TRIGGER IF EXISTS refuse_audit ON booking_events"))
            if action is not None:
                await conn.execute(text(
                    "CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit row refused'; END $$ LANGUAGE plpgsql"
                ))
                await conn.execute(text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON booking_events FOR EACH ROW "
                    f"WHEN (NEW.action = '{action}') EXECUTE FUNCTION refuse_audit()"
                ))
        else:
            await conn.execute(text("DROP TRIGGER IF EXISTS refuse_audit"))
            if action is not None:
                await conn.execute(text(
                    f"CREATE TRIGGER refuse_audit BEFORE INSERT ON booking_events WHEN NEW.action = '{action}' "
                    "BEGIN SELECT RAISE(ABORT, 'audit row refused'); END"
                ))


async def _everything(services: Services) -> dict[str, list[tuple[object, ...]]]:
    """The rows a booking operation may touch, to compare before and after."""
    async with services.db.reading() as s:
        return {
            "customers": [tuple(r) for r in await s.execute(select(Customer.id, Customer.phone))],
            "identities": [tuple(r) for r in await s.execute(select(ChannelIdentity.id))],
            "bookings": [tuple(r) for r in await s.execute(
                select(Booking.id, Booking.status, Booking.start_at, Booking.staff_id).order_by(Booking.id))],
            "cells": [(await s.scalar(select(func.count()).select_from(Occupancy)),)],
            "audit": [tuple(r) for r in await s.execute(select(BookingEvent.id, BookingEvent.action))],
            "reminders": [tuple(r) for r in await s.execute(
                select(Reminder.id, Reminder.kind, Reminder.status).order_by(Reminder.id))],
            "outbox": [tuple(r) for r in await s.execute(select(OutboxMessage.id).order_by(OutboxMessage.id))],
        }


async def _monday_slot(services: Services, service: str = "nail_trim") -> tuple[str, object]:
    monday = NOW.astimezone(services.config.shops["pawspa"].tz).date() + timedelta(days=2)
    slot = (await services.bookings.free_slots("pawspa", service, monday))[0]
    return slot.staff_ids[0], slot.start


async def test_a_manual_booking_that_fails_half_way_leaves_no_customer_and_no_booking(services: Services) -> None:
    staff, start = await _monday_slot(services)
    assert isinstance(start, type(NOW))
    before = await _everything(services)
    await _refuse_audit(services, "booked")  # the customer is made, the booking placed, then its audit row fails
    with pytest.raises(REFUSED):
        await book_for_customer(services, "pawspa", "nail_trim", start, Actor.staff("lily"),
                                name="Walk-in Wang", phone="+86 138 0000 2222", staff_id=staff)
    assert await _everything(services) == before  # no customer, identity, booking, cells or notices
    await _refuse_audit(services, None)
    made = await book_for_customer(services, "pawspa", "nail_trim", start, Actor.staff("lily"),
                                   name="Walk-in Wang", phone="+86 138 0000 2222", staff_id=staff)
    assert isinstance(made, Booked) and made.booking.status == BookingStatus.CONFIRMED
    again = await book_for_customer(services, "pawspa", "nail_trim", start, Actor.staff("lily"),
                                    name="Walk-in Li", phone="+86 138 0000 3333", staff_id=staff)
    assert isinstance(again, Taken)  # the slot is gone now: and Li was not left behind as a customer
    after = await _everything(services)
    assert len(after["customers"]) == len(before["customers"]) + 1
    assert ("+86 138 0000 3333",) not in [row[1:] for row in after["customers"]]


async def test_a_staff_cancel_or_completion_that_fails_half_way_changes_nothing(services: Services) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user="regular", channel="web")
    await chat.push("你好")  # a customer with a chat: cancelling tells them, completing asks for stars
    customer = await services.customers.identify("pawspa", "web", "regular")
    booked = []
    for service in ("nail_trim", "dog_bath_small"):
        staff, start = await _monday_slot(services, service)
        assert isinstance(start, type(NOW))
        made = await services.bookings.book(
            BookingRequest("pawspa", service, start, staff_id=staff, customer_id=customer.id), Actor.staff("lily")
        )
        assert isinstance(made, Booked)
        booked.append(made.booking.id)
    cancel_me, complete_me = booked
    for action, operation in (
        ("cancelled", booking_actions.cancel(services, "pawspa", cancel_me, Actor.staff("lily"), "sick")),
        ("completed", booking_actions.mark_attendance(services, "pawspa", complete_me, "completed",
                                                      Actor.staff("lily"))),
    ):
        before = await _everything(services)
        await _refuse_audit(services, action)
        with pytest.raises(REFUSED):
            await operation
        assert await _everything(services) == before, action  # status, cells, reminders, outbox: as they were
    await _refuse_audit(services, None)
    assert isinstance(await booking_actions.cancel(services, "pawspa", cancel_me, Actor.staff("lily")), Booked)
    done = await booking_actions.mark_attendance(services, "pawspa", complete_me, "completed", Actor.staff("lily"))
    assert isinstance(done, Booked) and done.booking.status == BookingStatus.COMPLETED
    after = await _everything(services)
    kinds = {(row[1], row[2]) for row in after["reminders"]}
    assert ("cancelled", "pending") in kinds  # the customer is told of the cancellation...
    assert len(after["outbox"]) > len(before["outbox"])  # ...and asked for stars, with the change itself
