"""Engine throughput in-process on SQLite: FAQ replies and complete booking dialogs per second,
with 1 and 64 concurrent conversations (prints figures, asserts nothing).

  faq       a customer asks an FAQ question; the engine claims the message id, identifies the
            customer, holds the conversation, matches the FAQ, saves state and transcript: one
            unit of work; the SQL statements it sends per message are counted (BEGIN/COMMIT too)
  baseline  the same questions through FaqMatcher.match alone (no database): the floor
  booking   a whole dialog through the clearsight demo shop: "book an eye exam" -> tap a day ->
            (tap a part of the day) -> tap a time -> "yes"; a slot taken meanwhile is answered
            with alternatives and the first one is tapped. Counted when the booking is confirmed.

    .venv/bin/python bench/engine_throughput.py [--faq 400] [--dialogs 120]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from _common import ROOT, machine, ms_summary, print_table
from sqlalchemy import event

from bot.bootstrap import Services, bootstrap
from core.clock import FixedClock
from core.config import load_config
from tests.support.collecting import CollectingChannel

NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # Saturday 09:00 in Shanghai
QUESTIONS = [
    "营业时间是几点？",
    "验光需要多久",
    "Do I need to stop wearing contact lenses before the exam?",
    "可以刷医保卡吗",
    "where do I park",
    "配眼镜要几天能取",
    "儿童几岁可以验光",
    "how much is an eye exam",
]
_ids = itertools.count()


async def timed_runs(
    concurrency: int, total: int, one: Callable[[int], Awaitable[bool]]
) -> tuple[float, list[float], int]:
    """Run ``total`` operations with ``concurrency`` workers; returns (seconds, latencies, successes)."""
    latencies: list[float] = []
    successes = 0
    counter = itertools.count()

    async def worker() -> None:
        nonlocal successes
        while (i := next(counter)) < total:
            started = time.perf_counter()
            ok = await one(i)
            latencies.append(time.perf_counter() - started)
            successes += ok

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, successes


async def fresh_services(directory: Path, name: str) -> Services:
    config = load_config(ROOT / "config.yaml", environ={})
    return await bootstrap(config, clock=FixedClock(NOW), database_url=f"sqlite+aiosqlite:///{directory / name}")


async def bench_faq(directory: Path, concurrency: int, total: int) -> tuple[str, ...]:
    services = await fresh_services(directory, f"faq{concurrency}.db")
    chats = [
        CollectingChannel(services.engine, "clearsight", user=f"faq-{concurrency}-{i}") for i in range(concurrency)
    ]

    async def one(i: int) -> bool:
        replies = await chats[i % concurrency].push(QUESTIONS[i % len(QUESTIONS)])
        return bool(replies)

    await one(0)  # warm up (FAQ loaded, pool open)
    statements = itertools.count()
    for engine in {services.db.engine.sync_engine, services.db.read_engine.sync_engine}:
        event.listen(engine, "before_cursor_execute", lambda *_: next(statements))
    seconds, latencies, ok = await timed_runs(concurrency, total, one)
    per_turn = next(statements) / total
    await services.close()
    return (
        f"faq, {concurrency} conv.",
        f"{total / seconds:,.0f}",
        *ms_summary(latencies),
        f"{ok}/{total}",
        f"{per_turn:.1f}",
    )


async def bench_baseline(directory: Path, total: int) -> tuple[str, ...]:
    services = await fresh_services(directory, "baseline.db")
    matcher = services.engine.faq_matcher("clearsight")
    assert matcher is not None
    latencies = []
    started = time.perf_counter()
    for i in range(total):
        t0 = time.perf_counter()
        matcher.match(QUESTIONS[i % len(QUESTIONS)])
        latencies.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - started
    await services.close()
    return ("FaqMatcher.match only", f"{total / seconds:,.0f}", *ms_summary(latencies), f"{total}/{total}", "0")


async def bench_dialogs(directory: Path, concurrency: int, total: int, seed: int) -> tuple[str, ...]:
    services = await fresh_services(directory, f"dialogs{concurrency}.db")
    rng = random.Random(seed)

    async def one(i: int) -> bool:
        chat = CollectingChannel(services.engine, "clearsight", user=f"d-{concurrency}-{i}", language_hint="en")
        await chat.push("book an eye exam")
        days = [b for b in chat.labels if b != "Later dates"]
        await chat.press(rng.choice(days))
        for _ in range(4):
            times = [b for r in chat.replies for b in r.buttons if b.payload.startswith(("s:", "p:"))]
            if not times:
                return False
            choice = rng.choice(times)
            await chat.push(choice.label, payload=choice.payload)
            if any(b.payload == "c:ok" for r in chat.replies for b in r.buttons):
                await chat.push("yes")
                if "Booking code" in chat.text:
                    return True
        return False

    seconds, latencies, ok = await timed_runs(concurrency, total, one)
    await services.close()
    return (
        f"booking dialog, {concurrency} conv.",
        f"{ok / seconds:,.1f}",
        *ms_summary(latencies),
        f"{ok}/{total}",
        "-",
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faq", type=int, default=400, help="FAQ messages per run")
    parser.add_argument("--dialogs", type=int, default=120, help="booking dialogs per run")
    args = parser.parse_args()
    print(f"engine throughput, in-process, SQLite ({machine()})\n")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        rows = [await bench_baseline(directory, args.faq)]
        for concurrency in (1, 64):
            rows.append(await bench_faq(directory, concurrency, args.faq))
        for concurrency in (1, 64):
            rows.append(await bench_dialogs(directory, concurrency, args.dialogs, seed=concurrency))
    print_table(["run", "per second", "p50 ms", "p99 ms", "done", "SQL statements/msg"], rows)
    base = float(rows[0][1].replace(",", ""))
    for row in rows[1:3]:
        rate = float(row[1].replace(",", ""))
        print(f"  {row[0]}: {rate / base:.3f} of the bare matcher rate ({base / rate:.0f}x slower: database work)")


if __name__ == "__main__":
    asyncio.run(main())
