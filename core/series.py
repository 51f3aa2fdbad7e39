"""Recurring visits: a series of bookings ("每6周一次", "every month") and each of its visits.

A series repeats its first booking (service, pet, add-ons, preferred staff member and local time
of day) every ``every`` weeks, months or days, ``count`` visits in all or until cancelled. Every
visit is an ordinary booking made through ``BookingService.book``: the same no-double-booking
guarantee, the same reminders (planned per booking by core/reminders.py), changed one by one with
the booking operations (cancel, reschedule) or as a series (``cancel_rest``; when the shop
cancels the rest, the customer is told in their latest chat which visits went). The first
booking's note for staff (e.g. "same as last time: products, blade") is put on every visit's
booking, so staff see it whichever visit they open.

Planning (pure, ``visit_day`` / ``open_day``): visit n falls ``(n-1) * every`` units after the
first day (months keep the day of the month, the 31st becoming the month's last day); a day the
shop is closed moves to the nearest open day (the day after first, then the day before, up to 3
days: outcome ``shifted``).

A clash: when the visit's time is taken (or its staff member is away), the series still books
the other visits and that one gets the free start nearest the wanted time THE SAME DAY (a later
one on a tie; the preferred staff member when free then): outcome ``moved``. Same day, because a
regular customer plans the day around the visit (and the rhythm of the series stays); nearest,
because that is the smallest change. Only when the day has no free start at all is the visit
left ``needs_choice`` with the nearest free times around it (``Taken.alternatives``) offered as
buttons (``sr:<series>:<seq>:<utc yyyymmddHHMM>``); the customer's tap books it (``choose``).

Horizon: the booking service takes bookings at most ``horizon_days`` ahead, so ``start`` books the
visits inside the horizon now and ``extend`` (a periodic job) books each later visit once its day
comes inside it, as the system: the customer then gets the normal confirmation (core/reminders.py)
and, for a moved or unbookable visit, a notice in their latest chat saying so.

Customer texts come from core/locales (``series.*``); ``visit_lines`` / ``choice_message`` build
them so the chat reply and the later notices say the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit
from core.availability import Slot
from core.bookings import BookingRequest, BookingService, UnknownItem
from core.config import ShopConfig
from core.eye_records import add_months
from core.i18n import Texts, texts
from core.messages import Button, OutgoingMessage
from core.models import ACTIVE_STATUSES, ActorKind, Booking, BookingSeries, BookingStatus, SeriesVisit
from core.ratings import latest_chat, queue_in_chat
from core.results import Actor, Booked, BookingResult, BookingView, NotAllowed, Reason, Taken

Unit = Literal["day", "week", "month"]
UNITS: tuple[Unit, ...] = ("day", "week", "month")
LIMITS: dict[str, tuple[int, int]] = {"day": (2, 365), "week": (1, 52), "month": (1, 12)}
MAX_COUNT = 100
SHIFT_DAYS = (1, -1, 2, -2, 3, -3)  # a closed day moves to the nearest open one, the day after first
NEAREST_TRIES = 6  # free starts tried, nearest first, when the wanted time is taken (someone may race us)
PREFIX = "sr"
Outcome = Literal["booked", "shifted", "moved", "needs_choice", "chosen"]


@dataclass(frozen=True)
class Recurrence:
    """Every ``every`` ``unit`` (day | week | month); ``count`` visits in all (None: until cancelled)."""

    every: int
    unit: Unit
    count: int | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {', '.join(UNITS)}")
        low, high = LIMITS[self.unit]
        if not low <= self.every <= high:
            raise ValueError(f"every {self.unit} must be from {low} to {high}")
        if self.count is not None and not 2 <= self.count <= MAX_COUNT:
            raise ValueError(f"count must be from 2 to {MAX_COUNT}")

    def as_json(self) -> dict[str, Any]:
        return {"every": self.every, "unit": self.unit, "count": self.count}

    @classmethod
    def from_json(cls, data: Any) -> Recurrence | None:
        """What ``as_json`` wrote (kept in a dialog's draft); None for anything else."""
        if not isinstance(data, dict):
            return None
        every, unit, count = data.get("every"), data.get("unit"), data.get("count")
        if not isinstance(every, int) or unit not in UNITS or not (count is None or isinstance(count, int)):
            return None
        try:
            return cls(every, unit, count)
        except ValueError:
            return None

    def describe(self, lang: str) -> str:
        """ "每6周" / "every 6 weeks", "每月" / "every month"."""
        t = texts(lang)
        return t.t(f"series.every_{self.unit}") if self.every == 1 else t.t(f"series.every_{self.unit}s", n=self.every)


# ------------------------------------------------------------------------------------------ planning


def visit_day(first_day: date, recurrence: Recurrence, seq: int) -> date:
    """The local date visit ``seq`` (1 = the first booking) is planned for."""
    steps = recurrence.every * (seq - 1)
    if recurrence.unit == "week":
        return first_day + timedelta(weeks=steps)
    if recurrence.unit == "day":
        return first_day + timedelta(days=steps)
    return add_months(first_day, steps)


def open_day(shop: ShopConfig, day: date) -> date | None:
    """``day`` when the shop opens then, else the nearest open day (up to 3 days away), else None."""
    if shop.hours_on(day):
        return day
    return next((day + timedelta(days=k) for k in SHIFT_DAYS if shop.hours_on(day + timedelta(days=k))), None)


def local_start(shop: ShopConfig, day: date, hhmm: str) -> datetime:
    hour, minute = (int(p) for p in hhmm.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=shop.tz).astimezone(UTC)


def nearest_first(slots: Sequence[Slot], wanted: datetime) -> list[Slot]:
    """Free starts by distance from the wanted time; on a tie the later one (the customer's
    morning stays theirs)."""
    return sorted(slots, key=lambda s: (abs((s.start - wanted).total_seconds()), s.start < wanted))


# ------------------------------------------------------------------------------------------ views


@dataclass(frozen=True)
class VisitView:
    seq: int
    planned_start: datetime
    outcome: str
    booking: BookingView | None
    alternatives: tuple[datetime, ...] = ()  # offered when it needs the customer's choice

    def as_json(self) -> dict[str, Any]:
        b = self.booking
        return {
            "seq": self.seq,
            "planned_start": self.planned_start.isoformat(),
            "outcome": self.outcome,
            "booking": None
            if b is None
            else {"id": b.id, "code": b.code, "start": b.start.isoformat(), "status": b.status.value},
        }


@dataclass(frozen=True)
class SeriesView:
    id: int
    shop_id: str
    customer_id: int
    service_id: str
    recurrence: Recurrence
    first_day: date
    local_time: str
    status: str
    visits: tuple[VisitView, ...] = field(default=())

    def upcoming(self, now: datetime) -> list[VisitView]:
        """Visits still ahead with an active booking, soonest first."""
        return [
            v
            for v in self.visits
            if v.booking is not None and v.booking.status in ACTIVE_STATUSES and v.booking.end > now
        ]

    def as_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service_id,
            "every": self.recurrence.every,
            "unit": self.recurrence.unit,
            "count": self.recurrence.count,
            "first_day": self.first_day.isoformat(),
            "time": self.local_time,
            "status": self.status,
            "visits": [v.as_json() for v in self.visits],
            "upcoming": len(self.upcoming(now)),
        }


@dataclass(frozen=True)
class Started:
    """What ``start`` did: the series and the visits it booked now (the first one included);
    ``later``: more visits follow once their day is inside the booking horizon."""

    series: SeriesView
    visits: tuple[VisitView, ...]
    later: bool
    already: bool = False  # the booking was in a series already: nothing new was booked


def _visits_ahead(series_id: int, from_seq: int, now: datetime, *columns: Any) -> Select[Any]:
    """``columns`` of the series' visits from ``from_seq`` on whose booking is active and still
    ahead, in visit order (what cancelling or moving "the rest" acts on)."""
    return (
        select(*columns)
        .join(Booking, Booking.id == SeriesVisit.booking_id)
        .where(
            SeriesVisit.series_id == series_id,
            SeriesVisit.seq >= from_seq,
            Booking.status.in_(ACTIVE_STATUSES),
            Booking.start_at > now,
        )
        .order_by(SeriesVisit.seq)
    )


def _plan(row: BookingSeries) -> _Plan:
    return _Plan(
        row.id,
        row.shop_id,
        row.customer_id,
        row.pet_id,
        row.service_id,
        row.staff_id,
        tuple(row.addons or ()),
        _recurrence(row),
        row.first_day,
        row.local_time,
    )


async def _first_notes(s: AsyncSession, series_id: int) -> str:
    """The note for staff on the series' first booking (what was asked for when the series was
    booked, "same as last time" included): every later visit's booking carries it too."""
    notes = await s.scalar(
        select(Booking.notes)
        .join(SeriesVisit, SeriesVisit.booking_id == Booking.id)
        .where(SeriesVisit.series_id == series_id, SeriesVisit.seq == 1)
    )
    return notes or ""


def _recurrence(row: BookingSeries) -> Recurrence:
    unit: Unit = "month" if row.unit == "month" else "day" if row.unit == "day" else "week"
    return Recurrence(row.every, unit, row.count)


# ------------------------------------------------------------------------------------------ payloads


def payload(series_id: int, seq: int, start: datetime) -> str:
    return f"{PREFIX}:{series_id}:{seq}:{start.astimezone(UTC):%Y%m%d%H%M}"


def parse_payload(value: str) -> tuple[int, int, datetime] | None:
    """``sr:<series>:<seq>:<yyyymmddHHMM>`` -> (series, seq, start in UTC); anything else -> None."""
    parts = value.split(":")
    if len(parts) != 4 or parts[0] != PREFIX or not all(p.isascii() and p.isdigit() for p in parts[1:]):
        return None
    if len(parts[1]) > 12 or len(parts[2]) > 4 or len(parts[3]) != 12:
        return None
    try:
        start = datetime.strptime(parts[3], "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(parts[1]), int(parts[2]), start


# ------------------------------------------------------------------------------------------ words


def _hhmm(moment: datetime, shop: ShopConfig) -> str:
    return moment.astimezone(shop.tz).strftime("%H:%M")


def visit_line(visit: VisitView, shop: ShopConfig, t: Texts) -> str:
    """One visit as the customer reads it: when, and truthfully what changed and why."""
    b = visit.booking
    if b is None:
        return t.t(
            "series.line_needs_choice", n=visit.seq, day=t.format_date(visit.planned_start.astimezone(shop.tz).date())
        )
    when = t.format_when(b.start, shop.tz)
    pending = t.t("series.pending_mark") if b.status == BookingStatus.PENDING else ""
    if visit.outcome == "moved":
        return t.t("series.line_moved", n=visit.seq, when=when, wanted=_hhmm(visit.planned_start, shop)) + pending
    if visit.outcome == "shifted":
        closed = t.format_date(visit.planned_start.astimezone(shop.tz).date())
        return t.t("series.line_shifted", n=visit.seq, when=when, closed=closed) + pending
    return t.t("series.line", n=visit.seq, when=when) + pending


def choice_message(series_id: int, visit: VisitView, shop: ShopConfig, t: Texts) -> OutgoingMessage:
    """The free times offered for a visit whose day was full (or "tell us" when there are none)."""
    day = t.format_date(visit.planned_start.astimezone(shop.tz).date())
    if not visit.alternatives:
        return OutgoingMessage(t.t("series.choose_none", n=visit.seq, day=day))
    buttons = tuple(
        Button(t.format_when(start, shop.tz), payload(series_id, visit.seq, start)) for start in visit.alternatives
    )
    return OutgoingMessage(t.t("series.choose", n=visit.seq, day=day), buttons)


def started_messages(started: Started, shop: ShopConfig, lang: str) -> tuple[OutgoingMessage, ...]:
    """The chat's answer after the first booking: the visits booked (each truthfully), a choice for
    each visit whose day was full, and when the later visits get booked."""
    t = texts(lang)
    series = started.series
    lines = [t.t("series.created", interval=series.recurrence.describe(lang))]
    lines.extend(visit_line(v, shop, t) for v in started.visits)
    if started.later:
        lines.append(t.t("series.later", days=shop.booking.horizon_days))
    if series.recurrence.count is not None:
        lines.append(t.t("series.count", count=series.recurrence.count))
    messages = [OutgoingMessage("\n".join(lines))]
    messages.extend(choice_message(series.id, v, shop, t) for v in started.visits if v.booking is None)
    return tuple(messages)


# ------------------------------------------------------------------------------------------ the service


class SeriesError(LookupError):
    """No such series (or visit) at this shop."""


class SeriesService:
    """Start, extend and change series; every visit is booked through ``bookings``."""

    def __init__(self, bookings: BookingService) -> None:
        self.bookings = bookings
        self.db = bookings.db
        self.config = bookings.config
        self.clock = bookings.clock

    # ------------------------------------------------------------------ reads

    async def _view(self, row: BookingSeries) -> SeriesView:
        async with self.db.reading() as s:
            visits = list(
                await s.execute(
                    select(SeriesVisit, Booking)
                    .outerjoin(Booking, Booking.id == SeriesVisit.booking_id)
                    .where(SeriesVisit.series_id == row.id)
                    .order_by(SeriesVisit.seq)
                )
            )
            return SeriesView(
                row.id,
                row.shop_id,
                row.customer_id,
                row.service_id,
                _recurrence(row),
                row.first_day,
                row.local_time,
                row.status,
                tuple(
                    VisitView(v.seq, v.planned_start, v.outcome, BookingView.of(b) if b is not None else None)
                    for v, b in visits
                ),
            )

    async def get(self, shop_id: str, series_id: int) -> SeriesView | None:
        async with self.db.reading() as s:
            row = await s.scalar(
                select(BookingSeries).where(BookingSeries.id == series_id, BookingSeries.shop_id == shop_id)
            )
        return await self._view(row) if row is not None else None

    async def find(self, series_id: int) -> SeriesView | None:
        """A series by id, whatever its shop (a button tap carries only the id: check the customer)."""
        async with self.db.reading() as s:
            row = await s.get(BookingSeries, series_id)
        return await self._view(row) if row is not None else None

    async def of_booking(self, shop_id: str, booking_id: int) -> SeriesView | None:
        """The series a booking is a visit of, if any."""
        async with self.db.reading() as s:
            series_id = await s.scalar(select(SeriesVisit.series_id).where(SeriesVisit.booking_id == booking_id))
        return await self.get(shop_id, series_id) if series_id is not None else None

    async def of_customer(self, shop_id: str, customer_id: int) -> list[SeriesView]:
        async with self.db.reading() as s:
            rows = list(
                await s.scalars(
                    select(BookingSeries)
                    .where(BookingSeries.shop_id == shop_id, BookingSeries.customer_id == customer_id)
                    .order_by(BookingSeries.id.desc())
                )
            )
        return [await self._view(r) for r in rows]

    # ------------------------------------------------------------------ starting

    async def start(self, shop_id: str, booking_id: int, recurrence: Recurrence, actor: Actor) -> Started:
        """Make ``booking_id`` visit 1 of a new series and book the visits inside the booking
        horizon (one unit of work: inside a chat turn, the turn's). A booking already in a series
        returns that series (``already``): a redelivered message books nothing twice.

        Raises SeriesError for a booking that is not this shop's, not active, or has no customer.
        """
        shop = self.bookings.shop(shop_id)
        now = self.clock.now()
        async with self.db.unit_of_work():
            existing = await self.of_booking(shop_id, booking_id)
            if existing is not None:
                return Started(existing, existing.visits, later=existing.status == "active", already=True)
            async with self.db.transaction() as s:
                first = await s.scalar(select(Booking).where(Booking.id == booking_id, Booking.shop_id == shop_id))
                if first is None or first.customer_id is None or first.status not in ACTIVE_STATUSES:
                    raise SeriesError(f"no active booking {booking_id} with a customer at {shop_id}")
                local = first.start_at.astimezone(shop.tz)
                row = BookingSeries(
                    shop_id=shop_id,
                    customer_id=first.customer_id,
                    pet_id=first.pet_id,
                    service_id=first.service_id,
                    staff_id=first.staff_id,
                    addons=sorted(a.addon_id for a in first.addons),
                    every=recurrence.every,
                    unit=recurrence.unit,
                    count=recurrence.count,
                    first_day=local.date(),
                    local_time=local.strftime("%H:%M"),
                    status="active",
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                await s.flush()
                s.add(
                    SeriesVisit(
                        series_id=row.id,
                        seq=1,
                        planned_start=first.start_at,
                        booking_id=first.id,
                        outcome="booked",
                        created_at=now,
                    )
                )
                series_id = row.id
            booked, later = await self._book_due(series_id, actor)
            view = await self.get(shop_id, series_id)
            assert view is not None
            first_visit = view.visits[0]
            return Started(view, (first_visit, *booked), later=later)

    async def extend(self, shop_id: str | None = None) -> int:
        """Book every active series' visits whose day has come inside the booking horizon (the
        periodic job); the customer is told of each (confirmation, and a notice when a visit moved
        or needs their choice). Returns how many visits it handled."""
        async with self.db.reading() as s:
            query = select(BookingSeries.id).where(BookingSeries.status == "active")
            if shop_id is not None:
                query = query.where(BookingSeries.shop_id == shop_id)
            ids = list(await s.scalars(query.order_by(BookingSeries.id)))
        handled = 0
        for series_id in ids:
            async with self.db.unit_of_work():
                visits, _ = await self._book_due(series_id, Actor.system("series"))
                if visits:
                    await self._notify(series_id, visits)
                handled += len(visits)
        return handled

    async def _book_due(self, series_id: int, actor: Actor) -> tuple[list[VisitView], bool]:
        """Book the next visits of a series up to the horizon (the series row locked meanwhile);
        returns them and whether more follow later."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            row = await s.scalar(select(BookingSeries).where(BookingSeries.id == series_id).with_for_update())
            if row is None or row.status != "active":
                return [], False
            last = await s.scalar(select(func.max(SeriesVisit.seq)).where(SeriesVisit.series_id == series_id)) or 0
            series = replace(_plan(row), notes=await _first_notes(s, series_id))
        shop = self.bookings.shop(series.shop_id)
        today = now.astimezone(shop.tz).date()
        horizon = today + timedelta(days=shop.booking.horizon_days)
        done: list[VisitView] = []
        seq = last + 1
        while series.recurrence.count is None or seq <= series.recurrence.count:
            planned = visit_day(series.first_day, series.recurrence, seq)
            if planned > horizon or (open_day(shop, planned) or planned) > horizon:
                break  # booked by a later ``extend``, once its day is inside the horizon
            visit = await self._book_visit(shop, series, seq, planned, actor)
            async with self.db.transaction() as s:
                s.add(
                    SeriesVisit(
                        series_id=series.id,
                        seq=seq,
                        planned_start=visit.planned_start,
                        booking_id=visit.booking.id if visit.booking else None,
                        outcome=visit.outcome,
                        created_at=now,
                    )
                )
            done.append(visit)
            seq += 1
        more = series.recurrence.count is None or seq <= series.recurrence.count
        if not more:
            async with self.db.transaction() as s:
                ended = await s.get(BookingSeries, series.id)
                if ended is not None:
                    ended.status, ended.updated_at = "ended", now  # every visit is planned: nothing to extend
        return done, more

    async def _book_visit(self, shop: ShopConfig, p: _Plan, seq: int, planned: date, actor: Actor) -> VisitView:
        """One visit: its time; else the nearest free start that day; else a choice to offer."""
        wanted_planned = local_start(shop, planned, p.local_time)
        day = open_day(shop, planned)
        if day is None:
            return VisitView(seq, wanted_planned, "needs_choice", None, await self._around(p, wanted_planned))
        wanted = local_start(shop, day, p.local_time)
        outcome: Outcome = "booked" if day == planned else "shifted"
        staff_wishes: list[str | None] = [p.staff_id, None] if p.staff_id else [None]
        alternatives: tuple[datetime, ...] = ()
        for staff in staff_wishes:
            result = await self._book(p, wanted, staff, actor)
            if isinstance(result, Booked):
                return VisitView(seq, wanted_planned, outcome, result.booking)
            if isinstance(result, Taken):
                alternatives = tuple(s.start for s in result.alternatives)
            elif result.reason in (Reason.TOO_FAR, Reason.TOO_SOON):
                break
        try:
            slots = await self.bookings.free_slots(p.shop_id, p.service_id, day, addons=p.addons)
        except UnknownItem:
            slots = []
        for slot in nearest_first(slots, wanted)[:NEAREST_TRIES]:
            staff = p.staff_id if p.staff_id in slot.staff_ids else None
            result = await self._book(p, slot.start, staff, actor)
            if isinstance(result, Booked):
                return VisitView(seq, wanted_planned, "moved", result.booking)
        return VisitView(seq, wanted_planned, "needs_choice", None, alternatives or await self._around(p, wanted))

    async def _around(self, p: _Plan, wanted: datetime) -> tuple[datetime, ...]:
        """The nearest free starts on the days around ``wanted`` (when its own day has none)."""
        shop = self.bookings.shop(p.shop_id)
        found: list[Slot] = []
        day = wanted.astimezone(shop.tz).date()
        for k in (1, -1, 2, -2, 3, -3):
            try:
                found.extend(
                    await self.bookings.free_slots(p.shop_id, p.service_id, day + timedelta(days=k), addons=p.addons)
                )
            except UnknownItem:
                return ()
            if len(found) >= 3:
                break
        return tuple(s.start for s in nearest_first(found, wanted)[:3])

    async def free_around(self, series_id: int, seq: int) -> tuple[datetime, ...]:
        """Up to three free starts nearest a visit's planned time: its own day first, else the days
        around it (what a visit that waits for the customer's choice offers)."""
        async with self.db.reading() as s:
            row = await s.get(BookingSeries, series_id)
            visit = await s.get(SeriesVisit, (series_id, seq))
            if row is None or visit is None:
                return ()
            plan, wanted = _plan(row), visit.planned_start
        return await self._nearest(plan, wanted)

    async def _book(self, p: _Plan, start: datetime, staff_id: str | None, actor: Actor) -> BookingResult:
        request = BookingRequest(
            p.shop_id,
            p.service_id,
            start,
            staff_id=staff_id,
            customer_id=p.customer_id,
            pet_id=p.pet_id,
            addons=p.addons,
            notes=p.notes,
        )
        return await self.bookings.book(request, actor)

    # ------------------------------------------------------------------ the customer's choice

    async def choose(self, series_id: int, seq: int, start: datetime, customer_id: int) -> BookingResult:
        """Book a visit that waited for the customer's choice at ``start`` (their button tap).
        NotAllowed(NOT_FOUND) for another customer's series or a visit that needs no choice."""
        async with self.db.unit_of_work():
            async with self.db.transaction() as s:
                row = await s.scalar(select(BookingSeries).where(BookingSeries.id == series_id).with_for_update())
                visit = await s.get(SeriesVisit, (series_id, seq))
                if row is None or row.customer_id != customer_id or visit is None:
                    return NotAllowed(Reason.NOT_FOUND, "no such visit")
                if visit.booking_id is not None or row.status == "cancelled":
                    return NotAllowed(Reason.INVALID_STATE, "this visit needs no choice")
                plan = replace(_plan(row), notes=await _first_notes(s, series_id))
            result = await self._book(plan, start, None, Actor.customer(customer_id))
            if isinstance(result, Booked):
                async with self.db.transaction() as s:
                    chosen = await s.get(SeriesVisit, (series_id, seq))
                    assert chosen is not None
                    chosen.booking_id, chosen.outcome = result.booking.id, "chosen"
            return result

    # ------------------------------------------------------------------ changing the series

    async def cancel_rest(
        self, shop_id: str, series_id: int, actor: Actor, *, from_seq: int = 1, reason: str = "series cancelled"
    ) -> list[BookingView]:
        """Cancel the series from visit ``from_seq`` on: its active bookings are cancelled (each
        through the booking service: reminders gone, slots freed) and no later visit is booked.
        Returns the bookings cancelled. A customer's cut-off still protects a visit too close to
        cancel: that one stays (and is not in the list). SeriesError: not this shop's series."""
        now = self.clock.now()
        cancelled: list[BookingView] = []
        async with self.db.unit_of_work():
            async with self.db.transaction() as s:
                row = await s.scalar(
                    select(BookingSeries)
                    .where(BookingSeries.id == series_id, BookingSeries.shop_id == shop_id)
                    .with_for_update()
                )
                if row is None:
                    raise SeriesError(f"no series {series_id} at {shop_id}")
                row.status, row.updated_at = "cancelled", now
                booking_ids = list(
                    await s.scalars(_visits_ahead(series_id, from_seq, now, SeriesVisit.booking_id))
                )
            for booking_id in booking_ids:
                if booking_id is None:
                    continue
                result = await self.bookings.cancel(shop_id, booking_id, actor, reason=reason)
                if isinstance(result, Booked):
                    cancelled.append(result.booking)
            if cancelled and actor.kind != ActorKind.CUSTOMER:
                await self._tell_cancelled(series_id, cancelled)
        return cancelled

    async def _tell_cancelled(self, series_id: int, cancelled: Sequence[BookingView]) -> None:
        """The shop cancelled the rest of a series: the customer is told in their latest chat,
        with each visit that was cancelled (in the caller's unit of work)."""
        async with self.db.transaction() as s:
            row = await s.get(BookingSeries, series_id)
            conversation = await latest_chat(s, row.shop_id, row.customer_id) if row is not None else None
            if row is None or conversation is None:
                return
            shop = self.bookings.shop(row.shop_id)
            t = texts(conversation.language)
            lines = [
                t.t("series.cancelled_by_shop", count=len(cancelled), interval=_recurrence(row).describe(t.lang)),
                *(
                    t.t("series.cancelled_line", n=n, when=t.format_when(b.start, shop.tz))
                    for n, b in enumerate(cancelled, 1)
                ),
                t.t("series.cancelled_by_shop_end"),
            ]
            message = OutgoingMessage("\n".join(lines))
            queue_in_chat(s, conversation, message, self.clock.now(), author="bot:series", extra={"series": series_id})

    async def visit_booking(self, shop_id: str, series_id: int, seq: int) -> int:
        """The booking of one visit (to cancel or move it with the booking operations)."""
        view = await self.get(shop_id, series_id)
        visit = next((v for v in view.visits if v.seq == seq), None) if view is not None else None
        if visit is None or visit.booking is None:
            raise SeriesError(f"no booked visit {seq} in series {series_id}")
        return visit.booking.id

    async def cancel_visit(self, shop_id: str, series_id: int, seq: int, actor: Actor) -> BookingResult:
        """Cancel one visit; the others stay (and no later run books it again)."""
        booking_id = await self.visit_booking(shop_id, series_id, seq)
        return await self.bookings.cancel(shop_id, booking_id, actor, reason="one visit of a series")

    async def move_visit(
        self, shop_id: str, series_id: int, seq: int, new_start: datetime, actor: Actor
    ) -> BookingResult:
        """Move one visit (atomically, as any reschedule); the rest of the series keeps its rhythm."""
        booking_id = await self.visit_booking(shop_id, series_id, seq)
        return await self.bookings.reschedule(shop_id, booking_id, new_start, actor)

    # ------------------------------------------------------------------ moving the whole series

    async def move_rest(
        self,
        shop_id: str,
        series_id: int,
        actor: Actor,
        *,
        weekday: int | None = None,
        local_time: str | None = None,
        from_seq: int = 1,
        choices: Mapping[int, datetime] | None = None,
        keep_clashing: bool = False,
    ) -> SeriesMove:
        """Move every visit still ahead (from ``from_seq``) to a new weekday (weekly series only)
        and/or local time, and the visits booked later with them. Each visit is one reschedule
        (``BookingService.reschedule``: the same no-double-booking guarantee, its reminders
        replanned), all in ONE unit of work: when a visit's new time is taken, nothing moves
        (``applied`` False) and each clash is listed with the free starts nearest it that day;
        staff then pick one per clash (``choices``: seq -> start) or ``keep_clashing`` (those keep
        their time, the others move). Applied: the series keeps the new rhythm, the audit trail
        has ``series.moved`` and the customer one message listing the new times.
        SeriesError: not this shop's series (or it was cancelled); ValueError: a bad change."""
        shop = self.bookings.shop(shop_id)
        if weekday is not None and not 0 <= weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
        if local_time is not None:
            try:
                hour, minute = (int(p) for p in local_time.split(":"))
                time(hour, minute)
            except ValueError:
                raise ValueError("time must be HH:MM") from None
            local_time = f"{hour:02d}:{minute:02d}"
        picked = dict(choices or {})
        now = self.clock.now()
        try:
            async with self.db.unit_of_work():
                return await self._move(
                    shop, shop_id, series_id, actor, weekday, local_time, from_seq, picked, keep_clashing, now
                )
        except _Clashed as clashed:  # the whole unit rolled back: nothing moved
            return clashed.move

    async def _move(
        self,
        shop: ShopConfig,
        shop_id: str,
        series_id: int,
        actor: Actor,
        weekday: int | None,
        local_time: str | None,
        from_seq: int,
        picked: dict[int, datetime],
        keep_clashing: bool,
        now: datetime,
    ) -> SeriesMove:
        async with self.db.transaction() as s:
            row = await s.scalar(
                select(BookingSeries)
                .where(BookingSeries.id == series_id, BookingSeries.shop_id == shop_id)
                .with_for_update()
            )
            if row is None or row.status == "cancelled":
                raise SeriesError(f"no series {series_id} to move at {shop_id}")
            if weekday is not None and row.unit != "week":
                raise ValueError("only a weekly series moves to another weekday")
            plan = _plan(row)
            ahead = list(
                await s.execute(
                    _visits_ahead(
                        series_id, from_seq, now,
                        SeriesVisit.seq, SeriesVisit.planned_start, Booking.id, Booking.start_at,
                    )
                )
            )
        old_day = plan.first_day.weekday()
        shift = 0
        if weekday is not None:
            shift = (weekday - old_day) % 7
            shift = shift - 7 if shift > 3 else shift  # the nearer way: Tuesday -> Monday is one day back
        new_time = local_time or plan.local_time
        results: list[VisitMove] = []
        for seq, planned_start, booking_id, start in ahead:
            day = planned_start.astimezone(shop.tz).date() + timedelta(days=shift)
            target = picked.get(seq) or local_start(shop, day, new_time)
            if target == start:
                results.append(VisitMove(seq, booking_id, start, target, "unchanged"))
                continue
            result = await self.bookings.reschedule(shop_id, booking_id, target, actor)
            if isinstance(result, Booked):
                results.append(VisitMove(seq, booking_id, start, result.booking.start, "moved"))
                continue
            reason = result.reason.value if isinstance(result, NotAllowed) else "taken"
            nearest = await self._nearest(plan, target)
            results.append(VisitMove(seq, booking_id, start, target, "clash", reason, nearest))
        clashes = [r for r in results if r.outcome == "clash"]
        if clashes and not keep_clashing:
            raise _Clashed(SeriesMove(series_id, False, tuple(results)))
        final = tuple(replace(r, outcome="kept") if r.outcome == "clash" else r for r in results)
        async with self.db.transaction() as s:
            row = await s.get(BookingSeries, series_id)
            assert row is not None
            before = {"weekday": old_day, "time": row.local_time}
            row.first_day = row.first_day + timedelta(days=shift)
            row.local_time = new_time
            row.updated_at = now
            for r in final:
                if r.outcome == "moved":
                    visit = await s.get(SeriesVisit, (series_id, r.seq))
                    if visit is not None:
                        visit.planned_start, visit.outcome = r.to_start, "booked"
            audit.record(
                s,
                shop_id=shop_id,
                customer_id=row.customer_id,
                actor=actor,
                now=now,
                action="series.moved",
                subject="series",
                subject_id=series_id,
                before=before,
                after={"weekday": row.first_day.weekday(), "time": new_time},
                moved=[r.seq for r in final if r.outcome == "moved"],
                kept=[r.seq for r in final if r.outcome == "kept"],
            )
            moved = [r for r in final if r.outcome in ("moved", "kept")]
            conversation = await latest_chat(s, shop_id, row.customer_id) if moved else None
            if conversation is not None:
                t = texts(conversation.language)
                lines = [
                    t.t("series_move.moved", interval=_recurrence(row).describe(t.lang), count=len(moved)),
                    *(
                        t.t(
                            "series_move.line" if r.outcome == "moved" else "series_move.kept",
                            n=r.seq,
                            when=t.format_when(r.to_start if r.outcome == "moved" else r.from_start, shop.tz),
                        )
                        for r in moved
                    ),
                    t.t("series_move.end"),
                ]
                queue_in_chat(
                    s,
                    conversation,
                    OutgoingMessage("\n".join(lines)),
                    now,
                    author="bot:series",
                    extra={"series": series_id, "series_moved": True},
                )
        return SeriesMove(series_id, True, final)

    async def _nearest(self, plan: _Plan, wanted: datetime) -> tuple[datetime, ...]:
        """Up to three free starts nearest ``wanted`` on its day, else on the days around it."""
        shop = self.bookings.shop(plan.shop_id)
        try:
            slots = await self.bookings.free_slots(
                plan.shop_id, plan.service_id, wanted.astimezone(shop.tz).date(), addons=plan.addons
            )
        except UnknownItem:
            return ()
        return tuple(x.start for x in nearest_first(slots, wanted)[:3]) or await self._around(plan, wanted)

    # ------------------------------------------------------------------ notices for later visits

    async def _notify(self, series_id: int, visits: Sequence[VisitView]) -> None:
        """Tell the customer, in their latest chat, about visits booked later that moved or need
        their choice (a plainly booked one gets the normal confirmation from core/reminders.py)."""
        unusual = [v for v in visits if v.outcome != "booked"]
        if not unusual:
            return
        now = self.clock.now()
        async with self.db.transaction() as s:
            row = await s.get(BookingSeries, series_id)
            if row is None:
                return
            conversation = await latest_chat(s, row.shop_id, row.customer_id)
            if conversation is None:
                return
            shop = self.bookings.shop(row.shop_id)
            t = texts(conversation.language)
            messages: list[OutgoingMessage] = []
            moved = [v for v in unusual if v.booking is not None]
            if moved:
                lines = [t.t("series.later_booked", interval=_recurrence(row).describe(t.lang))]
                messages.append(OutgoingMessage("\n".join([*lines, *(visit_line(v, shop, t) for v in moved)])))
            messages.extend(choice_message(series_id, v, shop, t) for v in unusual if v.booking is None)
            for message in messages:
                queue_in_chat(s, conversation, message, now, author="bot:series", extra={"series": series_id})


@dataclass(frozen=True)
class _Plan:
    """A series' booking facts, detached from its row."""

    id: int
    shop_id: str
    customer_id: int
    pet_id: int | None
    service_id: str
    staff_id: str | None
    addons: tuple[str, ...]
    recurrence: Recurrence
    first_day: date
    local_time: str
    notes: str = ""  # the first booking's note for staff, carried onto every visit


@dataclass(frozen=True)
class VisitMove:
    """One visit of a series move: ``moved`` (to ``to_start``), ``unchanged`` (already there),
    ``clash`` (``to_start`` is taken or not allowed: ``reason``, ``alternatives`` nearest it; the
    move was not applied) or ``kept`` (it clashed and stays at ``from_start``, the others moved)."""

    seq: int
    booking_id: int
    from_start: datetime
    to_start: datetime
    outcome: Literal["moved", "unchanged", "clash", "kept"]
    reason: str = ""
    alternatives: tuple[datetime, ...] = ()

    def as_json(self, tz: Any) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "booking": self.booking_id,
            "from": self.from_start.astimezone(tz).isoformat(),
            "to": self.to_start.astimezone(tz).isoformat(),
            "outcome": self.outcome,
            "reason": self.reason,
            "alternatives": [a.astimezone(tz).isoformat() for a in self.alternatives],
        }


@dataclass(frozen=True)
class SeriesMove:
    """What ``move_rest`` did: ``applied`` False means nothing moved (see the clashes)."""

    series_id: int
    applied: bool
    visits: tuple[VisitMove, ...]

    @property
    def clashes(self) -> list[VisitMove]:
        return [v for v in self.visits if v.outcome == "clash"]


class _Clashed(Exception):
    """Rolls a series move's unit of work back; carries what would have clashed."""

    def __init__(self, move: SeriesMove) -> None:
        super().__init__("series move clashed")
        self.move = move
