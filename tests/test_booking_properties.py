"""Property test: random hold/confirm/reschedule/cancel/time-off/clock sequences against a model.

Invariants after every step: no two live bookings overlap in the database (staff, with the
buffer); the database's live bookings are exactly the model's; holds expire; every change is in
the audit trail, in order.
"""

from __future__ import annotations

import asyncio
import functools
import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from bot.bootstrap import Services, bootstrap, load_faq_registry
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import load_config
from core.models import ACTIVE_STATUSES, BookingStatus
from core.results import Actor, Booked, NotAllowed, Taken
from faq import FaqRegistry
from tests.conftest import CONFIG_PATH, NOW
from tests.helpers import MON, at, copy_sqlite, overlaps_in_database, sqlite_template

STAFF = ("xiaomei", "ajie")
STARTS = [at(MON, f"{h:02d}:{m:02d}") for h in range(12, 18) for m in (0, 30)]
DURATION = timedelta(minutes=60)
BUFFER = timedelta(minutes=10)
TTL = timedelta(minutes=10)
T = TypeVar("T")
DESK = Actor.staff("desk")
CONFIG = load_config(CONFIG_PATH, environ={})


@functools.cache
def _faq() -> FaqRegistry | None:
    return load_faq_registry(CONFIG)  # parsed once per run, not once per example


@dataclass
class ModelBooking:
    staff: str
    start: datetime
    status: str  # held | confirmed | cancelled | expired
    expires: datetime | None
    actions: list[str] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.start + DURATION

    def live(self, now: datetime) -> bool:
        return self.status == "confirmed" or (self.status == "held" and self.expires is not None and self.expires > now)


class BookingMachine(RuleBasedStateMachine):
    bookings = Bundle("bookings")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.clock = FixedClock(NOW)
        path = Path(self.tmp.name) / "prop.db"
        # migrated and synced once per process (the template the conftest fixtures copy too), copied per example
        copy_sqlite(self.run(sqlite_template(CONFIG)), path)
        url = f"sqlite+aiosqlite:///{path}"
        self.services: Services = self.run(
            bootstrap(CONFIG, clock=self.clock, database_url=url, migrate=False, sync=False, faq_registry=_faq())
        )
        self.model: dict[int, ModelBooking] = {}
        self.absences: list[tuple[str, datetime, datetime]] = []  # (staff, start, end) of each time_off rule

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def read(self, work: Callable[[], Awaitable[T]]) -> T:
        """An invariant's reads, inside one unit of work: the same committed rows through the same
        services, read on SQLite's inline connection instead of a thread hop per statement (the
        rules themselves run as the app runs them, one transaction each)."""

        async def inside() -> T:
            async with self.services.db.unit_of_work():
                return await work()

        return self.run(inside())

    def teardown(self) -> None:
        self.run(self.services.close())
        self.loop.close()
        self.tmp.cleanup()

    # -- the model's view of the world

    def blocked(self, staff: str, start: datetime, exclude: int | None = None) -> bool:
        now = self.clock.now()
        end = start + DURATION
        for booking_id, b in self.model.items():
            mine = booking_id != exclude and b.staff == staff and b.live(now)
            if mine and start < b.end + BUFFER and b.start < end + BUFFER:
                return True
        return any(s == staff and start < e and b < end for s, b, e in self.absences)

    def expire_in_model(self) -> None:
        now = self.clock.now()
        for b in self.model.values():
            if b.status == "held" and b.expires is not None and b.expires <= now:
                b.status = "expired"

    # -- rules

    @rule(target=bookings, staff=st.sampled_from(STAFF), start=st.sampled_from(STARTS), customer=st.integers(1, 5))
    def hold(self, staff: str, start: datetime, customer: int) -> int:
        expected_free = not self.blocked(staff, start)
        result = self.run(
            self.services.bookings.hold(
                BookingRequest("pawspa", "dog_bath_small", start, staff_id=staff), Actor.customer(customer)
            )
        )
        if not expected_free:
            assert not isinstance(result, Booked), result
            return -1
        assert isinstance(result, Booked), result
        self.expire_in_model()
        self.model[result.booking.id] = ModelBooking(staff, start, "held", self.clock.now() + TTL, ["held"])
        return result.booking.id

    @rule(booking_id=bookings)
    def confirm(self, booking_id: int) -> None:
        if booking_id < 0:
            return
        b = self.model[booking_id]
        now = self.clock.now()
        result = self.run(self.services.bookings.confirm("pawspa", booking_id, Actor.customer(1)))
        if b.status == "confirmed":
            assert isinstance(result, Booked)
        elif b.status == "held" and b.live(now):
            assert isinstance(result, Booked) and result.booking.status == BookingStatus.CONFIRMED
            b.status, b.expires = "confirmed", None
            b.actions.append("confirmed")
        elif b.status in ("held", "expired"):
            b.status = "expired"  # released, then re-placed if still free
            if self.blocked(b.staff, b.start, exclude=booking_id):
                assert isinstance(result, (Taken, NotAllowed)), result
            else:
                assert isinstance(result, Booked), result
                b.status, b.expires = "confirmed", None
                b.actions.append("confirmed")
        else:
            assert isinstance(result, NotAllowed)
        if isinstance(result, Booked):
            self.expire_in_model()

    @rule(booking_id=bookings, start=st.sampled_from(STARTS))
    def reschedule(self, booking_id: int, start: datetime) -> None:
        if booking_id < 0:
            return
        b = self.model[booking_id]
        now = self.clock.now()
        result = self.run(self.services.bookings.reschedule("pawspa", booking_id, start, DESK, staff_id=b.staff))
        if not b.live(now):
            assert isinstance(result, NotAllowed), result
            if b.status == "held":
                b.status = "expired"  # the sweep at the start of the call may have released it
            return
        if self.blocked(b.staff, start, exclude=booking_id):
            assert isinstance(result, (Taken, NotAllowed)), result  # busy, or the groomer is off
        else:
            assert isinstance(result, Booked), result
            b.start = start
            b.actions.append("rescheduled")
            self.expire_in_model()

    @rule(booking_id=consumes(bookings))
    def cancel(self, booking_id: int) -> None:
        if booking_id < 0:
            return
        b = self.model[booking_id]
        result = self.run(self.services.bookings.cancel("pawspa", booking_id, DESK))
        if b.live(self.clock.now()):
            assert isinstance(result, Booked) and result.booking.status == BookingStatus.CANCELLED
            b.status = "cancelled"
            b.actions.append("cancelled")
            self.expire_in_model()
        else:
            assert isinstance(result, NotAllowed), result

    @rule(staff=st.sampled_from(STAFF), start=st.sampled_from(STARTS), hours=st.integers(1, 3))
    def time_off(self, staff: str, start: datetime, hours: int) -> None:
        end = start + timedelta(hours=hours)
        affected = self.run(self.services.bookings.add_time_off("pawspa", staff, start, end, DESK))
        now = self.clock.now()
        expected = {
            i for i, b in self.model.items() if b.staff == staff and b.live(now) and b.start < end and start < b.end
        }
        assert {a.id for a in affected} == expected
        self.absences.append((staff, start, end))

    @rule(minutes=st.integers(0, 15))
    def advance_clock(self, minutes: int) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    # -- invariants

    @invariant()
    def no_overlap_in_database(self) -> None:
        assert self.read(lambda: overlaps_in_database(self.services)) == []

    @invariant()
    def live_bookings_match_the_model(self) -> None:
        now = self.clock.now()
        views = self.read(self._all_views)
        live_in_db = {
            v.id
            for v in views
            if v.status in ACTIVE_STATUSES and (v.hold_expires_at is None or v.hold_expires_at > now)
        }
        assert live_in_db == {i for i, b in self.model.items() if b.live(now)}
        for v in views:
            b = self.model[v.id]
            if b.live(now):
                assert v.start == b.start and v.staff_id == b.staff

    @invariant()
    def audit_trail_is_complete(self) -> None:
        trails = self.read(self._all_histories)
        for booking_id, b in self.model.items():
            events = trails[booking_id]
            assert [e.action for e in events if e.action != "hold_expired"] == b.actions
            if any(e.action == "hold_expired" for e in events):
                assert b.status != "held"  # an expired hold never counts as held again

    async def _all_histories(self) -> dict[int, list[Any]]:
        return {booking_id: list(await self.services.bookings.history(booking_id)) for booking_id in self.model}

    async def _all_views(self) -> list:
        out = []
        for booking_id in self.model:
            view = await self.services.bookings.get("pawspa", booking_id)
            assert view is not None
            out.append(view)
        return out


BookingMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBookingProperties = BookingMachine.TestCase
