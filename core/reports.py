"""Report figures per shop: attendance per month (the CLI) and the console's Reports page.

no-show rate = no-shows / (completed + no-shows); confirmation rate = bookings whose customer
tapped "I'll be there" / bookings that were sent a reminder. Months are the shop's local months.

``figures`` (the Reports page and its CSV) counts, per local day, ISO week or month of the shop:

- chats: conversations with at least one customer message in the period; converted chats: those
  whose customer made a booking in the same period (any booking that was not a lapsed hold);
  conversion = converted / chats.
- bookings: created in the period and not a lapsed hold, by channel: the chat the customer
  last wrote from before booking (``telegram``, ``wechat``, ``web``...), ``staff`` when staff
  booked it in the console or CLI, ``other`` when the customer has no chat.
- cancellations and reschedules: by the time they happened (audit trail); completed, no-shows,
  reminded and confirmed-by-customer: by the visit's date.
- waitlist: joined (by when) and filled (offer taken, by when); ratings: count, stars, low (<= 2);
  FAQ: questions answered (``faq_answers``) and not answered (``unanswered_questions``).

All SQL is here; the console and the CLI only render.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.availability import to_utc
from core.config import ShopConfig
from core.db import Database, prepared_insert
from core.models import (
    ActorKind,
    Booking,
    BookingEvent,
    BookingStatus,
    Conversation,
    FaqAnswer,
    Rating,
    Reminder,
    ReminderStatus,
    TranscriptEntry,
    UnansweredQuestion,
    WaitlistEntry,
    WaitlistStatus,
)


def _ratio(part: int, whole: int) -> float | None:
    """``part / whole``, None when there is nothing to divide by (shown as "–")."""
    return part / whole if whole else None


@dataclass(frozen=True)
class MonthFigures:
    month: str  # YYYY-MM in the shop's zone
    booked: int
    completed: int
    no_show: int
    cancelled: int
    reminded: int
    confirmed_by_customer: int

    @property
    def no_show_rate(self) -> float | None:
        return _ratio(self.no_show, self.completed + self.no_show)

    @property
    def confirmation_rate(self) -> float | None:
        return _ratio(self.confirmed_by_customer, self.reminded)


async def monthly(db: Database, shop_id: str, shop: ShopConfig) -> list[MonthFigures]:
    async with db.reading() as s:
        bookings = list(
            await s.execute(
                select(Booking.id, Booking.start_at, Booking.status).where(
                    Booking.shop_id == shop_id,
                    Booking.status != BookingStatus.EXPIRED,
                    Booking.status != BookingStatus.HELD,
                )
            )
        )
        reminded, confirmed = await _reminded_and_confirmed(s, Booking.shop_id == shop_id)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for booking_id, start, status in bookings:
        month = start.astimezone(shop.tz).strftime("%Y-%m")
        row = counts[month]
        row["booked"] += 1
        row[status.value] += 1
        row["reminded"] += booking_id in reminded
        row["confirmed"] += booking_id in reminded and booking_id in confirmed
    return [
        MonthFigures(
            month=month,
            booked=row["booked"],
            completed=row["completed"],
            no_show=row["no_show"],
            cancelled=row["cancelled"],
            reminded=row["reminded"],
            confirmed_by_customer=row["confirmed"],
        )
        for month, row in sorted(counts.items())
    ]


# ---------------------------------------------------------------------------------------------- the Reports page

Grain = Literal["day", "week", "month"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month")
LOW_STARS = 2  # as core/ratings.py: this many stars or fewer is a low rating
MAX_PERIODS = 370  # a request for more periods than this (a year of days) is refused at the edge
STAFF_CHANNEL = "staff"
NO_CHANNEL = "other"
_GONE = (BookingStatus.HELD, BookingStatus.EXPIRED)  # never became a booking (or not yet)


def period_of(day: date, grain: Grain) -> tuple[str, date]:
    """The period's label and first day: 2026-11-23 | 2026-W48 (ISO week, from Monday) | 2026-11."""
    if grain == "day":
        return day.isoformat(), day
    if grain == "week":
        iso = day.isocalendar()
        return f"{iso.year}-W{iso.week:02d}", day - timedelta(days=day.weekday())
    return day.strftime("%Y-%m"), day.replace(day=1)


def periods(grain: Grain, first: date, last: date) -> list[tuple[str, date]]:
    """Every period touching ``first``..``last`` (local dates, inclusive), in order."""
    out: list[tuple[str, date]] = []
    day = first
    while day <= last:
        label, start = period_of(day, grain)
        if not out or out[-1][0] != label:
            out.append((label, start))
        day += timedelta(days=1)
    return out


@dataclass
class PeriodFigures:
    period: str
    start: date
    chats: int = 0
    chats_converted: int = 0
    bookings: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    cancelled: int = 0
    rescheduled: int = 0
    completed: int = 0
    no_show: int = 0
    reminded: int = 0
    confirmed: int = 0
    waitlist_joined: int = 0
    waitlist_filled: int = 0
    ratings: int = 0
    stars_total: int = 0
    low_ratings: int = 0
    faq_answered: int = 0
    faq_unanswered: int = 0

    @property
    def conversion(self) -> float | None:
        return _ratio(self.chats_converted, self.chats)

    @property
    def no_show_rate(self) -> float | None:
        return _ratio(self.no_show, self.completed + self.no_show)

    @property
    def confirmation_rate(self) -> float | None:
        return _ratio(self.confirmed, self.reminded)

    @property
    def average_stars(self) -> float | None:
        return _ratio(self.stars_total, self.ratings)

    @property
    def faq_answer_rate(self) -> float | None:
        return _ratio(self.faq_answered, self.faq_answered + self.faq_unanswered)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["start"] = self.start.isoformat()
        data["by_channel"] = dict(sorted(self.by_channel.items()))
        for name in RATES:
            value = getattr(self, name)
            data[name] = round(value, 4) if value is not None else None
        return data


COUNTS = tuple(f.name for f in fields(PeriodFigures) if f.name not in ("period", "start", "by_channel"))
RATES = ("conversion", "no_show_rate", "confirmation_rate", "average_stars", "faq_answer_rate")


@dataclass(frozen=True)
class Report:
    shop_id: str
    grain: Grain
    first: date
    last: date
    rows: list[PeriodFigures]
    channels: list[str]  # every channel that has bookings in the range, sorted

    @property
    def total(self) -> PeriodFigures:
        return summed(self.rows, f"{self.first.isoformat()}..{self.last.isoformat()}", self.first)

    def as_dict(self) -> dict[str, Any]:
        return {
            "shop": self.shop_id,
            "grain": self.grain,
            "first": self.first.isoformat(),
            "last": self.last.isoformat(),
            "channels": self.channels,
            "rows": [r.as_dict() for r in self.rows],
            "total": self.total.as_dict(),
        }


def summed(rows: Iterable[PeriodFigures], label: str, start: date) -> PeriodFigures:
    out = PeriodFigures(label, start)
    for row in rows:
        for name in COUNTS:
            setattr(out, name, getattr(out, name) + getattr(row, name))
        for channel, n in row.by_channel.items():
            out.by_channel[channel] = out.by_channel.get(channel, 0) + n
    return out


class _Buckets:
    """Local-date bucketing for one shop and range."""

    def __init__(self, shop: ShopConfig, grain: Grain, first: date, last: date) -> None:
        self.tz: ZoneInfo = shop.tz
        self.grain = grain
        self.first, self.last = first, last
        self.since = to_utc(first, 0, self.tz)
        self.until = to_utc(last + timedelta(days=1), 0, self.tz)
        self.rows = {label: PeriodFigures(label, start) for label, start in periods(grain, first, last)}

    def row(self, moment: datetime | None) -> PeriodFigures | None:
        if moment is None or not self.since <= moment < self.until:
            return None
        return self.rows.get(period_of(moment.astimezone(self.tz).date(), self.grain)[0])


async def figures(db: Database, shop_id: str, shop: ShopConfig, grain: Grain, first: date, last: date) -> Report:
    """The Reports page's figures for one shop, ``first``..``last`` local dates inclusive."""
    buckets = _Buckets(shop, grain, first, last)
    async with db.reading() as s:
        converted = await _bookings_made(s, shop_id, buckets)
        await _chats(s, shop_id, buckets, converted)
        await _changes(s, shop_id, buckets)
        await _visits(s, shop_id, buckets)
        await _waitlist(s, shop_id, buckets)
        await _ratings(s, shop_id, buckets)
        await _faq(s, shop_id, buckets)
    rows = list(buckets.rows.values())
    channels = sorted({c for r in rows for c in r.by_channel})
    return Report(shop_id, grain, first, last, rows, channels)


async def compare(db: Database, shops: Mapping[str, ShopConfig], grain: Grain, first: date, last: date) -> list[Report]:
    """The same figures for several shops (head office's side-by-side view), in the given order."""
    return [await figures(db, sid, shop, grain, first, last) for sid, shop in shops.items()]


async def _inbound(s: AsyncSession, shop_id: str, b: _Buckets) -> list[tuple[int, int, str, datetime]]:
    """(conversation, customer, channel, at) of every customer message in the range."""
    rows = await s.execute(
        select(TranscriptEntry.conversation_id, Conversation.customer_id, Conversation.channel, TranscriptEntry.at)
        .join(Conversation, Conversation.id == TranscriptEntry.conversation_id)
        .where(
            Conversation.shop_id == shop_id,
            TranscriptEntry.direction == "in",
            TranscriptEntry.at >= b.since,
            TranscriptEntry.at < b.until,
        )
    )
    return [(int(c), int(cust), str(ch), at) for c, cust, ch, at in rows]


async def _bookings_made(s: AsyncSession, shop_id: str, b: _Buckets) -> set[tuple[str, int]]:
    """Count bookings by channel; returns the (period, customer) pairs that booked (for conversion)."""
    made = list(
        await s.execute(
            select(Booking.id, Booking.customer_id, Booking.created_at).where(
                Booking.shop_id == shop_id,
                Booking.status.not_in(_GONE),
                Booking.created_at >= b.since,
                Booking.created_at < b.until,
            )
        )
    )
    if not made:
        return set()
    ids = [row[0] for row in made]
    first_actor: dict[int, ActorKind] = {}
    for booking_id, kind in await s.execute(
        select(BookingEvent.booking_id, BookingEvent.actor_kind)
        .where(BookingEvent.booking_id.in_(ids), BookingEvent.action.in_(("held", "booked")))
        .order_by(BookingEvent.id)
    ):
        first_actor.setdefault(booking_id, kind)
    chats = await _customer_chats(s, shop_id, {c for _, c, _ in made if c is not None})
    converted: set[tuple[str, int]] = set()
    for booking_id, customer_id, created in made:
        row = b.row(created)
        if row is None:
            continue
        row.bookings += 1
        if first_actor.get(booking_id) == ActorKind.STAFF:
            channel = STAFF_CHANNEL
        else:
            channel = _channel_before(chats.get(customer_id or 0, []), created)
        row.by_channel[channel] = row.by_channel.get(channel, 0) + 1
        if customer_id is not None:
            converted.add((row.period, customer_id))
    return converted


async def _customer_chats(
    s: AsyncSession, shop_id: str, customers: set[int]
) -> dict[int, list[tuple[datetime | None, str]]]:
    """Per customer: (last customer message at, channel) of each of their chats with the shop."""
    if not customers:
        return {}
    out: dict[int, list[tuple[datetime | None, str]]] = defaultdict(list)
    rows = await s.execute(
        select(Conversation.id, Conversation.customer_id, Conversation.channel).where(
            Conversation.shop_id == shop_id, Conversation.customer_id.in_(customers)
        )
    )
    convs = {cid: (cust, ch) for cid, cust, ch in rows}
    if not convs:
        return {}
    times: dict[int, list[datetime]] = defaultdict(list)
    for conv_id, at in await s.execute(
        select(TranscriptEntry.conversation_id, TranscriptEntry.at).where(
            TranscriptEntry.conversation_id.in_(list(convs)), TranscriptEntry.direction == "in"
        )
    ):
        times[conv_id].append(at)
    for conv_id, (customer, channel) in convs.items():
        moments: list[datetime | None] = list(times.get(conv_id, [])) or [None]
        out[customer].extend((at, channel) for at in moments)
    return out


def _channel_before(chats: list[tuple[datetime | None, str]], created: datetime) -> str:
    """The channel of the customer's last message at or before ``created`` (else any of their chats)."""
    before = [(at, ch) for at, ch in chats if at is not None and at <= created]
    if before:
        return max(before, key=lambda item: item[0])[1]
    return chats[0][1] if chats else NO_CHANNEL


async def _chats(s: AsyncSession, shop_id: str, b: _Buckets, converted: set[tuple[str, int]]) -> None:
    seen: set[tuple[str, int]] = set()
    for conv_id, customer_id, _channel, at in await _inbound(s, shop_id, b):
        row = b.row(at)
        if row is None or (row.period, conv_id) in seen:
            continue
        seen.add((row.period, conv_id))
        row.chats += 1
        row.chats_converted += (row.period, customer_id) in converted


async def _changes(s: AsyncSession, shop_id: str, b: _Buckets) -> None:
    rows = await s.execute(
        select(BookingEvent.action, BookingEvent.at)
        .join(Booking, Booking.id == BookingEvent.booking_id)
        .where(
            Booking.shop_id == shop_id,
            BookingEvent.action.in_(("cancelled", "rescheduled")),
            BookingEvent.at >= b.since,
            BookingEvent.at < b.until,
        )
    )
    for action, at in rows:
        row = b.row(at)
        if row is None:
            continue
        if action == "cancelled":
            row.cancelled += 1
        else:
            row.rescheduled += 1


async def _visits(s: AsyncSession, shop_id: str, b: _Buckets) -> None:
    in_range = (Booking.shop_id == shop_id, Booking.start_at >= b.since, Booking.start_at < b.until)
    visits = list(await s.execute(select(Booking.id, Booking.start_at, Booking.status).where(*in_range)))
    reminded, confirmed = await _reminded_and_confirmed(s, *in_range)
    for booking_id, start, status in visits:
        row = b.row(start)
        if row is None:
            continue
        row.completed += status == BookingStatus.COMPLETED
        row.no_show += status == BookingStatus.NO_SHOW
        if booking_id in reminded and status not in _GONE:
            row.reminded += 1
            row.confirmed += booking_id in confirmed


async def _reminded_and_confirmed(s: AsyncSession, *bookings: ColumnElement[bool]) -> tuple[set[int], set[int]]:
    """Of the bookings matching ``bookings`` (conditions on Booking): the ids sent a day-before
    or same-day reminder, and the ids whose customer confirmed they will come."""
    reminded = set(
        await s.scalars(
            select(Reminder.booking_id)
            .join(Booking, Booking.id == Reminder.booking_id)
            .where(
                *bookings,
                Reminder.status == ReminderStatus.QUEUED,
                Reminder.kind.in_(("day_before", "same_day")),
            )
        )
    )
    confirmed = set(
        await s.scalars(
            select(BookingEvent.booking_id)
            .join(Booking, Booking.id == BookingEvent.booking_id)
            .where(*bookings, BookingEvent.action == "customer_confirmed")
        )
    )
    return reminded, confirmed


async def _waitlist(s: AsyncSession, shop_id: str, b: _Buckets) -> None:
    rows = await s.execute(
        select(WaitlistEntry.status, WaitlistEntry.created_at, WaitlistEntry.updated_at).where(
            WaitlistEntry.shop_id == shop_id,
            WaitlistEntry.updated_at >= b.since,
            WaitlistEntry.created_at < b.until,
        )
    )
    for status, created, updated in rows:
        joined = b.row(created)
        if joined is not None:
            joined.waitlist_joined += 1
        filled = b.row(updated) if status == WaitlistStatus.BOOKED else None
        if filled is not None:
            filled.waitlist_filled += 1


async def _ratings(s: AsyncSession, shop_id: str, b: _Buckets) -> None:
    rows = await s.execute(
        select(Rating.stars, Rating.at).where(Rating.shop_id == shop_id, Rating.at >= b.since, Rating.at < b.until)
    )
    for stars, at in rows:
        row = b.row(at)
        if row is None:
            continue
        row.ratings += 1
        row.stars_total += stars
        row.low_ratings += stars <= LOW_STARS


async def _faq(s: AsyncSession, shop_id: str, b: _Buckets) -> None:
    for model in (FaqAnswer, UnansweredQuestion):
        moments = await s.scalars(
            select(model.at).where(model.shop_id == shop_id, model.at >= b.since, model.at < b.until)
        )
        for at in moments:
            row = b.row(at)
            if row is None:
                continue
            if model is FaqAnswer:
                row.faq_answered += 1
            else:
                row.faq_unanswered += 1


_FAQ_ANSWER_IN = prepared_insert(cast(Table, FaqAnswer.__table__), ("shop_id", "entry_id", "at"))


async def record_faq_answer(db: Database, shop_id: str, entry_id: str, at: datetime) -> None:
    """The FAQ answered a question (the engine calls this, in the turn's unit of work: one
    prepared statement; the reports count it)."""
    async with db.unit_of_work() as uow:
        await uow.run(_FAQ_ANSWER_IN, {"shop_id": shop_id, "entry_id": entry_id[:80], "at": at})


# ---------------------------------------------------------------------------------------------- CSV

CSV_COLUMNS = ("shop", "period", "start", *COUNTS, *RATES)


def to_csv(reports: Iterable[Report]) -> str:
    """One line per shop and period (then the shop's total), bookings by channel as extra columns.

    Cells that a spreadsheet would run as a formula (= + - @ at the start) are prefixed with '.
    """
    reports = list(reports)
    channels = sorted({c for r in reports for c in r.channels})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*CSV_COLUMNS, *(f"bookings_{c}" for c in channels)])
    for report in reports:
        for row in [*report.rows, report.total]:
            data = row.as_dict()
            cells: list[Any] = [report.shop_id, row.period, data["start"]]
            cells += [data[name] for name in COUNTS]
            cells += ["" if data[name] is None else data[name] for name in RATES]
            cells += [row.by_channel.get(c, 0) for c in channels]
            writer.writerow([_cell(c) for c in cells])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
