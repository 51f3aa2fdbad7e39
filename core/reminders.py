"""Reminders: when to remind (a pure plan) and the rows that make it happen exactly once.

Planning is a pure function of the visit time, the shop's time zone and rules, which days the
shop is open, and ``now``. Wall-clock rules are applied in the shop's zone, so a 10:00 visit in
Europe/Berlin gets its 18:00 day-before reminder at 18:00 local on both sides of a DST change.
A reminder whose time has already passed when it is planned is not planned (never sent late
and confusing). Quiet hours move a reminder to the end of the quiet time, or, when that would
be too close to the visit, to just before the quiet time began.

Storage: reminder rows are written in the booking's own transaction: planned on booking and
confirmation (``plan_new``: a new booking or a confirmed hold has none to replace), replaced
on reschedule (``replan``), cancelled on cancel. The notifier (bot/notifier.py) turns a
due row into an outbox message in one transaction, guarded so that only one process can.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.availability import to_utc
from core.config import QuietHours, ReminderRules, ShopConfig
from core.db import UnitOfWork, prepared_insert
from core.models import Booking, Reminder, ReminderStatus

CLOSE_TO_VISIT = timedelta(minutes=30)  # a reminder moved by quiet hours must stay this far ahead
MIN_GAP = timedelta(hours=1)  # a same-day reminder this close after the day-before one is dropped


@dataclass(frozen=True)
class PlannedReminder:
    kind: str  # "confirmation" | "day_before" | "same_day"
    due_at: datetime


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def avoid_quiet(due: datetime, visit: datetime, tz: ZoneInfo, quiet: QuietHours | None) -> datetime:
    """Move ``due`` out of the quiet hours (forward if it stays well before the visit, else back)."""
    if quiet is None:
        return due
    local = due.astimezone(tz)
    if not quiet.contains(local.time()):
        return due
    wraps = quiet.start > quiet.end
    end_day = local.date() + timedelta(days=1) if wraps and local.time() >= quiet.start else local.date()
    forward = to_utc(end_day, _minutes(quiet.end), tz)
    if forward <= visit - CLOSE_TO_VISIT:
        return forward
    start_day = local.date() - timedelta(days=1) if wraps and local.time() < quiet.end else local.date()
    return to_utc(start_day, _minutes(quiet.start), tz) - timedelta(minutes=5)


def plan_reminders(
    visit: datetime,
    tz: ZoneInfo,
    rules: ReminderRules,
    is_open: Callable[[date], bool],
    now: datetime,
    *,
    confirmation: bool = False,
) -> list[PlannedReminder]:
    """The reminders for a visit at ``visit`` (UTC), planned at ``now``."""
    planned: list[PlannedReminder] = []
    if confirmation and rules.confirmation:
        planned.append(PlannedReminder("confirmation", now))
    local_visit = visit.astimezone(tz)
    day_before: datetime | None = None
    if rules.day_before is not None:
        day = local_visit.date() - timedelta(days=1)
        for _ in range(7):  # the last open day before the visit
            if is_open(day):
                break
            day -= timedelta(days=1)
        due = avoid_quiet(to_utc(day, _minutes(rules.day_before), tz), visit, tz, rules.quiet_hours)
        if now < due < visit:
            day_before = due
            planned.append(PlannedReminder("day_before", due))
    same_day: datetime | None = None
    if rules.morning_at is not None and local_visit.time() >= rules.morning_if_visit_after:
        same_day = to_utc(local_visit.date(), _minutes(rules.morning_at), tz)
    elif rules.same_day_before_min is not None:
        same_day = visit - timedelta(minutes=rules.same_day_before_min)
    if same_day is not None:
        same_day = avoid_quiet(same_day, visit, tz, rules.quiet_hours)
        far_enough = day_before is None or same_day - day_before >= MIN_GAP
        if now < same_day < visit and far_enough:
            planned.append(PlannedReminder("same_day", same_day))
    return planned


def rules_for(shop: ShopConfig, service_id: str) -> ReminderRules:
    service = shop.services.get(service_id)
    return service.reminders if service is not None and service.reminders is not None else shop.reminders


async def replan(
    session: AsyncSession, booking: Booking, shop: ShopConfig, now: datetime, *, confirmation: bool = False
) -> list[PlannedReminder]:
    """Replace the booking's pending reminders with a plan for its current time (same transaction)."""
    await session.execute(
        delete(Reminder).where(Reminder.booking_id == booking.id, Reminder.status == ReminderStatus.PENDING)
    )
    planned = plan_reminders(
        booking.start_at,
        shop.tz,
        rules_for(shop, booking.service_id),
        lambda day: bool(shop.hours_on(day)),
        now,
        confirmation=confirmation,
    )
    done = await _existing(session, booking.id, booking.start_at)
    for item in planned:
        if item.kind in done:  # already sent for this very visit time (moved away and back)
            continue
        session.add(
            Reminder(
                booking_id=booking.id,
                kind=item.kind,
                for_start=booking.start_at,
                due_at=item.due_at,
                status=ReminderStatus.PENDING,
                note="",
                created_at=now,
            )
        )
    return planned


_REMINDER_IN = prepared_insert(
    cast(Table, Reminder.__table__), ("booking_id", "kind", "for_start", "due_at", "status", "note", "created_at")
)


async def plan_new(
    uow: UnitOfWork,
    booking_id: int,
    start: datetime,
    service_id: str,
    shop: ShopConfig,
    now: datetime,
    *,
    confirmation: bool = False,
) -> list[PlannedReminder]:
    """The plan of a booking that has no reminder rows yet (just booked, or a hold being
    confirmed: holds never get any), inserted in the unit of work: nothing to replace, so
    no delete and no read first (``replan`` is for bookings that may already have some)."""
    planned = plan_reminders(
        start,
        shop.tz,
        rules_for(shop, service_id),
        lambda day: bool(shop.hours_on(day)),
        now,
        confirmation=confirmation,
    )
    rows = [
        {
            "booking_id": booking_id,
            "kind": item.kind,
            "for_start": start,
            "due_at": item.due_at,
            "status": ReminderStatus.PENDING,
            "note": "",
            "created_at": now,
        }
        for item in planned
    ]
    await uow.run_many(_REMINDER_IN, rows)
    return planned


async def cancel(session: AsyncSession, booking_id: int, reason: str) -> None:
    """Drop a booking's pending reminders (same transaction as the cancellation)."""
    await session.execute(
        update(Reminder)
        .where(Reminder.booking_id == booking_id, Reminder.status == ReminderStatus.PENDING)
        .values(status=ReminderStatus.CANCELLED, note=reason[:200])
        .execution_options(synchronize_session=False)
    )


async def notify(session: AsyncSession, booking: Booking, kind: str, now: datetime) -> None:
    """A one-off notice about a booking (declined, cancelled by the shop), sent at once."""
    if kind in await _existing(session, booking.id, booking.start_at):
        return
    session.add(
        Reminder(
            booking_id=booking.id,
            kind=kind,
            for_start=booking.start_at,
            due_at=now,
            status=ReminderStatus.PENDING,
            note="",
            created_at=now,
        )
    )


async def _existing(session: AsyncSession, booking_id: int, for_start: datetime) -> set[str]:
    rows = await session.scalars(
        select(Reminder.kind).where(Reminder.booking_id == booking_id, Reminder.for_start == for_start)
    )
    return set(rows)


REBOOK_AT = time(10, 0)


async def after_visit(session: AsyncSession, booking: Booking, shop: ShopConfig, now: datetime) -> None:
    """On completion: the service's follow-up now, and a "time for the next one" nudge later."""
    service = shop.services.get(booking.service_id)
    if service is None:
        return
    if service.follow_up is not None:
        await notify(session, booking, "follow_up", now)
    if service.rebook_after_days:
        day = now.astimezone(shop.tz).date() + timedelta(days=service.rebook_after_days)
        for _ in range(14):  # a day the shop is open, so they can book straight away
            if shop.hours_on(day):
                break
            day += timedelta(days=1)
        due = to_utc(day, _minutes(REBOOK_AT), shop.tz)  # mid-morning: inside nobody's quiet hours
        session.add(
            Reminder(
                booking_id=booking.id,
                kind="rebook",
                for_start=booking.start_at,
                due_at=due,
                status=ReminderStatus.PENDING,
                note="",
                created_at=now,
            )
        )

