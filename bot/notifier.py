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

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.notice_texts import NOTICES, compose, compose_shop_change, notice_facts
from channels.wechat_templates import notice_kind
from core.bookings import BookingService
from core.calendar import CalendarService, absolute, booking_calendar_path
from core.clock import Clock
from core.config import AppConfig
from core.db import Database, Prepared, UnitOfWork
from core.i18n import texts
from core.models import (
    Booking,
    BookingStatus,
    Conversation,
    OutboxMessage,
    Pet,
    Reminder,
    ReminderStatus,
)
from core.outbox import OUTBOX_INSERT, TRANSCRIPT_INSERT, outbox_row
from core.results import BookingView

log = logging.getLogger(__name__)
TOO_LATE = timedelta(minutes=30)  # a reminder this close to the visit (server was down) is skipped
PLAN_MAX = 20_000  # reminders one drain pass lines up (ids only); a larger wave takes more passes
MAX_PASSES = 1000
Queued = tuple[int, dict[str, Any], dict[str, Any]]  # (reminder id, outbox row, transcript line)

_REMINDERS = cast(Table, Reminder.__table__)
_BOOKINGS = cast(Table, Booking.__table__)
_OUTBOX = cast(Table, OutboxMessage.__table__)
_CONVERSATIONS = cast(Table, Conversation.__table__)
_QUEUED = Prepared(
    update(_REMINDERS)
    .where(_REMINDERS.c.id == bindparam("b_id"))
    .values(status=ReminderStatus.QUEUED, queued_at=bindparam("b_now"), outbox_id=bindparam("b_outbox"))
)
_CLOSED = Prepared(
    update(_REMINDERS)
    .where(_REMINDERS.c.id == bindparam("b_id"))
    .values(status=bindparam("b_status"), note=bindparam("b_note"))
)


class Chat(NamedTuple):
    id: int
    channel: str
    external_id: str
    language: str


class BookingRow(NamedTuple):
    """The columns of a booking a reminder is checked against and its notice shows."""

    id: int
    shop_id: str
    code: str
    customer_id: int | None
    pet_id: int | None
    service_id: str
    staff_id: str | None
    start_at: datetime
    status: BookingStatus


_BOOKING_ROWS = select(*(_BOOKINGS.c[name] for name in BookingRow._fields))


class DueReminder(NamedTuple):
    id: int
    booking_id: int
    kind: str
    for_start: datetime


def _round_robin(now: datetime, limit: int, *, lock: bool = False) -> Any:
    """The due reminders' ids, round robin over the shops (each one's oldest first): the first
    reminder of every shop, then the second of every shop... A wave of many shops' reminders
    then reaches every shop's channel (each with its own rate limit) from the first batch on,
    instead of the last shops' reminders waiting until every earlier shop's were queued.
    ``lock`` (PostgreSQL): the rows taken FOR UPDATE SKIP LOCKED, so concurrent claims in several
    processes get different reminders (the ranking is a subquery: locking applies to the rows)."""
    rank = func.row_number().over(partition_by=_BOOKINGS.c.shop_id, order_by=(_REMINDERS.c.due_at, _REMINDERS.c.id))
    pending = (_REMINDERS.c.status == ReminderStatus.PENDING, _REMINDERS.c.due_at <= now)
    ranked = (
        select(_REMINDERS.c.id, rank.label("rank"))
        .select_from(_REMINDERS.outerjoin(_BOOKINGS, _BOOKINGS.c.id == _REMINDERS.c.booking_id))
        .where(*pending)
        .subquery()
    )
    query = select(_REMINDERS.c.id).join(ranked, ranked.c.id == _REMINDERS.c.id)
    query = query.where(*pending).order_by(ranked.c.rank, _REMINDERS.c.due_at, _REMINDERS.c.id).limit(limit)
    return query.with_for_update(skip_locked=True, of=_REMINDERS) if lock else query


class ReminderDispatcher:
    def __init__(self, db: Database, config: AppConfig, clock: Clock, bookings: BookingService) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.bookings = bookings
        self.metrics: Any = None  # bot/metrics.py Metrics (bootstrap sets it): reminders queued per shop
        self.calendar = CalendarService(db, config, clock)
        self._secret: bytes | None = None

    async def _ensure_secret(self) -> None:
        if self.config.server.public_url and self._secret is None:  # before the batch's write transaction
            self._secret = await self.calendar.secret()

    async def tick(self, limit: int = 100) -> int:
        """Queue up to ``limit`` due reminders (round robin over the shops) in one transaction;
        returns how many rows were settled."""
        await self._ensure_secret()
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            claim = _round_robin(now, limit, lock=self.db.dialect == "postgresql")
            ids = [int(i) for i in (await uow.conn.execute(claim)).scalars()]
            return await self._settle_batch(uow, ids, now) if ids else 0

    async def drain(self, batch: int, after_batch: Callable[[int], object] | None = None) -> int:
        """Queue every due reminder, ``batch`` per transaction: the due ids are lined up once
        (round robin over the shops, one statement), then each batch takes those
        of its ids still pending (another process may have taken some: it skips them). Passes
        repeat until a pass finds nothing it can take (reminders that came due meanwhile are
        in the next pass). ``after_batch(n)`` runs after each batch's commit."""
        total = 0
        for _ in range(MAX_PASSES):
            await self._ensure_secret()
            now = self.clock.now()
            async with self.db.unit_of_work() as uow:  # SQLite: one inline call, as short as a batch's
                plan = [int(i) for i in (await uow.conn.execute(_round_robin(now, PLAN_MAX))).scalars()]
            taken = 0
            for start in range(0, len(plan), batch):
                n = await self.queue(plan[start : start + batch])
                taken += n
                if after_batch is not None:
                    after_batch(n)
                # Let the rest of the loop run between batches: on SQLite a batch never suspends
                # (inline writes), so without this the delivery loop could not even claim the
                # first batch's messages until the whole wave was queued.
                await asyncio.sleep(0)
            total += taken
            if not taken:
                return total
        return total

    async def queue(self, ids: Sequence[int]) -> int:
        """One batch: the given reminders that are still pending and due, settled in ONE
        transaction (queued to the outbox, or cancelled / skipped); returns how many."""
        if not ids:
            return 0
        await self._ensure_secret()
        now = self.clock.now()
        async with self.db.unit_of_work() as uow:
            return await self._settle_batch(uow, ids, now)

    async def _settle_batch(self, uow: UnitOfWork, ids: Sequence[int], now: datetime) -> int:
        """The pending due rows among ``ids`` (FOR UPDATE SKIP LOCKED on PostgreSQL), in the order
        given, each checked against its booking and turned into an outbox row or closed."""
        due = select(_REMINDERS.c.id, _REMINDERS.c.booking_id, _REMINDERS.c.kind, _REMINDERS.c.for_start).where(
            _REMINDERS.c.id.in_(list(ids)), _REMINDERS.c.status == ReminderStatus.PENDING, _REMINDERS.c.due_at <= now
        )
        if self.db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        found = {
            int(r.id): DueReminder(int(r.id), int(r.booking_id), r.kind, r.for_start)
            for r in await uow.conn.execute(due)
        }
        if not found:
            return 0
        rows = [found[i] for i in ids if i in found]
        async with self.db.reading() as s:  # the unit's own connection: a session for the ORM loads
            # The batch's bookings, chats and pets in three queries (not three per reminder).
            booking_ids = {r.booking_id for r in rows}
            bookings: dict[int, Booking | BookingRow]
            if any(r.kind == "shop_change" for r in rows):  # only its message shows the add-ons: ORM objects
                bookings = {b.id: b for b in await s.scalars(select(Booking).where(Booking.id.in_(booking_ids)))}
            else:  # plain rows of the columns a notice reads (no ORM identity map, no instance state)
                found_rows = await uow.conn.execute(_BOOKING_ROWS.where(_BOOKINGS.c.id.in_(booking_ids)))
                bookings = {int(b.id): BookingRow(*b) for b in found_rows}
            chats = await self._chats(uow, bookings.values())
            pet_ids = {b.pet_id for b in bookings.values() if b.pet_id}
            pets = dict(list(await s.execute(select(Pet.id, Pet.name).where(Pet.id.in_(pet_ids))))) if pet_ids else {}
            queued: list[Queued] = []
            closed: list[dict[str, Any]] = []
            for reminder in rows:
                settled = await self._settle(s, reminder, bookings, chats, pets, closed)
                if settled is not None:
                    queued.append((reminder.id, *settled))
        if queued:
            await self._queue(uow, queued, now)
        await uow.run_many(_CLOSED, closed)
        return len(rows)

    @staticmethod
    async def _chats(uow: UnitOfWork, bookings: Any) -> dict[tuple[str, int], Chat]:
        """The most recently active chat per (shop, customer) of these bookings."""
        customers = {b.customer_id for b in bookings if b.customer_id is not None}
        chats: dict[tuple[str, int], Chat] = {}
        if not customers:
            return chats
        c = _CONVERSATIONS.c
        found = await uow.conn.execute(
            select(c.id, c.shop_id, c.customer_id, c.channel, c.external_id, c.language)
            .where(c.customer_id.in_(customers))
            .order_by(c.last_inbound_at.desc().nulls_last(), c.id.desc())
        )
        for row in found:  # the most recently active chat per (shop, customer) comes first
            chats.setdefault(
                (row.shop_id, row.customer_id), Chat(int(row.id), row.channel, row.external_id, row.language)
            )
        return chats

    async def _queue(self, uow: UnitOfWork, queued: list[Queued], now: datetime) -> None:
        """The batch's outbox rows, transcript lines and reminder updates: one executemany each
        (on SQLite's inline connection one prepared sqlite3 call per outbox row, for its id)."""
        outbox_rows = [row for _, row, _ in queued]
        if uow.raw is not None:
            ids = [int((await uow.run(OUTBOX_INSERT, row))[0][0]) for row in outbox_rows]
        else:
            result = await uow.conn.execute(
                insert(_OUTBOX).returning(_OUTBOX.c.id, sort_by_parameter_order=True), outbox_rows
            )
            ids = [int(i) for i in result.scalars()]
        await uow.run_many(TRANSCRIPT_INSERT, [line for _, _, line in queued])
        await uow.run_many(
            _QUEUED,
            [{"b_id": q[0], "b_now": now, "b_outbox": outbox_id} for q, outbox_id in zip(queued, ids, strict=True)],
        )
        if self.metrics is not None:
            for shop_id, n in Counter(row["shop_id"] for row in outbox_rows).items():
                self.metrics.reminders_queued.labels(shop_id).inc(n)

    @staticmethod
    async def _has_upcoming(s: AsyncSession, booking: Booking | BookingRow, now: datetime) -> bool:
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
        reminder: DueReminder,
        bookings: dict[int, Booking | BookingRow],
        chats: dict[tuple[str, int], Chat],
        pets: dict[int, str],
        closed: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The outbox row and transcript line to add; or None, the reminder cancelled or skipped
        (its row's new status and note added to ``closed``)."""

        def close(status: ReminderStatus, note: str) -> None:
            closed.append({"b_id": reminder.id, "b_status": status, "b_note": note})

        now = self.clock.now()
        booking = bookings.get(reminder.booking_id)
        shop = self.config.shop(booking.shop_id) if booking else None
        if booking is None or shop is None:
            close(ReminderStatus.CANCELLED, "booking or shop gone")
            return None
        notice = reminder.kind in NOTICES
        if not notice and (booking.status != BookingStatus.CONFIRMED or booking.start_at != reminder.for_start):
            close(ReminderStatus.CANCELLED, f"booking is {booking.status.value}")
            return None
        if not notice and reminder.kind != "confirmation" and now >= booking.start_at - TOO_LATE:
            close(ReminderStatus.SKIPPED, "too late to be useful")
            return None
        same_day = now.astimezone(shop.tz).date() == booking.start_at.astimezone(shop.tz).date()
        if reminder.kind == "day_before" and same_day:  # "see you tomorrow" on the day itself confuses
            close(ReminderStatus.SKIPPED, "the visit is today (server was down)")
            return None
        if reminder.kind == "rebook" and await self._has_upcoming(s, booking, now):
            close(ReminderStatus.SKIPPED, "already booked again")
            return None
        conversation = chats.get((booking.shop_id, booking.customer_id)) if booking.customer_id is not None else None
        if conversation is None:
            close(ReminderStatus.SKIPPED, "customer has no chat channel: call them")
            log.info("reminder %s for booking %s: no chat channel", reminder.id, booking.code)
            return None
        pet_name = pets.get(booking.pet_id) if booking.pet_id else None
        if reminder.kind == "shop_change":
            assert isinstance(booking, Booking)  # loaded as an ORM object for its add-ons
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
