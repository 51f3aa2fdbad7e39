"""Confirmations per second, sequential and 50 concurrent, next to a bare one-row INSERT (prints, no asserts).

On SQLite and, when tests.pgcluster can start one, PostgreSQL, through the same Database class
(same engine, pool and BEGIN IMMEDIATE on SQLite) that BookingService uses:

  insert     one transaction per INSERT of one row into a trivial table (the floor: a commit)
  book       BookingService.book() of a distinct free 30-minute slot (staff member, day and hour
             all given), so every one succeeds: calendar read, booking row, 8 occupancy cells in a
             savepoint, audit event, commit
  contended  50 concurrent book() of one slot: 1 wins, 49 get "taken" with 3 alternatives;
             wall time until all 50 have their answer, over several rounds
  check      at the end, every pair of active bookings in the database that share a staff member
             or a resource unit at the same time (tests/helpers.py overlaps_in_database): 0 expected

"50 concurrent" means 50 asyncio tasks each issuing its next operation as soon as the previous
returns, through the default pool (SQLite 10+10 connections, PostgreSQL 10+20); latency per
operation includes waiting for a connection or the write lock.

    .venv/bin/python bench/confirmations.py [--inserts 1000] [--books 400] [--rounds 10] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from _common import DAYS, NOW, SHIFTS, SHOP, STAFF, backends, machine, ms_summary, print_table, synthetic_config
from sqlalchemy import Column, Integer, MetaData, String, Table, insert

from bot.bootstrap import Services, bootstrap
from core.availability import to_utc
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.results import Actor, Booked, Taken
from tests.helpers import overlaps_in_database

CONCURRENCY = 50
SERVICE = "standard"  # 30 minutes + 10-minute buffer: whole-hour starts never touch each other
BARE = Table("bench_bare", MetaData(), Column("id", Integer, primary_key=True), Column("note", String(40)))


@dataclass
class Run:
    ops: int
    seconds: float
    latencies: list[float]
    failures: int = 0

    def row(self, label: str) -> tuple[object, ...]:
        return (label, self.ops, f"{self.ops / self.seconds:,.0f}", *ms_summary(self.latencies), self.failures)


async def drive(op: Callable[[int], Awaitable[bool]], count: int, concurrency: int) -> Run:
    """Run ``op(0..count-1)`` with ``concurrency`` tasks; ``op`` returns False for a failure."""
    numbers = itertools.count()
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while (i := next(numbers)) < count:
            t0 = time.perf_counter()
            ok = await op(i)
            latencies.append(time.perf_counter() - t0)
            failures += not ok

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Run(count, time.perf_counter() - start, latencies, failures)


def free_slots_plan(rng: random.Random) -> list[tuple[str, datetime]]:
    """Every whole-hour start of every staff member on every day, shuffled (4,800 slots)."""
    shop = synthetic_config().shops[SHOP]
    slots = []
    for day, sid in itertools.product(DAYS, STAFF):
        first, last = (int(t[:2]) for t in SHIFTS[sid].split("-"))
        slots += [(sid, to_utc(day, hour * 60, shop.tz)) for hour in range(first, last)]
    rng.shuffle(slots)
    return slots


async def run(name: str, url: str, args: argparse.Namespace) -> None:
    svc: Services = await bootstrap(synthetic_config(), clock=FixedClock(NOW), database_url=url)
    try:
        async with svc.db.engine.begin() as conn:
            await conn.run_sync(BARE.metadata.create_all)
        slots = iter(free_slots_plan(random.Random(5)))

        async def bare(i: int) -> bool:
            async with svc.db.transaction() as s:
                await s.execute(insert(BARE).values(note=f"row {i}"))
            return True

        def booker(count: int) -> Callable[[int], Awaitable[bool]]:
            batch = [next(slots) for _ in range(count)]

            async def book(i: int) -> bool:
                sid, start = batch[i]
                request = BookingRequest(SHOP, SERVICE, start, staff_id=sid)
                return isinstance(await svc.bookings.book(request, Actor.customer(i)), Booked)

            return book

        await drive(bare, 20, 1)  # warm-up: connections, statement caches
        await drive(booker(20), 20, 1)
        runs = {
            "insert, sequential": await drive(bare, args.inserts, 1),
            f"insert, {CONCURRENCY} concurrent": await drive(bare, args.inserts, CONCURRENCY),
            "book, sequential": await drive(booker(args.books), args.books, 1),
            f"book, {CONCURRENCY} concurrent": await drive(booker(args.books), args.books, CONCURRENCY),
        }
        print(f"\n{name}:")
        print_table(["", "ops", "ops/s", "p50 ms", "p99 ms", "failed"], [r.row(k) for k, r in runs.items()])
        for mode in ("sequential", f"{CONCURRENCY} concurrent"):
            ins, book = runs[f"insert, {mode}"], runs[f"book, {mode}"]
            ratio = (book.ops / book.seconds) / (ins.ops / ins.seconds)
            print(f"  book/insert, {mode}: {ratio:.2f} of the insert rate ({1 / ratio:.1f}x slower), "
                  f"p50 {statistics.median(book.latencies) / statistics.median(ins.latencies):.1f}x")

        walls, winners, answered = [], [], []
        for _ in range(args.rounds):
            sid, start = next(slots)
            request = BookingRequest(SHOP, SERVICE, start, staff_id=sid)
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(svc.bookings.book(request, Actor.customer(i)) for i in range(CONCURRENCY))
            )
            walls.append(time.perf_counter() - t0)
            winners.append(sum(isinstance(r, Booked) for r in results))
            answered.append(sum(isinstance(r, Taken) and len(r.alternatives) == 3 for r in results))
        print(f"  contended, {CONCURRENCY} for one slot x {args.rounds} rounds: resolved in median "
              f"{statistics.median(walls) * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms; winners per round "
              f"{sorted(set(winners))}, losers with 3 alternatives {min(answered)}-{max(answered)}")
        clashes = await overlaps_in_database(svc)  # every pair of active bookings sharing staff or a unit
        print(f"  double bookings in the database after the run: {len(clashes)}")
    finally:
        await svc.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=1000)
    parser.add_argument("--books", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    logging.getLogger("bot.bootstrap").setLevel(logging.ERROR)  # the synthetic shop has no FAQ file
    print(f"confirmations ({machine()})")
    async for name, url in backends():
        if args.backend in (name, "both"):
            await run(name, url, args)
        if args.backend == "sqlite":
            return


if __name__ == "__main__":
    asyncio.run(main())
