"""A reminder wave: 10,000 reminders due at one instant, queued and sent (prints figures, no asserts).

What a server does at 18:00 when every day-before reminder of tomorrow's visits comes due at once,
through the production path: ``bot/scheduler.py`` ``queue_reminders`` (the scheduler job: it drains
the due reminders, lined up round robin over the shops, in batches of 500 (``ReminderDispatcher.queue``,
one transaction each), waking the delivery loop after each) and the delivery loop
``Delivery.run`` (started as ``serve`` starts it), into a recording sender on a fake channel.

  seed      the synthetic shop of bench/_common.py, repeated until there are --reminders bookings
            (10 staff x 16 one-hour visits per shop, all on the same day), one customer per
            booking (so no per-chat pacing applies) with a channel identity and a conversation,
            and one pending day-before reminder each, all due at the same instant
  wave      the clock is set to that instant and the scheduler job and the delivery loop run.
            queued lag = real time from the wave's start to the commit of the batch that put the
            reminder in the outbox; sent lag = to the moment the sender got it. Every reminder
            must be sent exactly once (the sender's calls are counted per booking code) and the
            database must show every reminder queued and every outbox row sent.
  paced     the same wave with a sender that allows 30 messages/s per shop (Telegram's limit per
            bot: each shop has its own bot), to see whether the wave is held up by anything but
            the channel: the floor is the largest shop's reminders / 30 s.
  baseline  measured in the same run, on the same database, for as many rows: (1) "bare rows":
            one INSERT transaction and one UPDATE transaction per row into a trivial table (two
            commits per message: what one-at-a-time delivery costs at the very least); (2) "bare
            batches": the rows INSERTed in batches of the scheduler's size, then UPDATEd in
            batches of the delivery loop's size, one transaction per batch (the floor for this
            design: queued lag cannot beat the inserts, sent lag cannot beat both).

SQLite file, then a throwaway PostgreSQL (fsync=off) when tests.pgcluster can start one.

    .venv/bin/python bench/reminder_wave.py [--reminders 10000] [--backend sqlite|postgresql|both] [--no-paced]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import DAYS, NOW, SHIFTS, SHOP, STAFF, backends, machine, percentile, print_table, synthetic_config
from sqlalchemy import Column, Integer, MetaData, String, Table, delete, func, insert, select, text, update

from bot import delivery as delivery_module
from bot import scheduler
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

CHANNEL = "bench"
SERVICE = "standard"  # 30 minutes, on whole hours: never overlapping
VISIT_DAY = DAYS[1]
PER_SECOND_PER_BOT = 30.0
CHUNK = 5_000
BARE = Table("bench_wave_bare", MetaData(), Column("id", Integer, primary_key=True), Column("status", String(10)))


def wave_config(shops: int) -> AppConfig:
    base = synthetic_config()
    shop = base.shops[SHOP]
    return base.model_copy(update={"shops": {f"shop{i:03d}": shop for i in range(shops)}, "faq_dir": "/nonexistent"})


def wave_instant(config: AppConfig) -> datetime:
    """18:00 shop time the day before the visits: when the day-before reminders are due."""
    tz = next(iter(config.shops.values())).tz
    return to_utc(VISIT_DAY - timedelta(days=1), 18 * 60, tz)


async def seed(svc: Services, count: int, due: datetime) -> dict[str, int]:
    """``count`` bookings on VISIT_DAY, one customer and one pending day-before reminder each;
    returns how many reminders each shop has."""
    rows: dict[type[Base], list[dict[str, Any]]] = {
        Customer: [],
        ChannelIdentity: [],
        Conversation: [],
        Booking: [],
        Reminder: [],
    }
    per_shop: Counter[str] = Counter()
    tz = next(iter(svc.config.shops.values())).tz
    slots = [
        (shop_id, sid, hour)
        for shop_id in sorted(svc.config.shops)
        for sid in STAFF
        for hour in range(int(SHIFTS[sid][:2]), int(SHIFTS[sid][6:8]))
    ]
    for n, (shop_id, sid, hour) in enumerate(slots[:count], start=1):
        start = to_utc(VISIT_DAY, hour * 60, tz)
        per_shop[shop_id] += 1
        rows[Customer].append(
            {"id": n, "shop_id": shop_id, "display_name": f"c{n}", "language": "zh", "notes": "", "created_at": NOW}
        )
        rows[ChannelIdentity].append(
            {"shop_id": shop_id, "customer_id": n, "channel": CHANNEL, "external_id": f"u{n}", "created_at": NOW}
        )
        rows[Conversation].append(
            {
                "id": n,
                "shop_id": shop_id,
                "channel": CHANNEL,
                "external_id": f"u{n}",
                "customer_id": n,
                "language": "zh",
                "state": "idle",
                "data": {},
                "mode": ConversationMode.BOT,
                "last_inbound_at": NOW,
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        rows[Booking].append(
            {
                "id": n,
                "shop_id": shop_id,
                "code": f"B{n:07d}",
                "customer_id": n,
                "service_id": SERVICE,
                "staff_id": sid,
                "start_at": start,
                "end_at": start + timedelta(minutes=30),
                "status": BookingStatus.CONFIRMED,
                "price_cents": 10_000,
                "notes": "",
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
        rows[Reminder].append(
            {
                "booking_id": n,
                "kind": "day_before",
                "for_start": start,
                "due_at": due,
                "status": ReminderStatus.PENDING,
                "note": "",
                "created_at": NOW,
            }
        )
    async with svc.db.transaction() as s:
        for model, items in rows.items():
            for i in range(0, len(items), CHUNK):
                await s.execute(insert(model), items[i : i + CHUNK])
        if svc.db.dialect == "postgresql":  # explicit ids: move the sequences past them
            for table in ("customers", "conversations", "bookings"):
                await s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"))
    async with svc.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    return dict(per_shop)


@dataclass
class Recorder:
    """The fake channel: notes when each message arrived; ``paced``: 30/s per shop, like a bot each."""

    channel: str = CHANNEL
    start: float = 0.0
    paced: bool = False
    lags: list[float] = field(default_factory=list)
    codes: Counter[str] = field(default_factory=Counter)
    expected: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _next: dict[str, float] = field(default_factory=dict)

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
        if self.paced:  # a token per 1/30 s per bot, as AIORateLimiter hands them out
            now = time.monotonic()
            slot = max(now, self._next.get(shop_id, 0.0))
            self._next[shop_id] = slot + 1 / PER_SECOND_PER_BOT
            if slot > now:
                await asyncio.sleep(slot - now)
        self.lags.append(time.monotonic() - self.start)
        self.codes[message.text.rsplit("：", 1)[-1].strip()] += 1
        if len(self.lags) >= self.expected:
            self.done.set()
        return None


@dataclass
class Wave:
    reminders: int
    queued_lags: list[float]
    sent_lags: list[float]
    seconds: float
    once: bool
    batches: int
    commits: int
    floor: float = 0.0

    def row(self, label: str) -> tuple[object, ...]:
        q, s = self.queued_lags, self.sent_lags
        return (
            label,
            f"{self.reminders:,}",
            f"{statistics.median(q):.2f}",
            f"{percentile(q, 99):.2f}",
            f"{statistics.median(s):.2f}",
            f"{percentile(s, 99):.2f}",
            f"{max(s):.2f}",
            f"{self.reminders / max(s):,.0f}",
            f"{self.floor:.2f}" if self.floor else "-",
            f"{self.commits:,} ({self.commits / self.reminders:.3f})",
            "yes" if self.once else "NO",
        )


class CommitCounter:
    """Counts the database's commits during the wave (SQLAlchemy's commit event)."""

    def __init__(self, svc: Services) -> None:
        from sqlalchemy import event

        self.count = 0
        self.engine = svc.db.engine.sync_engine
        event.listen(self.engine, "commit", self._commit)

    def _commit(self, _conn: Any) -> None:
        self.count += 1

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "commit", self._commit)


async def wave(url: str, config: AppConfig, count: int, due: datetime, *, paced: bool) -> Wave:
    clock = FixedClock(due - timedelta(minutes=1))
    recorder = Recorder(paced=paced, expected=count)
    svc = await bootstrap(config, clock=clock, database_url=url, migrate=False, senders_override={CHANNEL: recorder})
    queued: list[tuple[float, int]] = []
    batch: Callable[[Sequence[int]], Awaitable[int]] = svc.reminders.queue

    async def timed_batch(ids: Sequence[int]) -> int:
        n = await batch(ids)
        queued.append((time.monotonic() - recorder.start, n))
        return n

    svc.reminders.queue = timed_batch  # type: ignore[method-assign]  # the bench times each batch's commit
    try:
        svc.delivery.start()
        await asyncio.sleep(0.2)  # the loop is idle, waiting to be woken
        commits = CommitCounter(svc)
        clock.set(due)
        recorder.start = t0 = time.monotonic()
        await scheduler.queue_reminders(svc)  # what the scheduler's job runs once a second
        await asyncio.wait_for(recorder.done.wait(), 600)
        seconds = time.monotonic() - t0
        await asyncio.sleep(0.1)  # the last batch settles
        commits.close()
    finally:
        await svc.close()
    queued_lags = [at for at, n in queued for _ in range(n)]
    once = len(recorder.codes) == count and set(recorder.codes.values()) == {1}
    return Wave(count, queued_lags, recorder.lags, seconds, once, sum(1 for _, n in queued if n), commits.count)


async def reset(url: str, config: AppConfig, due: datetime) -> str:
    """The reminders pending again and the outbox empty, for the next wave; the database's word on the last one."""
    svc = await bootstrap(config, clock=FixedClock(due), database_url=url, migrate=False, senders_override={})
    try:
        async with svc.db.reading() as s:
            reminders = dict((await s.execute(select(Reminder.status, func.count()).group_by(Reminder.status))).all())
            outbox = dict(
                (await s.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status))).all()
            )
        async with svc.db.transaction() as s:
            await s.execute(delete(TranscriptEntry))
            await s.execute(update(Reminder).values(status=ReminderStatus.PENDING, outbox_id=None, queued_at=None))
            await s.execute(delete(OutboxMessage))
    finally:
        await svc.close()
    ok = set(reminders) == {ReminderStatus.QUEUED} and set(outbox) == {OutboxStatus.SENT}
    described = ", ".join(f"{k.value} {v:,}" for k, v in reminders.items())
    return (
        f"reminders {described}; outbox "
        + ", ".join(f"{k.value} {v:,}" for k, v in outbox.items())
        + ("" if ok else "  <- CHECK")
    )


async def bare(url: str, config: AppConfig, rows: int) -> tuple[float, float, float]:
    """Seconds for: one INSERT txn + one UPDATE txn per row; all rows INSERTed in scheduler-sized
    batches; and then UPDATEd in delivery-sized batches (one transaction per batch)."""
    svc = await bootstrap(config, clock=FixedClock(NOW), database_url=url, migrate=False, senders_override={})
    try:
        async with svc.db.engine.begin() as conn:
            await conn.run_sync(BARE.metadata.create_all)
        t0 = time.perf_counter()
        for _ in range(rows):
            async with svc.db.transaction() as s:
                row_id = (await s.execute(insert(BARE).values(status="pending").returning(BARE.c.id))).scalar_one()
            async with svc.db.transaction() as s:
                await s.execute(update(BARE).where(BARE.c.id == row_id).values(status="sent"))
        per_row = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids: list[int] = []
        for i in range(0, rows, scheduler.REMINDER_BATCH):
            n = min(scheduler.REMINDER_BATCH, rows - i)
            async with svc.db.transaction() as s:
                result = await s.execute(insert(BARE).returning(BARE.c.id), [{"status": "pending"}] * n)
                ids += list(result.scalars())
        inserted = time.perf_counter() - t0
        for i in range(0, len(ids), delivery_module.BATCH):
            async with svc.db.transaction() as s:
                await s.execute(
                    update(BARE).where(BARE.c.id.in_(ids[i : i + delivery_module.BATCH])).values(status="sent")
                )
        both = time.perf_counter() - t0
        async with svc.db.engine.begin() as conn:
            await conn.run_sync(BARE.metadata.drop_all)
    finally:
        await svc.close()
    return per_row, inserted, both


async def run(name: str, url: str, args: argparse.Namespace) -> None:
    shops = math.ceil(args.reminders / (len(STAFF) * 16))
    config = wave_config(shops)
    due = wave_instant(config)
    svc = await bootstrap(config, clock=FixedClock(NOW), database_url=url, senders_override={})
    try:
        t0 = time.perf_counter()
        per_shop = await seed(svc, args.reminders, due)
        print(
            f"\n{name}: {args.reminders:,} reminders due at once in {shops} shops "
            f"(seeded in {time.perf_counter() - t0:.1f} s)"
        )
    finally:
        await svc.close()
    waves: list[tuple[str, Wave]] = []
    for k in range(args.repeat):
        result = await wave(url, config, args.reminders, due, paced=False)
        waves.append((f"unpaced #{k + 1}", result))
        print(f"  unpaced #{k + 1}: {await reset(url, config, due)}")
    if args.paced:
        result = await wave(url, config, args.reminders, due, paced=True)
        result.floor = max(per_shop.values()) / PER_SECOND_PER_BOT
        waves.append(("30/s per bot", result))
        print(f"  paced: {await reset(url, config, due)}")
    per_row, inserted, both = await bare(url, config, args.reminders)
    print_table(
        [
            "",
            "reminders",
            "queued p50 s",
            "queued p99 s",
            "sent p50 s",
            "sent p99 s",
            "last sent s",
            "sent/s",
            "channel floor s",
            "commits (per msg)",
            "each once",
        ],
        [w.row(label) for label, w in waves],
    )
    print(
        f"  baseline, same database, {args.reminders:,} rows: bare rows (INSERT txn + UPDATE txn each) "
        f"{per_row:.2f} s ({args.reminders / per_row:,.0f}/s); bare batches: INSERTs in {scheduler.REMINDER_BATCH}s "
        f"{inserted:.2f} s, + UPDATEs in {delivery_module.BATCH}s {both:.2f} s ({args.reminders / both:,.0f}/s)"
    )
    for label, w in waves:
        if not w.floor:
            print(
                f"  {label}: queued p99 {percentile(w.queued_lags, 99) / inserted:.1f}x the bare batched inserts, "
                f"{percentile(w.queued_lags, 99) / per_row:.2f}x bare rows; sent p99 "
                f"{percentile(w.sent_lags, 99) / both:.1f}x the bare batches, "
                f"{percentile(w.sent_lags, 99) / per_row:.2f}x bare rows; {w.batches} reminder batches"
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=2, help="unpaced waves")
    parser.add_argument("--no-paced", dest="paced", action="store_false")
    args = parser.parse_args()
    logging.getLogger("bot.bootstrap").setLevel(logging.ERROR)
    print(f"reminder wave ({machine()}, {datetime.now(UTC):%H:%M} UTC)")
    async for name, url in backends():
        if args.backend in (name, "both"):
            await run(name, url, args)
        if args.backend == "sqlite":
            return


if __name__ == "__main__":
    asyncio.run(main())
