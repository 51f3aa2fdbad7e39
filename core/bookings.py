"""Booking operations: hold, confirm, book, approve/decline, reschedule, cancel, add-on.

Each operation is one database transaction and returns a typed result (core.results): the
booking, "taken" with the three nearest free alternatives, or "not allowed" with a reason.
Availability is checked inside the same write transaction, and the occupancy cells
(core.occupancy) make the database itself refuse an overlap, so what one process shows as
free and what another books can never end in a double booking. Every change writes a row to
the audit trail (booking_events).

Hold, book and confirm (a chat's booking taps) run on the thin path (issue 10): ONE unit of
work (core/db.py; inside a chat turn: the turn's own, with a savepoint of their own) and
prepared Core statements, each one sqlite3 call on SQLite: the booking's own time checked
against the day's calendar (read once per unit of work until something is written), its row,
its occupancy cells, its own reminder plan and its audit row; no ORM. Expired holds are swept
when they are in the way (their cells refused a claim, or the booking asked for is one), not on
every call; the scheduler sweeps the rest (``release_expired_holds``). What the unit of work
wrote is remembered in it, so the same turn reading its own hold back (the confirmation step,
``get``) does not query again. Reschedule and add-on go through the ORM session: one calendar
read (``slot_placement.fit``), then ``slot_placement.place`` claims; when a lapsed hold is in the
way it is swept and the same fit claimed again. Prices become cents through core/money.py only.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import reminders, shop_changes, slot_placement
from core.availability import Interval, Slot, free_slots
from core.clock import Clock
from core.config import AppConfig, ShopConfig
from core.db import Database, Prepared, UnitOfWork, prepared_insert
from core.models import (
    ACTIVE_STATUSES,
    ActorKind,
    Booking,
    BookingAddon,
    BookingEvent,
    BookingResource,
    BookingStatus,
    Occupancy,
    ShopChange,
)
from core.money import cents
from core.occupancy import release
from core.ratings import queue_rating_request
from core.results import Actor, Booked, BookingResult, BookingView, NotAllowed, Reason, Taken
from core.schedule import Calendar, day_span, slot_query
from core.slot_placement import ALTERNATIVES, Fit, Run, Wanted, claim_cells, fit, read_calendar, session_run

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud without doubt
__all__ = ["ALTERNATIVES", "BookingRequest", "BookingService", "UnknownItem", "Wanted", "new_code"]


def new_code(length: int = 6) -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


class UnknownItem(LookupError):
    """A shop, service, staff member or add-on id that the configuration does not have."""

    def __init__(self, reason: Reason, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class BookingRequest:
    shop_id: str
    service_id: str
    start: datetime
    staff_id: str | None = None
    customer_id: int | None = None
    pet_id: int | None = None
    addons: tuple[str, ...] = ()
    notes: str = ""


class _Abort(Exception):
    """Carries a failed result out of a transaction so that it rolls back."""

    def __init__(self, result: BookingResult | Wanted) -> None:
        self.result = result


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


# ---------------------------------------------------------------------- the thin path's statements

_B = cast(Table, Booking.__table__)
_ADDONS = cast(Table, BookingAddon.__table__)
_UNITS = cast(Table, BookingResource.__table__)
_EVENTS = cast(Table, BookingEvent.__table__)
_OCCUPANCY = cast(Table, Occupancy.__table__)
_BOOKING_COLUMNS = (
    "shop_id", "code", "customer_id", "pet_id", "service_id", "staff_id", "start_at", "end_at", "status",
    "hold_expires_at", "price_cents", "notes", "created_at", "updated_at",
)  # fmt: skip
_BOOKING_IN = prepared_insert(_B, _BOOKING_COLUMNS, returning=[_B.c.id])
_ADDON_IN = prepared_insert(_ADDONS, ("booking_id", "addon_id", "duration_min", "price_cents"))
_UNIT_IN = prepared_insert(_UNITS, ("booking_id", "resource_id", "unit"))
_EVENT_IN = prepared_insert(_EVENTS, ("booking_id", "at", "actor_kind", "actor_id", "action", "details"))
_BOOKING_SELECT = select(
    _B.c.id, _B.c.shop_id, _B.c.code, _B.c.service_id, _B.c.staff_id, _B.c.start_at, _B.c.end_at, _B.c.status,
    _B.c.customer_id, _B.c.pet_id, _B.c.hold_expires_at, _B.c.price_cents,
).where(_B.c.id == bindparam("g_id"), _B.c.shop_id == bindparam("g_shop"))  # fmt: skip
_BOOKING_ROW = Prepared(_BOOKING_SELECT)
# PostgreSQL: the row is ours until the commit (SQLite: the unit of work holds the write lock)
_BOOKING_LOCKED = Prepared(_BOOKING_SELECT.with_for_update())
_ADDONS_OF = Prepared(select(_ADDONS.c.addon_id).where(_ADDONS.c.booking_id == bindparam("g_id")))
_UNITS_OF = Prepared(select(_UNITS.c.resource_id, _UNITS.c.unit).where(_UNITS.c.booking_id == bindparam("g_id")))
_UNITS_GONE = Prepared(delete(_UNITS).where(_UNITS.c.booking_id == bindparam("g_id")))
_STAFF_SET = Prepared(update(_B).where(_B.c.id == bindparam("u_id")).values(staff_id=bindparam("u_staff")))
_CONFIRMED = Prepared(
    update(_B)
    .where(_B.c.id == bindparam("u_id"))
    .values(
        status=bindparam("u_status", type_=_B.c.status.type),
        hold_expires_at=None,
        staff_id=bindparam("u_staff"),
        updated_at=bindparam("u_now"),
    )
)
_TOUCHED = Prepared(update(_B).where(_B.c.id == bindparam("u_id")).values(updated_at=bindparam("u_now")))
_EXPIRE = Prepared(
    update(_B)
    .where(
        _B.c.shop_id == bindparam("x_shop"),
        _B.c.status == BookingStatus.HELD,
        _B.c.hold_expires_at <= bindparam("x_now"),
    )
    .values(status=BookingStatus.EXPIRED, updated_at=bindparam("x_now"))
    .returning(_B.c.id)
)
_CELLS_GONE = Prepared(delete(_OCCUPANCY).where(_OCCUPANCY.c.booking_id == bindparam("r_id")))


class BookingService:
    """The booking use cases for every configured shop."""

    def __init__(
        self,
        db: Database,
        config: AppConfig,
        clock: Clock,
        *,
        code_factory: Callable[[], str] = new_code,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self._new_code = code_factory

    # ------------------------------------------------------------------ lookups

    def shop(self, shop_id: str) -> ShopConfig:
        shop = self.config.shop(shop_id)
        if shop is None:
            raise UnknownItem(Reason.UNKNOWN_SHOP, f"unknown shop '{shop_id}'")
        return shop

    def _service_staff(self, shop: ShopConfig, service_id: str, staff_id: str | None) -> list[str]:
        """The staff who may take a service (just ``staff_id`` when one is asked for)."""
        if service_id not in shop.services:
            raise UnknownItem(Reason.UNKNOWN_SERVICE, f"unknown service '{service_id}'")
        if not shop.services[service_id].staff_required:
            return []
        if staff_id is None:
            return shop.qualified_staff(service_id)
        if staff_id not in shop.staff:
            raise UnknownItem(Reason.UNKNOWN_STAFF, f"unknown staff member '{staff_id}'")
        if service_id not in shop.staff[staff_id].services:
            raise UnknownItem(Reason.STAFF_NOT_QUALIFIED, f"'{staff_id}' does not do '{service_id}'")
        return [staff_id]

    def duration_min(self, shop: ShopConfig, service_id: str, addons: Sequence[str] = ()) -> int:
        service = shop.services[service_id]
        for addon in addons:
            if addon not in shop.addons:
                raise UnknownItem(Reason.UNKNOWN_ADDON, f"unknown add-on '{addon}'")
            if addon not in service.addons:
                raise UnknownItem(Reason.ADDON_NOT_OFFERED, f"'{addon}' is not offered with '{service_id}'")
        return service.duration_min + sum(shop.addons[a].duration_min for a in addons)

    # ------------------------------------------------------------------ reads

    async def free_slots(
        self,
        shop_id: str,
        service_id: str,
        day: date,
        *,
        staff_id: str | None = None,
        addons: Sequence[str] = (),
        exclude_booking: int | None = None,
    ) -> list[Slot]:
        """Free starts on a local date. Raises UnknownItem for ids the config lacks.

        ``exclude_booking`` shows the times a booking could move to (its own time counts as free).
        """
        shop = self.shop(shop_id)
        staff = self._service_staff(shop, service_id, staff_id)
        duration = self.duration_min(shop, service_id, addons)
        now = self.clock.now()
        cal = await self._calendar(shop, shop_id, day_span(shop, day), now, exclude_booking)
        return free_slots(slot_query(shop, service_id, day, now, duration_min=duration, staff_ids=staff, calendar=cal))

    async def days_with_slots(
        self,
        shop_id: str,
        service_id: str,
        first: date,
        count: int,
        *,
        addons: Sequence[str] = (),
        exclude_booking: int | None = None,
        staff_id: str | None = None,
    ) -> tuple[list[date], bool]:
        """The first ``count`` local dates from ``first`` with a free slot (one calendar read for
        the whole horizon), and whether there are more after them (with ``staff_id``: with them)."""
        shop = self.shop(shop_id)
        staff = self._service_staff(shop, service_id, staff_id)
        duration = self.duration_min(shop, service_id, addons)
        now = self.clock.now()
        today = now.astimezone(shop.tz).date()
        last = today + timedelta(days=shop.booking.horizon_days)
        first = max(first, today)
        if first > last:
            return [], False
        span = Interval(day_span(shop, first).start, day_span(shop, last).end)
        cal = await self._calendar(shop, shop_id, span, now, exclude_booking)
        found: list[date] = []
        day = first
        while day <= last:
            if shop.hours_on(day) and free_slots(
                slot_query(shop, service_id, day, now, duration_min=duration, staff_ids=staff, calendar=cal)
            ):
                if len(found) == count:
                    return found, True
                found.append(day)
            day += timedelta(days=1)
        return found, False

    async def get(self, shop_id: str, booking_id: int) -> BookingView | None:
        uow = self.db.current()
        if uow is not None:  # a chat turn: what it wrote itself is not read again
            return await self._load(uow, uow.run, shop_id, booking_id, lock=False)
        async with self.db.reading() as s:
            return await self._load(None, session_run(s), shop_id, booking_id, lock=False)

    async def find_by_code(self, shop_id: str, code: str) -> BookingView | None:
        async with self.db.reading() as s:
            row = await s.scalar(
                select(Booking).where(Booking.shop_id == shop_id, Booking.code == code.strip().upper())
            )
            return BookingView.of(row) if row else None

    async def upcoming(self, shop_id: str, customer_id: int) -> list[BookingView]:
        """A customer's bookings that are still ahead (held, pending or confirmed), soonest first."""
        now = self.clock.now()
        async with self.db.reading() as s:
            rows = await s.scalars(
                select(Booking)
                .where(
                    Booking.shop_id == shop_id,
                    Booking.customer_id == customer_id,
                    Booking.status.in_((BookingStatus.PENDING, BookingStatus.CONFIRMED)),
                    Booking.end_at > now,
                )
                .order_by(Booking.start_at)
            )
            return [BookingView.of(b) for b in rows]

    async def history(self, booking_id: int) -> list[BookingEvent]:
        async with self.db.reading() as s:
            rows = await s.scalars(
                select(BookingEvent).where(BookingEvent.booking_id == booking_id).order_by(BookingEvent.id)
            )
            return list(rows)

    # ------------------------------------------------------------------ creating

    async def hold(self, request: BookingRequest, actor: Actor, *, minutes: int | None = None) -> BookingResult:
        """Reserve a slot for ``minutes`` (default: the shop's ``hold_ttl_min``) while the customer confirms."""
        return await self._create(request, actor, hold=True, hold_minutes=minutes)

    async def book(self, request: BookingRequest, actor: Actor) -> BookingResult:
        """Book straight away: confirmed, or pending when the service needs staff approval."""
        return await self._create(request, actor, hold=False)

    async def _create(
        self, request: BookingRequest, actor: Actor, *, hold: bool, hold_minutes: int | None = None
    ) -> BookingResult:
        try:
            shop = self.shop(request.shop_id)
            staff = self._service_staff(shop, request.service_id, request.staff_id)
            duration = self.duration_min(shop, request.service_id, request.addons)
        except UnknownItem as exc:
            return NotAllowed(exc.reason, exc.detail)
        now = self.clock.now()
        inside = self.db.current() is not None  # a chat turn's unit of work: a savepoint of it
        try:
            async with self.db.unit_of_work() as uow, uow.savepoint() if inside else nullcontext():
                view = await self._create_in(uow, shop, request, actor, staff, duration, now, hold, hold_minutes)
        except _Abort as aborted:
            if isinstance(aborted.result, Wanted):
                return await self._alternatives(aborted.result)
            return aborted.result
        return Booked(view)

    async def _create_in(
        self,
        uow: UnitOfWork,
        shop: ShopConfig,
        request: BookingRequest,
        actor: Actor,
        staff: list[str],
        duration: int,
        now: datetime,
        hold: bool,
        hold_minutes: int | None,
    ) -> BookingView:
        shop_id, service_id, start = request.shop_id, request.service_id, request.start
        cal = await self._calendar(shop, shop_id, day_span(shop, start.astimezone(shop.tz).date()), now, None)
        found = await fit(
            uow.run, shop, shop_id, service_id, start, duration, staff=staff, staff_pref=request.staff_id,
            now=now, exclude_booking=None, calendar=cal,
        )  # fmt: skip
        if not isinstance(found, Fit):
            raise _Abort(found)
        status = BookingStatus.HELD if hold else self._status_after_confirm(shop, service_id, actor)
        expires = now + timedelta(minutes=hold_minutes or shop.booking.hold_ttl_min) if hold else None
        first = found.candidates[0]
        self._wrote(uow)
        code = self._new_code()
        price_cents = self._price_cents(shop, service_id, request.addons)
        values: dict[str, Any] = {
            "shop_id": shop_id,
            "code": code,
            "customer_id": request.customer_id,
            "pet_id": request.pet_id,
            "service_id": service_id,
            "staff_id": first,
            "start_at": start,
            "end_at": found.end,
            "status": status,
            "hold_expires_at": expires,
            "price_cents": price_cents,
            "notes": request.notes,
            "created_at": now,
            "updated_at": now,
        }
        booking_id = int((await uow.run(_BOOKING_IN, values))[0][0])
        placed = await self._claim(uow, shop, shop_id, service_id, booking_id, found, now)
        if placed is None:
            raise _Abort(Wanted(shop_id, service_id, start, duration, tuple(staff), None))
        staff_id, units = placed
        if staff_id != first:
            await uow.run(_STAFF_SET, {"u_id": booking_id, "u_staff": staff_id})
        await uow.run_many(
            _ADDON_IN,
            [
                {
                    "booking_id": booking_id,
                    "addon_id": a,
                    "duration_min": shop.addons[a].duration_min,
                    "price_cents": cents(shop.addons[a].price),
                }
                for a in request.addons
            ],
        )
        await uow.run_many(_UNIT_IN, [{"booking_id": booking_id, "resource_id": r, "unit": u} for r, u in units])
        if status == BookingStatus.CONFIRMED:
            confirmation = actor.kind != ActorKind.CUSTOMER
            await reminders.plan_new(uow, booking_id, start, service_id, shop, now, confirmation=confirmation)
        details = {"status": status.value, "start": _iso(start), "staff": staff_id, "addons": list(request.addons)}
        await self._event(uow, booking_id, actor, now, "held" if hold else "booked", details)
        row = SimpleNamespace(**{**values, "id": booking_id, "staff_id": staff_id})  # the row as written
        view = BookingView.of_columns(row, request.addons, units)
        self._bookings(uow)[(shop_id, booking_id)] = view
        return view

    # ------------------------------------------------------------------ changing

    async def confirm(self, shop_id: str, booking_id: int, actor: Actor) -> BookingResult:
        """Turn a hold into a booking. A hold that expired is re-placed if the slot is still free."""
        try:
            shop = self.shop(shop_id)
        except UnknownItem as exc:
            return NotAllowed(exc.reason, exc.detail)
        now = self.clock.now()
        inside = self.db.current() is not None
        try:
            async with self.db.unit_of_work() as uow, uow.savepoint() if inside else nullcontext():
                view = await self._confirm_in(uow, shop, shop_id, booking_id, actor, now)
        except _Abort as aborted:
            if isinstance(aborted.result, Wanted):
                return await self._alternatives(aborted.result)
            return aborted.result
        return Booked(view)

    async def _confirm_in(
        self, uow: UnitOfWork, shop: ShopConfig, shop_id: str, booking_id: int, actor: Actor, now: datetime
    ) -> BookingView:
        b = await self._load(uow, uow.run, shop_id, booking_id, lock=True)
        if b is None:
            raise _Abort(NotAllowed(Reason.NOT_FOUND, f"no booking {booking_id} at {shop_id}"))
        if b.status == BookingStatus.HELD and b.hold_expires_at is not None and b.hold_expires_at <= now:
            await self._sweep(uow, shop_id, now)  # this hold's time ran out: released first, as any other
            b = replace(b, status=BookingStatus.EXPIRED, resources=())
        self._wrote(uow)
        if b.status in (BookingStatus.PENDING, BookingStatus.CONFIRMED):
            await uow.run(_TOUCHED, {"u_id": b.id, "u_now": now})
            return b  # confirming twice is harmless
        if b.status == BookingStatus.EXPIRED:
            try:
                staff = self._service_staff(shop, b.service_id, b.staff_id)
            except UnknownItem as exc:
                raise _Abort(NotAllowed(exc.reason, exc.detail)) from None
            found = await fit(
                uow.run, shop, shop_id, b.service_id, b.start, b.duration_min, staff=staff, staff_pref=b.staff_id,
                now=now, exclude_booking=b.id,
            )  # fmt: skip
            if not isinstance(found, Fit):
                raise _Abort(found)
            placed = await self._claim(uow, shop, shop_id, b.service_id, b.id, found, now)
            if placed is None:
                raise _Abort(Wanted(shop_id, b.service_id, b.start, b.duration_min, tuple(staff), b.id))
            staff_id, units = placed
            await uow.run(_UNITS_GONE, {"g_id": b.id})
            await uow.run_many(_UNIT_IN, [{"booking_id": b.id, "resource_id": r, "unit": u} for r, u in units])
            b = replace(b, staff_id=staff_id, resources=tuple(sorted(units)))
        elif b.status != BookingStatus.HELD:
            raise _Abort(NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}"))
        status = self._status_after_confirm(shop, b.service_id, actor)
        b = replace(b, status=status, hold_expires_at=None)
        await uow.run(_CONFIRMED, {"u_id": b.id, "u_status": status, "u_staff": b.staff_id, "u_now": now})
        if status == BookingStatus.CONFIRMED:  # the chat reply itself is the confirmation
            await reminders.plan_new(uow, b.id, b.start, b.service_id, shop, now)
        await self._event(uow, b.id, actor, now, "confirmed", {"status": status.value})
        self._bookings(uow)[(shop_id, b.id)] = b
        return b

    async def mark_attendance(self, shop_id: str, booking_id: int, outcome: str, actor: Actor) -> BookingResult:
        """Staff record what happened: "arrived", "completed" or "no_show" (after the start)."""
        if outcome not in ("arrived", "completed", "no_show"):
            return NotAllowed(Reason.INVALID_STATE, f"unknown attendance '{outcome}'")

        async def change(s: AsyncSession, shop: ShopConfig, b: Booking, now: datetime) -> BookingResult:
            if b.status != BookingStatus.CONFIRMED:
                return NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}")
            if outcome == "no_show" and now < b.start_at:
                return NotAllowed(Reason.TOO_SOON, "a no-show can only be recorded after the start time")
            if outcome != "arrived":
                await release(s, [b.id])
                await reminders.cancel(s, b.id, outcome)
                b.status = BookingStatus.COMPLETED if outcome == "completed" else BookingStatus.NO_SHOW
                if outcome == "completed":
                    await reminders.after_visit(s, b, shop, now)
                    await queue_rating_request(s, b, shop, now)  # "how was your visit?" with stars
            self._audit(s, b, actor, now, outcome)
            return Booked(BookingView.of(b))

        return await self._change(shop_id, booking_id, change)

    async def acknowledge(self, shop_id: str, booking_id: int, actor: Actor) -> BookingResult:
        """The customer confirmed they will come (from a reminder's button)."""

        async def change(s: AsyncSession, shop: ShopConfig, b: Booking, now: datetime) -> BookingResult:
            if b.status != BookingStatus.CONFIRMED:
                return NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}")
            self._audit(s, b, actor, now, "customer_confirmed")
            return Booked(BookingView.of(b))

        return await self._change(shop_id, booking_id, change)

    async def approve(self, shop_id: str, booking_id: int, actor: Actor) -> BookingResult:
        """Staff accept a pending request."""

        async def change(s: AsyncSession, shop: ShopConfig, b: Booking, now: datetime) -> BookingResult:
            if b.status != BookingStatus.PENDING:
                return NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}, not pending")
            b.status = BookingStatus.CONFIRMED
            await reminders.replan(s, b, shop, now, confirmation=True)  # the customer is told at once
            self._audit(s, b, actor, now, "approved")
            return Booked(BookingView.of(b))

        return await self._change(shop_id, booking_id, change)

    async def decline(self, shop_id: str, booking_id: int, actor: Actor, reason: str = "") -> BookingResult:
        """Staff turn down a pending request; the slot is freed."""

        async def change(s: AsyncSession, shop: ShopConfig, b: Booking, now: datetime) -> BookingResult:
            if b.status != BookingStatus.PENDING:
                return NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}, not pending")
            await release(s, [b.id])
            b.status = BookingStatus.CANCELLED
            await reminders.cancel(s, b.id, "declined")
            await reminders.notify(s, b, "declined", now)  # the customer is told at once
            self._audit(s, b, actor, now, "declined", reason=reason)
            return Booked(BookingView.of(b))

        return await self._change(shop_id, booking_id, change)

    async def cancel(self, shop_id: str, booking_id: int, actor: Actor, reason: str = "") -> BookingResult:
        """Cancel; customers may not within the shop's cut-off (staff always may)."""

        async def change(s: AsyncSession, shop: ShopConfig, b: Booking, now: datetime) -> BookingResult:
            if b.status not in ACTIVE_STATUSES:
                return NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}")
            cutoff = timedelta(minutes=shop.booking.cancel_cutoff_min)
            if actor.kind == ActorKind.CUSTOMER and b.status != BookingStatus.HELD and b.start_at - now < cutoff:
                return NotAllowed(Reason.CUTOFF_PASSED, f"cancel at least {cutoff} before the start")
            await release(s, [b.id])
            previous = b.status.value
            b.status = BookingStatus.CANCELLED
            b.hold_expires_at = None
            await reminders.cancel(s, b.id, "booking cancelled")
            await shop_changes.resolve(s, b.id, now, "cancelled")
            if actor.kind != ActorKind.CUSTOMER and previous != BookingStatus.HELD.value:
                await reminders.notify(s, b, "cancelled", now)
            self._audit(s, b, actor, now, "cancelled", reason=reason, previous=previous)
            return Booked(BookingView.of(b))

        return await self._change(shop_id, booking_id, change)

    async def reschedule(
        self,
        shop_id: str,
        booking_id: int,
        new_start: datetime,
        actor: Actor,
        *,
        staff_id: str | None = None,
        add_addon: str | None = None,
    ) -> BookingResult:
        """Move a booking atomically: the old time is given up only if the new one is taken.

        ``add_addon`` adds an extra in the same move (when it did not fit at the old time).
        """

        async def change(s: AsyncSession, shop: ShopConfig, b: Booking, now: datetime) -> BookingResult:
            if b.status not in ACTIVE_STATUSES:
                return NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}")
            cutoff = timedelta(minutes=shop.booking.reschedule_cutoff_min)
            if actor.kind == ActorKind.CUSTOMER and b.start_at - now < cutoff:
                return NotAllowed(Reason.CUTOFF_PASSED, f"reschedule at least {cutoff} before the start")
            try:
                self._service_staff(shop, b.service_id, staff_id)
            except UnknownItem as exc:
                return NotAllowed(exc.reason, exc.detail)
            before = {"start": _iso(b.start_at), "staff": b.staff_id}
            duration = b.duration_min
            addon = None
            if add_addon is not None:
                if add_addon in [a.addon_id for a in b.addons]:
                    return NotAllowed(Reason.ADDON_ALREADY_ADDED, f"'{add_addon}' is already on this booking")
                try:
                    self.duration_min(shop, b.service_id, [add_addon])
                except UnknownItem as exc:
                    return NotAllowed(exc.reason, exc.detail)
                addon = shop.addons[add_addon]
                duration += addon.duration_min
            await self._vacate(s, b)
            problem = await self._place(
                s, shop, b, new_start, duration, staff_pref=staff_id, prefer=b.staff_id, now=now
            )
            if problem is not None:
                raise _Abort(problem)
            b.end_at = new_start + timedelta(minutes=duration)
            if addon is not None and add_addon is not None:
                price = cents(addon.price)
                b.addons.append(BookingAddon(addon_id=add_addon, duration_min=addon.duration_min, price_cents=price))
                b.price_cents += price
                self._audit(s, b, actor, now, "addon_added", addon=add_addon, end=_iso(b.end_at))
            self._audit(
                s,
                b,
                actor,
                now,
                "rescheduled",
                before=before,
                after={"start": _iso(new_start), "staff": b.staff_id},
            )
            if b.status == BookingStatus.CONFIRMED:
                await reminders.replan(s, b, shop, now, confirmation=actor.kind != ActorKind.CUSTOMER)
            await shop_changes.resolve(s, b.id, now, "rebooked")
            return Booked(BookingView.of(b))

        return await self._change(shop_id, booking_id, change)

    async def add_addon(self, shop_id: str, booking_id: int, addon_id: str, actor: Actor) -> BookingResult:
        """Add an extra to a booking, extending it if the time after it is free."""

        async def change(s: AsyncSession, shop: ShopConfig, b: Booking, now: datetime) -> BookingResult:
            if b.status not in ACTIVE_STATUSES:
                return NotAllowed(Reason.INVALID_STATE, f"booking is {b.status.value}")
            current = [a.addon_id for a in b.addons]
            if addon_id in current:
                return NotAllowed(Reason.ADDON_ALREADY_ADDED, f"'{addon_id}' is already on this booking")
            try:
                duration = self.duration_min(shop, b.service_id, [*current, addon_id])
            except UnknownItem as exc:
                return NotAllowed(exc.reason, exc.detail)
            await self._vacate(s, b)
            problem = await self._place(
                s, shop, b, b.start_at, duration, staff_pref=b.staff_id, now=now, lead_time=False
            )
            if problem is not None:
                staff = tuple(self._service_staff(shop, b.service_id, None))
                raise _Abort(Wanted(shop_id, b.service_id, b.start_at, duration, staff, b.id, "addon_does_not_fit"))
            addon = shop.addons[addon_id]
            b.addons.append(
                BookingAddon(addon_id=addon_id, duration_min=addon.duration_min, price_cents=cents(addon.price))
            )
            b.end_at = b.start_at + timedelta(minutes=duration)
            b.price_cents += cents(addon.price)
            self._audit(s, b, actor, now, "addon_added", addon=addon_id, end=_iso(b.end_at))
            return Booked(BookingView.of(b))

        return await self._change(shop_id, booking_id, change)

    async def add_time_off(
        self,
        shop_id: str,
        staff_id: str,
        start: datetime,
        end: datetime,
        actor: Actor,
        reason: str = "",
        *,
        notify_customers: bool = False,
        respond_within: timedelta = timedelta(hours=12),
    ) -> list[BookingView]:
        """Record an absence; returns the active bookings it affects.

        With ``notify_customers`` each affected customer is told, in the same transaction, and
        offered alternatives (the shop-side change flow); who has not answered by the deadline
        (``respond_within``, at the latest 2 hours before the visit) is listed for staff to call.
        """
        shop = self.shop(shop_id)
        if staff_id not in shop.staff:
            raise UnknownItem(Reason.UNKNOWN_STAFF, f"unknown staff member '{staff_id}'")
        if end <= start:
            raise ValueError("time off must end after it starts")
        now = self.clock.now()
        async with self.db.transaction() as s:
            return await shop_changes.record_time_off(
                s,
                shop_id=shop_id,
                staff_id=staff_id,
                start=start,
                end=end,
                actor=actor,
                reason=reason,
                now=now,
                notify_customers=notify_customers,
                respond_within=respond_within,
                audit=self._audit,
            )

    async def change_options(self, shop_id: str, booking_id: int, count: int = 3) -> list[tuple[datetime, str | None]]:
        """Alternatives for a booking the shop cannot keep (core/shop_changes.py)."""
        return await shop_changes.change_options(self, shop_id, booking_id, count)

    async def open_shop_changes(
        self, shop_id: str, *, overdue_only: bool = False
    ) -> list[tuple[ShopChange, BookingView]]:
        """Shop-side changes the customer has not answered yet (overdue ones: call them)."""
        return await shop_changes.open_changes(self.db, shop_id, self.clock.now(), overdue_only=overdue_only)

    async def release_expired_holds(self, shop_id: str | None = None) -> int:
        """Free the slots of holds whose time ran out; returns how many were released."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            return len(await self._release_expired(s, shop_id, now))

    # ------------------------------------------------------------------ internals

    async def _change(
        self,
        shop_id: str,
        booking_id: int,
        change: Callable[[AsyncSession, ShopConfig, Booking, datetime], Any],
    ) -> BookingResult:
        try:
            shop = self.shop(shop_id)
        except UnknownItem as exc:
            return NotAllowed(exc.reason, exc.detail)
        now = self.clock.now()
        uow = self.db.current()
        if uow is not None:
            self._wrote(uow)
            self._bookings(uow).pop((shop_id, booking_id), None)
        try:
            async with self.db.transaction() as s:
                booking = await s.scalar(
                    select(Booking).where(Booking.id == booking_id, Booking.shop_id == shop_id).with_for_update()
                )
                if booking is None:
                    return NotAllowed(Reason.NOT_FOUND, f"no booking {booking_id} at {shop_id}")
                expires = booking.hold_expires_at
                if booking.status == BookingStatus.HELD and expires is not None and expires <= now:
                    await self._release_expired(s, shop_id, now)  # this hold's time ran out: released first
                    await s.refresh(booking)
                result: BookingResult = await change(s, shop, booking, now)
                if isinstance(result, Booked):
                    booking.updated_at = now
                    await s.flush()
                    result = Booked(BookingView.of(booking))
                else:
                    raise _Abort(result)
                return result
        except _Abort as aborted:
            if isinstance(aborted.result, Wanted):
                return await self._alternatives(aborted.result)
            return aborted.result

    async def _release_expired(self, s: AsyncSession, shop_id: str | None, now: datetime) -> list[int]:
        """Expire holds past their time. The guarded UPDATE makes concurrent sweeps harmless."""
        query = (
            update(Booking)
            .where(Booking.status == BookingStatus.HELD, Booking.hold_expires_at <= now)
            .values(status=BookingStatus.EXPIRED, updated_at=now)
            .returning(Booking.id)
            .execution_options(synchronize_session=False)
        )
        if shop_id is not None:
            query = query.where(Booking.shop_id == shop_id)
        expired = list(await s.scalars(query))
        uow = self.db.current()
        if uow is not None and expired:
            self._wrote(uow)
            self._bookings(uow).clear()
        if expired:
            await release(s, expired)
            for booking_id in expired:
                s.add(
                    BookingEvent(
                        booking_id=booking_id,
                        at=now,
                        actor_kind=ActorKind.SYSTEM,
                        actor_id="hold-expiry",
                        action="hold_expired",
                        details={},
                    )
                )
        return expired

    async def _vacate(self, s: AsyncSession, booking: Booking) -> None:
        await release(s, [booking.id])
        booking.resources.clear()
        await s.flush()

    async def _place(
        self,
        s: AsyncSession,
        shop: ShopConfig,
        booking: Booking,
        start: datetime,
        duration_min: int,
        *,
        staff_pref: str | None,
        now: datetime,
        prefer: str | None = None,
        lead_time: bool = True,
    ) -> BookingResult | Wanted | None:
        """Claim staff and resources for ``booking`` at ``start``; None when it worked (core/slot_placement.py)."""
        try:
            staff = self._service_staff(shop, booking.service_id, staff_pref)
        except UnknownItem as exc:
            return NotAllowed(exc.reason, exc.detail)
        found = await fit(
            session_run(s), shop, booking.shop_id, booking.service_id, start, duration_min, staff=staff,
            staff_pref=staff_pref, now=now, exclude_booking=booking.id, prefer=prefer, lead_time=lead_time,
        )  # fmt: skip
        if not isinstance(found, Fit):
            return found
        placed = await slot_placement.place(s, shop, booking, found)
        if not placed and await self._release_expired(s, booking.shop_id, now):
            # expired holds (not swept yet) may hold the cells: freed, so the same fit is tried once more
            placed = await slot_placement.place(s, shop, booking, found)
        if placed:
            return None
        return Wanted(booking.shop_id, booking.service_id, start, duration_min, tuple(staff), booking.id)

    # ------------------------------------------------------------------ the thin path's helpers

    @staticmethod
    def _bookings(uow: UnitOfWork) -> dict[tuple[str, int], BookingView]:
        """The bookings this unit of work wrote or locked, as they are now in it."""
        return cast("dict[tuple[str, int], BookingView]", uow.cache.setdefault("bookings", {}))

    @staticmethod
    def _wrote(uow: UnitOfWork) -> None:
        """Something is being written: calendars read earlier in the work are not reused."""
        uow.cache.pop("calendars", None)

    async def _calendar(
        self, shop: ShopConfig, shop_id: str, span: Interval, now: datetime, exclude_booking: int | None
    ) -> Calendar:
        """The busy time around ``span``; inside a unit of work read once until it writes (a
        tap that lists a day's times and then holds one reads the day once)."""
        uow = self.db.current()
        if uow is None:
            async with self.db.reading() as s:
                return await read_calendar(session_run(s), shop, shop_id, span, now, exclude_booking=exclude_booking)
        calendars = cast("dict[Any, Calendar]", uow.cache.setdefault("calendars", {}))
        key = (shop_id, span, exclude_booking)
        cal = calendars.get(key)
        if cal is None:
            cal = await read_calendar(uow.run, shop, shop_id, span, now, exclude_booking=exclude_booking)
            calendars[key] = cal
        return cal

    async def _load(
        self, uow: UnitOfWork | None, run: Run, shop_id: str, booking_id: int, *, lock: bool
    ) -> BookingView | None:
        """A booking as it is now; inside a unit of work, what it wrote or locked (``lock``:
        SELECT ... FOR UPDATE on PostgreSQL) is remembered and not read again."""
        if uow is not None:
            known = self._bookings(uow).get((shop_id, booking_id))
            if known is not None:
                return known
        rows = await run(_BOOKING_LOCKED if lock else _BOOKING_ROW, {"g_id": booking_id, "g_shop": shop_id})
        if not rows:
            return None
        row = rows[0]
        addons = [a for (a,) in await run(_ADDONS_OF, {"g_id": booking_id})]
        units = [(r, int(u)) for r, u in await run(_UNITS_OF, {"g_id": booking_id})]
        view = BookingView.of_columns(row, addons, units)
        if uow is not None and lock:
            self._bookings(uow)[(shop_id, booking_id)] = view
        return view

    async def _claim(
        self,
        uow: UnitOfWork,
        shop: ShopConfig,
        shop_id: str,
        service_id: str,
        booking_id: int,
        found: Fit,
        now: datetime,
    ) -> tuple[str | None, list[tuple[str, int]]] | None:
        """The cells of the first candidate that fits; when none does, expired holds not swept
        yet may be in the way: swept, then tried once more."""
        placed = await claim_cells(uow, shop, shop_id, service_id, booking_id, found)
        if placed is None and await self._sweep(uow, shop_id, now):
            placed = await claim_cells(uow, shop, shop_id, service_id, booking_id, found)
        return placed

    async def _sweep(self, uow: UnitOfWork, shop_id: str, now: datetime) -> list[int]:
        """``_release_expired`` for one shop on prepared statements (the guarded UPDATE makes
        concurrent sweeps harmless)."""
        expired = [int(row[0]) for row in await uow.run(_EXPIRE, {"x_shop": shop_id, "x_now": now})]
        if expired:
            self._bookings(uow).clear()
            self._wrote(uow)
            await uow.run_many(_CELLS_GONE, [{"r_id": i} for i in expired])
            system = Actor(ActorKind.SYSTEM, "hold-expiry")
            for booking_id in expired:
                await self._event(uow, booking_id, system, now, "hold_expired", {})
        return expired

    @staticmethod
    async def _event(
        uow: UnitOfWork, booking_id: int, actor: Actor, now: datetime, action: str, details: dict[str, Any]
    ) -> None:
        values = {
            "booking_id": booking_id,
            "at": now,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "action": action,
            "details": details,
        }
        await uow.run(_EVENT_IN, values)

    async def _alternatives(self, wanted: Wanted) -> Taken:
        """The nearest free starts to the refused time (core/slot_placement.py)."""
        return await slot_placement.alternatives(self.db, self.shop(wanted.shop_id), wanted, self.clock.now())

    @staticmethod
    def _status_after_confirm(shop: ShopConfig, service_id: str, actor: Actor) -> BookingStatus:
        if actor.kind == ActorKind.STAFF or shop.services[service_id].confirmation == "auto":
            return BookingStatus.CONFIRMED
        return BookingStatus.PENDING

    @staticmethod
    def _price_cents(shop: ShopConfig, service_id: str, addons: Sequence[str]) -> int:
        total = shop.services[service_id].price + sum(shop.addons[a].price for a in addons)
        return cents(total)

    @staticmethod
    def _audit(s: AsyncSession, booking: Booking, actor: Actor, now: datetime, action: str, **details: Any) -> None:
        s.add(
            BookingEvent(
                booking_id=booking.id,
                at=now,
                actor_kind=actor.kind,
                actor_id=actor.id,
                action=action,
                details=details,
            )
        )
