"""Availability latency: a shop with 10 staff, 30 days and 5,000 confirmed bookings (prints, no asserts).

Seeds the synthetic shop of bench/_common.py with 5,000 confirmed bookings (16-17 per staff
member per day, random services and gaps, buffers and the 3 shared tubs respected, occupancy
cells written too) by bulk INSERT, then times random (day, service) queries three ways:

  service   BookingService.free_slots(shop, service, day): read transaction + load_calendar + compute
  load      core.schedule.load_calendar alone for that day (the database part)
  compute   core.availability.free_slots alone, calendars pre-loaded (the pure part)

on SQLite and, when tests.pgcluster can start one, PostgreSQL. Median and p99 per query, and the
service figure split by how far ahead the day is (the calendar query bounds start_at only from
above, so later days read more of the index).

    .venv/bin/python bench/availability.py [--queries 500] [--bookings 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import date, timedelta
from typing import Any

from _common import (
    BUFFER_MIN,
    DAYS,
    NOW,
    SERVICES,
    SHIFTS,
    SHOP,
    STAFF,
    TODAY,
    TUBS,
    backends,
    machine,
    ms_summary,
    print_table,
    synthetic_config,
)
from sqlalchemy import insert, text

from bot.bootstrap import Services, bootstrap
from core.availability import free_slots, to_utc
from core.clock import FixedClock
from core.config import ShopConfig
from core.models import Booking, BookingResource, BookingStatus, Occupancy
from core.occupancy import RESOURCE, cells
from core.occupancy import STAFF as STAFF_KIND
from core.schedule import Calendar, day_span, load_calendar, slot_query

WEIGHTS = {"quick": 3.0, "standard": 4.0, "long": 2.0, "bath": 1.0, "package": 0.5}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def plan(
    shop: ShopConfig, count: int, rng: random.Random, days: list[date], first_id: int = 1, past: bool = False
) -> tuple[list[dict], list[dict], list[dict]]:
    """Rows for bookings, booking_resources and occupancy: ``count`` bookings that never collide.

    Past bookings are "completed" and hold no occupancy cells (as if released; they are history).
    """
    bookings: list[dict] = []
    resources: list[dict] = []
    occupancy: list[dict] = []
    per_staff_day, extra = divmod(count, len(days) * len(STAFF))
    slot = 0
    for day in days:
        tubs: list[list[tuple[int, int]]] = [[] for _ in range(TUBS)]
        for sid in STAFF:
            want = per_staff_day + (1 if slot < extra else 0)
            slot += 1
            first, last = (_minutes(t) for t in SHIFTS[sid].split("-"))
            offered = [s for s in WEIGHTS if s in shop.staff[sid].services]
            chosen = rng.choices(offered, [WEIGHTS[s] for s in offered], k=want)
            while sum(SERVICES[s][0] + BUFFER_MIN for s in chosen) > last - first:
                chosen[chosen.index(max(chosen, key=lambda s: SERVICES[s][0]))] = "quick"
            slack = (last - first - sum(SERVICES[s][0] + BUFFER_MIN for s in chosen)) // 5
            cuts = sorted(rng.randint(0, slack) * 5 for _ in chosen)
            used = 0
            for service, cut in zip(chosen, cuts, strict=True):
                start_min = first + cut + used
                used += SERVICES[service][0] + BUFFER_MIN  # a bath downgraded below keeps its room
                unit = None
                if service == "bath":
                    end_min = start_min + SERVICES["bath"][0]
                    unit = next(
                        (u for u, spans in enumerate(tubs) if all(e <= start_min or end_min <= b for b, e in spans)),
                        None,
                    )
                    if unit is None:
                        service = "quick"  # all tubs busy then
                    else:
                        tubs[unit].append((start_min, end_min))
                minutes = SERVICES[service][0]
                booking_id = first_id + len(bookings)
                start, end = to_utc(day, start_min, shop.tz), to_utc(day, start_min + minutes, shop.tz)
                bookings.append(
                    {
                        "id": booking_id,
                        "shop_id": SHOP,
                        "code": f"B{booking_id:05d}",
                        "service_id": service,
                        "staff_id": sid,
                        "start_at": start,
                        "end_at": end,
                        "status": BookingStatus.COMPLETED if past else BookingStatus.CONFIRMED,
                        "price_cents": 10_000,
                        "notes": "",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }
                )
                if past:
                    continue
                staff_end = to_utc(day, start_min + minutes + BUFFER_MIN, shop.tz)
                common = {"shop_id": SHOP, "booking_id": booking_id}
                occupancy += [
                    {**common, "kind": STAFF_KIND, "key": sid, "unit": 0, "cell": c} for c in cells(start, staff_end)
                ]
                if unit is not None:
                    resources.append({"booking_id": booking_id, "resource_id": "tub", "unit": unit})
                    occupancy += [
                        {**common, "kind": RESOURCE, "key": "tub", "unit": unit, "cell": c} for c in cells(start, end)
                    ]
    return bookings, resources, occupancy


async def seed(svc: Services, count: int, history: int) -> None:
    shop, rng = svc.config.shops[SHOP], random.Random(7)
    bookings, resources, occupancy = plan(shop, count, rng, DAYS)
    if history:  # completed bookings over the year before today, same density
        past_days = [TODAY - timedelta(days=k) for k in range(max(1, history // 170), 0, -1)]
        old, old_resources, _ = plan(shop, history, rng, past_days, first_id=count + 1, past=True)
        bookings += old
        resources += old_resources
    async with svc.db.transaction() as s:
        await s.execute(insert(Booking), bookings)
        await s.execute(insert(BookingResource), resources)
        for i in range(0, len(occupancy), 10_000):
            await s.execute(insert(Occupancy), occupancy[i : i + 10_000])
        if svc.db.dialect == "postgresql":  # explicit ids: move the sequence past them
            await s.execute(text("SELECT setval(pg_get_serial_sequence('bookings', 'id'), max(id)) FROM bookings"))
            await s.execute(text("ANALYZE"))
    if svc.db.dialect == "sqlite":
        async with svc.db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


async def measure(svc: Services, queries: list[tuple[date, str]], *, quiet: bool = False) -> dict[str, list[float]]:
    shop = svc.config.shops[SHOP]
    times: dict[str, list[float]] = {"service": [], "load": [], "compute": []}
    calendars: dict[date, Calendar] = {}
    slots_found = []
    for day, service in queries:
        t0 = time.perf_counter()
        slots = await svc.bookings.free_slots(SHOP, service, day)
        times["service"].append(time.perf_counter() - t0)
        slots_found.append(len(slots))
    for day, _ in queries:
        t0 = time.perf_counter()
        async with svc.db.reading() as s:
            calendars[day] = await load_calendar(s, shop, SHOP, day_span(shop, day), NOW)
        times["load"].append(time.perf_counter() - t0)
    for day, service in queries:
        staff = shop.qualified_staff(service)
        t0 = time.perf_counter()
        free_slots(
            slot_query(shop, service, day, NOW, duration_min=SERVICES[service][0], staff_ids=staff,
                       calendar=calendars[day])
        )
        times["compute"].append(time.perf_counter() - t0)
    if not quiet:
        print(f"  free starts per query: mean {statistics.mean(slots_found):.1f}, "
              f"empty {sum(1 for n in slots_found if n == 0)}/{len(slots_found)}")
    return times


async def explain(svc: Services, day: date) -> None:
    """The plan of load_calendar's main query, for the last day (the widest index range)."""
    span = day_span(svc.config.shops[SHOP], day)
    pad_lo, pad_hi = span.start, span.end
    sql = (
        "SELECT id FROM bookings WHERE shop_id = :shop AND status IN ('held', 'pending', 'confirmed') "
        "AND start_at < :hi AND end_at > :lo ORDER BY start_at"
    )
    prefix = "EXPLAIN QUERY PLAN " if svc.db.dialect == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) "
    params: dict[str, Any] = {"shop": SHOP, "lo": pad_lo, "hi": pad_hi}
    if svc.db.dialect == "sqlite":
        params = {k: v.replace(tzinfo=None) if hasattr(v, "tzinfo") else v for k, v in params.items()}
    async with svc.db.reading() as s:
        rows = (await s.execute(text(prefix + sql), params)).all()
    print("  plan of the calendar query, last day:")
    for row in rows:
        print("    " + str(row[-1]))


async def run(name: str, url: str, args: argparse.Namespace) -> None:
    svc = await bootstrap(synthetic_config(), clock=FixedClock(NOW), database_url=url)
    try:
        t0 = time.perf_counter()
        await seed(svc, args.bookings, args.history)
        print(f"\n{name}: seeded {args.bookings} (+{args.history} past) bookings in {time.perf_counter() - t0:.1f} s")
        rng = random.Random(11)
        queries = [(rng.choice(DAYS), rng.choice(list(SERVICES))) for _ in range(args.queries)]
        await measure(svc, queries[:20], quiet=True)  # warm-up: connections, statement caches
        times = await measure(svc, queries)
        rows = [(part, *ms_summary(t)) for part, t in times.items()]
        thirds = [DAYS[:10], DAYS[10:20], DAYS[20:]]
        for label, days in zip(("days 1-10", "days 11-20", "days 21-30"), thirds, strict=True):
            picked = [t for t, (day, _) in zip(times["service"], queries, strict=True) if day in days]
            rows.append((f"service, {label}", *ms_summary(picked)))
        print_table(["per query", "median ms", "p99 ms"], rows)
        await explain(svc, DAYS[-1])
    finally:
        await svc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--bookings", type=int, default=5000)
    parser.add_argument("--history", type=int, default=0, help="completed bookings before today (e.g. 60000)")
    args = parser.parse_args()
    print(f"availability: 10 staff, 30 days, {args.bookings} bookings, {args.queries} queries ({machine()})")
    async for name, url in backends():
        await run(name, url, args)


if __name__ == "__main__":
    asyncio.run(main())
