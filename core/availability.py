"""Free slots as a pure function: no database, no clock, no I/O.

The pipeline (after Cal.com's date-ranges/slots): the shop's opening hours on a local date
become UTC intervals; each staff member's shift is intersected with them and time off is cut
out; candidate starts are stepped along the opening hours; a candidate survives if the lead
time and horizon allow it, some qualified staff member is working for the whole service and
not busy (their busy time extended by the shop's buffer), and every resource it needs has a
unit free for the whole service.

Local times are turned into instants with the "compatible" rule: a wall time that does not
exist (the spring-forward gap) moves forward by the gap; a wall time that exists twice (the
autumn fall-back) takes the earlier instant. Stepping happens in real (UTC) time, so a slot is
never 30 minutes long on paper and 90 in reality.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.config import TimeRange


@dataclass(frozen=True, order=True)
class Interval:
    """A half-open span [start, end) of UTC instants."""

    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end


@dataclass(frozen=True)
class StaffAvailability:
    """One staff member's day: shift (local wall time), time off and busy spans (UTC)."""

    staff_id: str
    shifts: Sequence[TimeRange]
    time_off: Sequence[Interval] = ()
    busy: Sequence[Interval] = ()


@dataclass(frozen=True)
class ResourceAvailability:
    """A shared resource: its units and what each unit is busy with (UTC)."""

    resource_id: str
    capacity: int
    busy_by_unit: Mapping[int, Sequence[Interval]] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotQuery:
    """Everything free_slots needs; ``now`` and the time zone are passed in, never read."""

    day: date
    tz: ZoneInfo
    now: datetime
    opening: Sequence[TimeRange]
    duration_min: int
    step_min: int
    buffer_min: int = 0
    lead_time_min: int = 0
    horizon_days: int = 30
    staff_required: bool = True
    staff: Sequence[StaffAvailability] = ()
    resources: Sequence[ResourceAvailability] = ()
    ignore_busy: bool = False  # answer "could this ever be booked?" (hours, lead time, horizon)


@dataclass(frozen=True)
class Slot:
    """A bookable start; ``staff_ids`` are the qualified staff free for it (in query order)."""

    start: datetime
    end: datetime
    staff_ids: tuple[str, ...] = ()


def to_utc(day: date, minute_of_day: int, tz: ZoneInfo) -> datetime:
    """The instant of a local wall time (minute 1440 is the next midnight), DST-safe."""
    local = datetime.combine(day, time()) + timedelta(minutes=minute_of_day)
    return local.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the "compatible" rule


def local_intervals(day: date, ranges: Sequence[TimeRange], tz: ZoneInfo) -> list[Interval]:
    """Wall-clock ranges on a local date as UTC intervals (empty ones dropped)."""
    out = []
    for r in sorted(ranges):
        start, end = to_utc(day, r.start_min, tz), to_utc(day, r.end_min, tz)
        if start < end:
            out.append(Interval(start, end))
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out = []
    for x in a:
        for y in b:
            start, end = max(x.start, y.start), min(x.end, y.end)
            if start < end:
                out.append(Interval(start, end))
    return sorted(out)


def subtract(base: Sequence[Interval], cuts: Sequence[Interval]) -> list[Interval]:
    out = list(base)
    for cut in cuts:
        nxt = []
        for x in out:
            if not x.overlaps(cut):
                nxt.append(x)
                continue
            if x.start < cut.start:
                nxt.append(Interval(x.start, cut.start))
            if cut.end < x.end:
                nxt.append(Interval(cut.end, x.end))
        out = nxt
    return sorted(out)


class _BusyIndex:
    """Sorted busy spans with an O(log n) overlap test."""

    def __init__(self, spans: Sequence[Interval], pad: timedelta) -> None:
        padded = sorted(Interval(s.start, s.end + pad) for s in spans)
        self.starts = [s.start for s in padded]
        # running max of ends lets one bisect answer "does anything before here reach past x"
        self.max_end: list[datetime] = []
        current: datetime | None = None
        for s in padded:
            current = s.end if current is None or s.end > current else current
            self.max_end.append(current)

    def overlaps(self, span: Interval) -> bool:
        i = bisect.bisect_left(self.starts, span.end)  # spans starting before span.end
        return i > 0 and self.max_end[i - 1] > span.start


def candidate_starts(query: SlotQuery) -> list[datetime]:
    """Starts stepped along each opening range, in real time, honouring lead time and horizon."""
    step = timedelta(minutes=query.step_min)
    duration = timedelta(minutes=query.duration_min)
    earliest = query.now + timedelta(minutes=query.lead_time_min)
    today = query.now.astimezone(query.tz).date()
    if query.day < today or query.day > today + timedelta(days=query.horizon_days):
        return []
    out = []
    for span in local_intervals(query.day, query.opening, query.tz):
        start = span.start
        while start + duration <= span.end:
            if start >= earliest:
                out.append(start)
            start += step
    return out


def free_slots(query: SlotQuery) -> list[Slot]:
    """Every start on ``query.day`` where the service fits, with who can take it."""
    duration = timedelta(minutes=query.duration_min)
    buffer = timedelta(minutes=query.buffer_min)
    opening = local_intervals(query.day, query.opening, query.tz)
    staff_windows = [
        (
            member.staff_id,
            subtract(
                intersect(opening, local_intervals(query.day, member.shifts, query.tz)),
                member.time_off,
            ),
            _BusyIndex(() if query.ignore_busy else member.busy, buffer),
        )
        for member in query.staff
    ]
    resource_units = [
        [
            _BusyIndex(() if query.ignore_busy else res.busy_by_unit.get(unit, ()), timedelta(0))
            for unit in range(res.capacity)
        ]
        for res in query.resources
    ]
    slots = []
    for start in candidate_starts(query):
        service_span = Interval(start, start + duration)
        staff_span = Interval(start, start + duration + buffer)
        if not all(
            any(not unit.overlaps(service_span) for unit in units) for units in resource_units
        ):
            continue
        free_staff = tuple(
            staff_id
            for staff_id, windows, busy in staff_windows
            if any(w.contains(service_span) for w in windows) and not busy.overlaps(staff_span)
        )
        if query.staff_required and not free_staff:
            continue
        slots.append(Slot(start, service_span.end, free_staff if query.staff_required else ()))
    return slots


def slot_at(query: SlotQuery, start: datetime) -> Slot | None:
    """The slot starting at ``start`` if it is one of ``free_slots(query)``, else None: the
    same rules for that one start only (a booking checks its own time, not the whole day)."""
    if start not in candidate_starts(query):
        return None
    duration = timedelta(minutes=query.duration_min)
    buffer = timedelta(minutes=query.buffer_min)
    service_span = Interval(start, start + duration)
    staff_span = Interval(start, start + duration + buffer)
    for res in query.resources:
        units = [
            _BusyIndex(() if query.ignore_busy else res.busy_by_unit.get(unit, ()), timedelta(0))
            for unit in range(res.capacity)
        ]
        if not any(not unit.overlaps(service_span) for unit in units):
            return None
    if not query.staff_required:
        return Slot(start, service_span.end, ())
    opening = local_intervals(query.day, query.opening, query.tz)
    free_staff = tuple(
        member.staff_id
        for member in query.staff
        if any(
            w.contains(service_span)
            for w in subtract(intersect(opening, local_intervals(query.day, member.shifts, query.tz)), member.time_off)
        )
        and not _BusyIndex(() if query.ignore_busy else member.busy, buffer).overlaps(staff_span)
    )
    return Slot(start, service_span.end, free_staff) if free_staff else None
