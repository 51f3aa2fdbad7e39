"""Helpers shared by the booking tests: local times and the database-wide invariant check."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from itertools import combinations
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.bootstrap import Services
from core.i18n import texts
from core.models import ACTIVE_STATUSES, Booking, BookingResource

SHANGHAI = ZoneInfo("Asia/Shanghai")
MON, TUE, WED, THU = (date(2026, 11, d) for d in (23, 24, 25, 26))


def at(day: date, hhmm: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


def hhmm(moment: datetime, tz: ZoneInfo = SHANGHAI) -> str:
    return moment.astimezone(tz).strftime("%H:%M")


async def overlaps_in_database(services: Services) -> list[str]:
    """Every pair of active bookings that collide on a staff member or a resource unit."""
    now = services.clock.now()
    problems = []
    async with services.db.reading() as s:
        rows = list(await s.scalars(select(Booking).where(Booking.status.in_(ACTIVE_STATUSES))))
        units = {(r.booking_id, r.resource_id): r.unit for r in await s.scalars(select(BookingResource))}
    live = [b for b in rows if b.hold_expires_at is None or b.hold_expires_at > now]
    for a, b in combinations(live, 2):
        if a.shop_id != b.shop_id or not (a.start_at < b.end_at and b.start_at < a.end_at):
            continue
        if a.staff_id is not None and a.staff_id == b.staff_id:
            problems.append(f"staff {a.staff_id}: {a.code} and {b.code}")
        for (booking_id, resource_id), unit in units.items():
            if booking_id == a.id and units.get((b.id, resource_id)) == unit:
                problems.append(f"{resource_id}#{unit}: {a.code} and {b.code}")
    return problems


def shows(key: str, text: str, lang: str = "zh") -> bool:
    """Whether ``text`` contains the catalog text of ``key`` (core/locales) with any values filled
    in: tests name the locale key instead of copying its words, so rewording a text breaks no test."""
    template = str(texts(lang).entries[key])
    pattern = ".+?".join(re.escape(part) for part in re.split(r"\{[^{}]*\}", template))
    return re.search(pattern, text, re.S) is not None
