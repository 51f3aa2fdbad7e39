"""Reminders for 100,000 bookings: plan, store, dispatch and deliver (prints figures, no asserts).

  plan      core.reminders.plan_reminders for every visit, as replan() calls it at confirmation:
            wall time, and peak traced memory (tracemalloc) holding every plan
  seed      bulk INSERT of the customers (one per 4 bookings of a shop, each with a channel
            identity and a conversation on a fake channel "bench"), the confirmed bookings and
            their planned reminder rows; time, rows per table, database size
  baseline  a bare loop of one INSERT transaction and one UPDATE transaction per row into a trivial
            table, as many rows as one dispatch run handles (the floor: two commits per message)
  dispatch  worker processes bootstrapped on the same database (multiprocessing, spawn: 1 and 2
            real OS processes, each with its own engine, pool and FixedClock) run
            ReminderDispatcher.tick and Delivery.tick (their default limits, 100 and 50) as two
            concurrent loops, back to back, to a fast in-process recording sender. The clock is
            moved through the distinct due times of one day of reminders (a "wave" = every
            reminder due at that instant; 18:00 shop time makes all day-before reminders due at
            once). Lag = real time from the moment the clock made a reminder due to the moment the
            sender got it. With 2 processes the waves start together (a Barrier) and the run checks
            that every reminder was sent exactly once (sender calls counted across processes).

The synthetic shop of bench/_common.py (10 staff on 16-hour shifts, Asia/Shanghai) is repeated
--shops times; bookings are 30-minute visits on whole hours, 30 days ahead, never overlapping per
staff member. Each run dispatches its own day of due times (the 1-process run the first day, the
2-process run the next), out of the whole table. SQLite file and throwaway PostgreSQL (fsync=off).

    .venv/bin/python bench/reminders_throughput.py [--bookings 100000] [--pg-bookings N] [--shops 50]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing as mp
import os
import random
import resource
import statistics
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from _common import DAYS, NOW, SHIFTS, SHOP, STAFF, backends, machine, percentile, print_table, synthetic_config
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text, update

from bot.bootstrap import Services, bootstrap
from core.availability import to_utc
from core.clock import FixedClock
from core.config import AppConfig
from core.messages import OutgoingMessage
from core.models import (
    Base,
    Booking,
    BookingStatus,
    ChannelIdentity,
    Conversation,
    ConversationMode,
    Customer,
    OutboxMessage,
    OutboxStatus,
    Reminder,
    ReminderStatus,
    TranscriptEntry,
)
from core.reminders import PlannedReminder, plan_reminders, rules_for

CHANNEL = "bench"
SERVICE = "standard"  # 30 minutes
BOOKINGS_PER_CUSTOMER = 4
CHUNK = 10_000
BARE = Table("bench_bare_outbox", MetaData(), Column("id", Integer, primary_key=True), Column("status", String(10)))
TABLES = (Customer, ChannelIdentity, Conversation, Booking, Reminder, OutboxMessage, TranscriptEntry)


def bench_config(shops: int) -> AppConfig:
    """The synthetic shop, ``shops`` times (shop00, shop01, ...)."""
    base = synthetic_config()
    shop = base.shops[SHOP]
    # No FAQ files for these shops: an empty directory keeps bootstrap from loading the demo ones.
    return base.model_copy(update={"shops": {f"shop{i:02d}": shop for i in range(shops)}, "faq_dir": "/nonexistent"})


@dataclass(frozen=True)
class Visit:
    shop_id: str
    staff_id: str
    start: datetime


def visits(config: AppConfig, count: int, rng: random.Random) -> list[Visit]:
    """``count`` 30-minute visits on whole hours, spread evenly over shops, days and staff."""
    shop_ids = sorted(config.shops)
    cells = [(shop_id, day, sid) for shop_id in shop_ids for day in DAYS for sid in STAFF]
    per_cell, extra = divmod(count, len(cells))
    tz = config.shops[shop_ids[0]].tz
    out: list[Visit] = []
    for i, (shop_id, day, sid) in enumerate(cells):
        first, last = (int(t[:2]) for t in SHIFTS[sid].split("-"))
        for hour in sorted(rng.sample(range(first, last), per_cell + (1 if i < extra else 0))):
            out.append(Visit(shop_id, sid, to_utc(day, hour * 60, tz)))
    return out


def plan_all(config: AppConfig, items: list[Visit]) -> list[list[PlannedReminder]]:
    """What replan() computes for each visit, at confirmation by the customer (no confirmation message)."""
    plans = []
    for visit in items:
        shop = config.shops[visit.shop_id]
        rules, is_open = rules_for(shop, SERVICE), (lambda day, s=shop: bool(s.hours_on(day)))
        plans.append(plan_reminders(visit.start, shop.tz, rules, is_open, NOW))
    return plans


def bench_planning(config: AppConfig, items: list[Visit]) -> list[list[PlannedReminder]]:
    t0 = time.perf_counter()
    plans = plan_all(config, items)
    seconds = time.perf_counter() - t0
    del plans
    tracemalloc.start()
    plans = plan_all(config, items)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    planned = sum(len(p) for p in plans)
    kinds = Counter(r.kind for p in plans for r in p)
    print(
        f"\nplan: {len(items):,} visits -> {planned:,} reminders ({dict(kinds)}) in {seconds:.2f} s "
        f"({seconds / len(items) * 1e6:.1f} us per visit); peak traced memory holding every plan "
        f"{peak / 2**20:.1f} MiB ({peak / len(items):.0f} B per visit)"
    )
    return plans


async def seed(svc: Services, items: list[Visit], plans: list[list[PlannedReminder]]) -> None:
    Rows = list[dict[str, Any]]
    customers: Rows = []
    identities: Rows = []
    conversations: Rows = []
    bookings: Rows = []
    reminders: Rows = []
    customer_of: dict[tuple[str, int], int] = {}
    seen: Counter[str] = Counter()
    for booking_id, (visit, plan) in enumerate(zip(items, plans, strict=True), start=1):
        n = seen[visit.shop_id]
        seen[visit.shop_id] += 1
        key = (visit.shop_id, n // BOOKINGS_PER_CUSTOMER)
        if key not in customer_of:
            cid = customer_of[key] = len(customers) + 1
            customers.append(
                {
                    "id": cid,
                    "shop_id": visit.shop_id,
                    "display_name": f"c{cid}",
                    "language": "zh",
                    "notes": "",
                    "created_at": NOW,
                }
            )
            identities.append(
                {
                    "shop_id": visit.shop_id,
                    "customer_id": cid,
                    "channel": CHANNEL,
                    "external_id": f"u{cid}",
                    "created_at": NOW,
                }
            )
            conversations.append(
                {
                    "id": cid,
                    "shop_id": visit.shop_id,
                    "channel": CHANNEL,
                    "external_id": f"u{cid}",
                    "customer_id": cid,
                    "language": "zh",
                    "state": "idle",
                    "data": {},
                    "mode": ConversationMode.BOT,
                    "last_inbound_at": NOW,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            )
        bookings.append(
            {
                "id": booking_id,
                "shop_id": visit.shop_id,
                "code": f"B{booking_id:07d}",
                "customer_id": customer_of[key],
                "service_id": SERVICE,
                "staff_id": visit.staff_id,
                "start_at": visit.start,
                "end_at": visit.start + timedelta(minutes=30),
                "status": BookingStatus.CONFIRMED,
                "price_cents": 10_000,
                "notes": "",
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        reminders += [
            {
                "booking_id": booking_id,
                "kind": r.kind,
                "for_start": visit.start,
                "due_at": r.due_at,
                "status": ReminderStatus.PENDING,
                "note": "",
                "created_at": NOW,
            }
            for r in plan
        ]
    t0 = time.perf_counter()
    async with svc.db.transaction() as s:
        model: type[Base]
        for model, rows in ((Customer, customers), (ChannelIdentity, identities), (Conversation, conversations)):
            for i in range(0, len(rows), CHUNK):
                await s.execute(insert(model), rows[i : i + CHUNK])
    t_customers = time.perf_counter() - t0
    t0 = time.perf_counter()
    async with svc.db.transaction() as s:
        for model, rows in ((Booking, bookings), (Reminder, reminders)):
            for i in range(0, len(rows), CHUNK):
                await s.execute(insert(model), rows[i : i + CHUNK])
    t_bookings = time.perf_counter() - t0
    async with svc.db.transaction() as s:
        if svc.db.dialect == "postgresql":  # explicit ids: move the sequences past them
            for table in ("customers", "conversations", "bookings"):
                await s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
    await analyze(svc)
    print(
        f"  seed: customers + identities + conversations {t_customers:.1f} s; bookings + reminders "
        f"{t_bookings:.1f} s ({(len(bookings) + len(reminders)) / t_bookings:,.0f} rows/s)"
    )
    await print_rows(svc)


async def analyze(svc: Services) -> None:
    async with svc.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


def file_size(path: str) -> int:
    return os.path.getsize(path)


async def print_rows(svc: Services) -> None:
    counts = []
    async with svc.db.reading() as s:
        for model in TABLES:
            counts.append(f"{model.__tablename__} {await s.scalar(select(func.count()).select_from(model)):,}")
        if svc.db.dialect == "postgresql":
            size = await s.scalar(text("SELECT pg_database_size(current_database())"))
        else:
            size = file_size(svc.db.url.database or "")
    print(f"  rows: {', '.join(counts)}; database {size / 2**20:.0f} MiB")


async def bare_loop(svc: Services, rows: int) -> float:
    """rows/s of one INSERT transaction then one UPDATE transaction per row."""
    async with svc.db.engine.begin() as conn:
        await conn.run_sync(BARE.metadata.create_all)
    t0 = time.perf_counter()
    for _ in range(rows):
        async with svc.db.transaction() as s:
            row_id = (await s.execute(insert(BARE).values(status="pending").returning(BARE.c.id))).scalar_one()
        async with svc.db.transaction() as s:
            await s.execute(update(BARE).where(BARE.c.id == row_id).values(status="sent"))
    return rows / (time.perf_counter() - t0)


# ----------------------------------------------------------------------------- worker processes


@dataclass
class RecordingSender:
    """The fake channel: notes what it got and when (time.monotonic is one clock for all processes)."""

    channel: str = CHANNEL
    wave_start: float = 0.0
    lags: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
        self.lags.append(time.monotonic() - self.wave_start)
        self.texts.append(message.text)
        return f"{CHANNEL}-{len(self.texts)}"


def quiet() -> None:
    """The synthetic shops have no FAQ file: bootstrap's warnings about the demo FAQ are noise here."""
    logging.getLogger("bot.bootstrap").setLevel(logging.ERROR)


async def work(url: str, shops: int, waves: list[datetime], barrier: Any) -> dict[str, Any]:
    quiet()
    clock = FixedClock(waves[0] - timedelta(seconds=1))
    sender = RecordingSender()
    svc = await bootstrap(
        bench_config(shops), clock=clock, database_url=url, migrate=False, senders_override={CHANNEL: sender}
    )
    spans: list[tuple[float, float, float]] = []  # per wave: start, last reminder queued, last message sent
    queued = 0

    async def queue_loop(done: asyncio.Event) -> float:
        nonlocal queued
        try:
            while handled := await svc.reminders.tick():
                queued += handled
            return time.monotonic()
        finally:
            done.set()

    async def send_loop(queue_done: asyncio.Event) -> float:
        while True:
            if not await svc.delivery.tick():
                if queue_done.is_set():
                    return time.monotonic()
                await asyncio.sleep(0.005)

    try:
        for wave in waves:
            await asyncio.to_thread(barrier.wait, 600)
            clock.set(wave)
            start = sender.wave_start = time.monotonic()
            done = asyncio.Event()
            queued_at, sent_at = await asyncio.gather(queue_loop(done), send_loop(done))
            spans.append((start, queued_at, sent_at))
        await asyncio.to_thread(barrier.wait, 600)
    finally:
        await svc.close()
    return {"queued": queued, "spans": spans, "lags": sender.lags, "texts": sender.texts}


def worker(url: str, shops: int, waves: list[datetime], barrier: Any, results: Any) -> None:
    results.put(asyncio.run(work(url, shops, waves, barrier)))


@dataclass
class Dispatch:
    processes: int
    reminders: int
    waves: int
    largest_wave: int
    queued: int
    sent: int
    queue_seconds: float
    send_seconds: float
    lags: list[float]
    once: bool
    per_process: list[int]


async def dispatch(url: str, shops: int, waves: list[datetime], expected: int, largest: int, n: int) -> Dispatch:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(url, shops, waves, barrier, results)) for _ in range(n)]
    for p in procs:
        p.start()
    outcome = [await asyncio.to_thread(results.get, True, 900) for _ in procs]
    for p in procs:
        p.join(60)
    # Wave by wave: from the first process's start to the last one's finish, summed over waves.
    queue_s = send_s = 0.0
    for spans in zip(*(o["spans"] for o in outcome), strict=True):
        start = min(s[0] for s in spans)
        queue_s += max(s[1] for s in spans) - start
        send_s += max(s[2] for s in spans) - start
    texts = Counter(t for o in outcome for t in o["texts"])
    sent = sum(texts.values())
    return Dispatch(
        processes=n,
        reminders=expected,
        waves=len(waves),
        largest_wave=largest,
        queued=sum(o["queued"] for o in outcome),
        sent=sent,
        queue_seconds=queue_s,
        send_seconds=send_s,
        lags=[lag for o in outcome for lag in o["lags"]],
        once=len(texts) == expected and set(texts.values()) == {1},
        per_process=[len(o["texts"]) for o in outcome],
    )


async def window(svc: Services, lo: datetime, hi: datetime) -> tuple[list[datetime], int, int]:
    """The distinct due times in [lo, hi), how many reminders, and the largest wave."""
    async with svc.db.reading() as s:
        rows = (
            await s.execute(
                select(Reminder.due_at, func.count())
                .where(Reminder.due_at >= lo, Reminder.due_at < hi)
                .group_by(Reminder.due_at)
                .order_by(Reminder.due_at)
            )
        ).all()
    return [r[0] for r in rows], sum(r[1] for r in rows), max(r[1] for r in rows)


async def check_db(svc: Services, lo: datetime, hi: datetime) -> str:
    """The database's side: reminder statuses in the window, outbox statuses, reminders queued twice."""
    in_window = (Reminder.due_at >= lo, Reminder.due_at < hi)
    reminder_id = OutboxMessage.body["reminder_id"].as_integer()
    async with svc.db.reading() as s:
        by_status = select(Reminder.status, func.count()).where(*in_window).group_by(Reminder.status)
        statuses = (await s.execute(by_status)).all()
        outbox = (await s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all()
        twice = await s.scalar(
            select(func.count()).select_from(
                select(reminder_id).group_by(reminder_id).having(func.count() > 1).subquery()
            )
        )
    ok = {status for status, _ in outbox} <= {OutboxStatus.SENT} and twice == 0
    return (
        f"reminders {', '.join(f'{k.value} {v:,}' for k, v in statuses)}; "
        f"outbox {', '.join(f'{k.value} {v:,}' for k, v in outbox)}; reminders queued twice: {twice}"
        + ("" if ok else "  <- CHECK")
    )


async def run(
    name: str,
    url: str,
    config: AppConfig,
    items: list[Visit],
    plans: list[list[PlannedReminder]],
    args: argparse.Namespace,
) -> None:
    print(f"\n{name}: {len(items):,} bookings in {len(config.shops)} shops")
    svc = await bootstrap(config, clock=FixedClock(NOW), database_url=url, senders_override={})
    try:
        await seed(svc, items, plans)
        first_due = min(r.due_at for plan in plans for r in plan)
        runs: list[Dispatch] = []
        for k, n in enumerate(args.processes):
            lo, hi = first_due + timedelta(days=k), first_due + timedelta(days=k + 1)
            waves, expected, largest = await window(svc, lo, hi)
            result = await dispatch(url, len(config.shops), waves, expected, largest, n)
            runs.append(result)
            print(
                f"  {n} process(es), due {lo:%m-%d %H:%M}..{hi:%m-%d %H:%M} UTC: {result.queued:,} queued, "
                f"{result.sent:,} sent for {result.reminders:,} reminders; {await check_db(svc, lo, hi)}"
            )
        baseline = await bare_loop(svc, runs[0].reminders)
        await print_rows(svc)
    finally:
        await svc.close()
    rows = []
    for r in runs:
        q50, q99 = statistics.median(r.lags), percentile(r.lags, 99)
        rows.append(
            (
                f"{r.processes} process{'es' if r.processes > 1 else ''}",
                f"{r.reminders:,}",
                r.waves,
                f"{r.largest_wave:,}",
                f"{r.reminders / r.queue_seconds:,.0f}",
                f"{r.sent / r.send_seconds:,.0f}",
                f"{q50:.2f}",
                f"{q99:.2f}",
                f"{max(r.lags):.2f}",
                "yes" if r.once else "NO",
                "/".join(f"{x:,}" for x in r.per_process),
            )
        )
    print_table(
        [
            "",
            "reminders",
            "waves",
            "largest",
            "queued/s",
            "sent/s",
            "lag p50 s",
            "lag p99 s",
            "lag max s",
            "each once",
            "sent per process",
        ],
        rows,
    )
    print(
        f"  baseline: bare INSERT txn + UPDATE txn per row, {runs[0].reminders:,} rows, 1 process: "
        f"{baseline:,.0f} rows/s; dispatch end to end (sent/s) = "
        + ", ".join(f"{r.sent / r.send_seconds / baseline:.2f}x ({r.processes}p)" for r in runs)
        + " of it"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--pg-bookings", type=int, default=None, help="bookings on PostgreSQL (default: --bookings)")
    parser.add_argument("--shops", type=int, default=50)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="one dispatch run (one day) each")
    args = parser.parse_args()
    quiet()
    print(f"reminders throughput ({machine()})")
    config = bench_config(args.shops)
    items = visits(config, args.bookings, random.Random(11))
    plans = bench_planning(config, items)
    async for name, url in backends():
        count = args.bookings if name == "sqlite" else (args.pg_bookings or args.bookings)
        if count != len(items):
            items = visits(config, count, random.Random(11))
            plans = plan_all(config, items)
        await run(name, url, config, items, plans, args)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"\npeak RSS of the main process: {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
