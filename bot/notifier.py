"""The notifier: due reminder rows become outbox messages, each exactly once (the rows are
planned by core/reminders.py; the texts are bot/notice_texts.py's).

One transaction per batch: due rows are selected (FOR UPDATE SKIP LOCKED on PostgreSQL, so a
second server process takes other rows; SQLite's write lock serialises), each is checked
against its booking (a cancelled or moved booking never gets it), written to the outbox in the
customer's language and channel, and marked queued. The outbox then guarantees delivery.
Reminders carry Confirm / Reschedule / Cancel buttons that the engine understands; a confirmation
carries "add to calendar" (the booking's private .ics, when ``server.public_url`` is set).
Service notices (reminders, booking changes, shop changes, waitlist offers) also carry the facts
a WeChat template shows outside the 48-hour window (``notice_facts``, channels/wechat_templates.py).

Batches are as large as the caller asks (bot/scheduler.py drains a wave in batches of 500, one
transaction each): the booking, chat and pet lookups are one query per batch, not per reminder.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from bot.notice_texts import NOTICES, compose, compose_shop_change, notice_facts
from channels.wechat_templates import notice_kind
from core.bookings import BookingService
from core.calendar import CalendarService, absolute, booking_calendar_path
from core.clock import Clock
from core.config import AppConfig
from core.db import Database
from core.i18n import texts
from core.models import (
    Booking,
    BookingStatus,
    Conversation,
    OutboxMessage,
    Pet,
    Reminder,
    ReminderStatus,
    TranscriptEntry,
)
from core.outbox import outbox_row
from core.results import BookingView

log = logging.getLogger(__name__)
TOO_LATE = timedelta(minutes=30)  # a reminder this close to the visit (server was down) is skipped
Queued = tuple[int, dict[str, Any], dict[str, Any]]  # (reminder id, outbox row, transcript line)


class ReminderDispatcher:
    def __init__(self, db: Database, config: AppConfig, clock: Clock, bookings: BookingService) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.bookings = bookings
        self.metrics: Any = None  # bot/metrics.py Metrics (bootstrap sets it): reminders queued per shop
        self.calendar = CalendarService(db, config, clock)
        self._secret: bytes | None = None

    async def tick(self, limit: int = 100) -> int:
        """Queue every due reminder; returns how many rows were settled."""
        if self.config.server.public_url and self._secret is None:  # before the batch's write transaction
            self._secret = await self.calendar.secret()
        now = self.clock.now()
        async with self.db.transaction() as s:
            due = (
                select(Reminder)
                .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
                .order_by(Reminder.due_at, Reminder.id)
                .limit(limit)
            )
            if self.db.dialect == "postgresql":
                due = due.with_for_update(skip_locked=True)
            rows = list(await s.scalars(due))
            if not rows:
                return 0
            # The batch's bookings, chats and pets in three queries (not three per reminder).
            booking_ids = {r.booking_id for r in rows}
            query = select(Booking).where(Booking.id.in_(booking_ids))
            if not any(r.kind == "shop_change" for r in rows):  # only its message shows the add-ons
                query = query.options(raiseload(Booking.addons), raiseload(Booking.resources))
            bookings = {b.id: b for b in await s.scalars(query)}
            customers = {(b.shop_id, b.customer_id) for b in bookings.values() if b.customer_id is not None}
            chats: dict[tuple[str, int], Conversation] = {}
            if customers:
                found = await s.scalars(
                    select(Conversation)
                    .where(Conversation.customer_id.in_({c for _, c in customers}))
                    .order_by(Conversation.last_inbound_at.desc().nulls_last(), Conversation.id.desc())
                )
                for conv in found:  # the most recently active chat per (shop, customer) comes first
                    chats.setdefault((conv.shop_id, conv.customer_id), conv)
            pet_ids = {b.pet_id for b in bookings.values() if b.pet_id}
            pets = dict(list(await s.execute(select(Pet.id, Pet.name).where(Pet.id.in_(pet_ids))))) if pet_ids else {}
            queued: list[Queued] = []
            for reminder in rows:
                settled = await self._settle(s, reminder, bookings, chats, pets)
                if settled is not None:
                    queued.append((reminder.id, *settled))
            if queued:
                await self._queue(s, queued, now)
            return len(rows)

    async def _queue(self, s: AsyncSession, queued: list[Queued], now: datetime) -> None:
        """The batch's outbox rows, transcript lines and reminder updates: three statements for the
        whole batch (Core executemany, not an ORM object and flush per row)."""
        outbox = cast(Table, OutboxMessage.__table__)  # Core tables: executemany, no ORM objects
        ids = list(
            await s.scalars(
                insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True), [row for _, row, _ in queued]
            )
        )
        await s.execute(insert(cast(Table, TranscriptEntry.__table__)), [line for _, _, line in queued])
        table = cast(Table, Reminder.__table__)
        await s.execute(
            table.update()
            .where(table.c.id == bindparam("reminder"))
            .values(status=ReminderStatus.QUEUED, queued_at=now, outbox_id=bindparam("outbox")),
            [{"reminder": q[0], "outbox": outbox_id} for q, outbox_id in zip(queued, ids, strict=True)],
        )
        if self.metrics is not None:
            for _, row, _ in queued:
                self.metrics.reminders_queued.labels(row["shop_id"]).inc()

    @staticmethod
    async def _has_upcoming(s: AsyncSession, booking: Booking, now: datetime) -> bool:
        if booking.customer_id is None:
            return False
        found = await s.scalar(
            select(Booking.id)
            .where(
                Booking.customer_id == booking.customer_id,
                Booking.shop_id == booking.shop_id,
                Booking.status.in_((BookingStatus.PENDING, BookingStatus.CONFIRMED)),
                Booking.start_at > now,
            )
            .limit(1)
        )
        return found is not None

    async def _settle(
        self,
        s: AsyncSession,
        reminder: Reminder,
        bookings: dict[int, Booking],
        chats: dict[tuple[str, int], Conversation],
        pets: dict[int, str],
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Cancel or skip the reminder (on its row), or: the outbox row and transcript line to add."""
        now = self.clock.now()
        booking = bookings.get(reminder.booking_id)
        shop = self.config.shop(booking.shop_id) if booking else None
        if booking is None or shop is None:
            reminder.status, reminder.note = ReminderStatus.CANCELLED, "booking or shop gone"
            return None
        notice = reminder.kind in NOTICES
        if not notice and (booking.status != BookingStatus.CONFIRMED or booking.start_at != reminder.for_start):
            reminder.status, reminder.note = ReminderStatus.CANCELLED, f"booking is {booking.status.value}"
            return None
        if not notice and reminder.kind != "confirmation" and now >= booking.start_at - TOO_LATE:
            reminder.status, reminder.note = ReminderStatus.SKIPPED, "too late to be useful"
            return None
        same_day = now.astimezone(shop.tz).date() == booking.start_at.astimezone(shop.tz).date()
        if reminder.kind == "day_before" and same_day:  # "see you tomorrow" on the day itself confuses
            reminder.status, reminder.note = ReminderStatus.SKIPPED, "the visit is today (server was down)"
            return None
        if reminder.kind == "rebook" and await self._has_upcoming(s, booking, now):
            reminder.status, reminder.note = ReminderStatus.SKIPPED, "already booked again"
            return None
        conversation = chats.get((booking.shop_id, booking.customer_id)) if booking.customer_id is not None else None
        if conversation is None:
            reminder.status, reminder.note = ReminderStatus.SKIPPED, "customer has no chat channel: call them"
            log.info("reminder %s for booking %s: no chat channel", reminder.id, booking.code)
            return None
        pet_name = pets.get(booking.pet_id) if booking.pet_id else None
        if reminder.kind == "shop_change":
            options = await self.bookings.change_options(booking.shop_id, booking.id)
            message = compose_shop_change(BookingView.of(booking), shop, pet_name, conversation.language, options)
        else:
            message = compose(reminder.kind, booking, shop, pet_name, conversation.language)
        if reminder.kind == "confirmation" and self._secret is not None:  # "add to calendar", as in chat
            url = absolute(self.config, booking_calendar_path(self._secret, booking.shop_id, booking.code))
            message = dataclasses.replace(message, link=(texts(conversation.language).t("calendar.add"), url))
        outbox_kind = "reminder" if not notice else "notice"
        extra: dict[str, Any] = {"reminder_id": reminder.id, "reminder_kind": reminder.kind}
        if notice_kind(outbox_kind, extra) is not None:  # a service notice: the facts a template shows
            extra["notice"] = notice_facts(reminder.kind, booking, shop, pet_name, conversation.language)
        row = outbox_row(
            shop_id=booking.shop_id,
            channel=conversation.channel,
            external_id=conversation.external_id,
            conversation_id=conversation.id,
            message=message,
            now=now,
            kind=outbox_kind,
            extra=extra,
        )
        line = {
            "conversation_id": conversation.id,
            "direction": "out",
            "author": f"bot:{reminder.kind}",
            "text": message.text,
            "payload": message.to_json(),
            "at": now,
        }
        return row, line
