"""The in-process scheduler: APScheduler runs the periodic work of every `serve` process.

Jobs live in memory only (APScheduler's job stores must not be shared between processes: its
docs say so, and a shared store double-fires). What a job does is decided by the database:
the outbox claim picks who sends a message, the guarded UPDATE picks who expires a hold.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.bootstrap import Services

log = logging.getLogger(__name__)
DELIVERY_EVERY_SECONDS = 1
REMINDERS_EVERY_SECONDS = 5
WAITLIST_EVERY_SECONDS = 30
HOLD_SWEEP_EVERY_SECONDS = 60


DELIVERY_BATCH = 50
REMINDER_BATCH = 100
MAX_ROUNDS = 200  # per job run: a backlog drains in one run instead of one batch per interval


async def drain(tick: Callable[..., Awaitable[int]], batch: int) -> None:
    """Run ``tick`` again while it comes back with a full batch (a backlog drains in one go)."""
    for _ in range(MAX_ROUNDS):
        if await tick(limit=batch) < batch:
            return


def start_scheduler(services: Services) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs: list[tuple[str, Callable[..., Awaitable[object]], list[object], int]] = [
        ("delivery", drain, [services.delivery.tick, DELIVERY_BATCH], DELIVERY_EVERY_SECONDS),
        ("reminders", drain, [services.reminders.tick, REMINDER_BATCH], REMINDERS_EVERY_SECONDS),
        ("waitlist", services.waitlist.tick, [], WAITLIST_EVERY_SECONDS),
        ("hold-expiry", services.bookings.release_expired_holds, [], HOLD_SWEEP_EVERY_SECONDS),
    ]
    for job_id, func, args, seconds in jobs:  # never two runs of one job at once in a process
        scheduler.add_job(func, "interval", args=args, seconds=seconds, id=job_id, max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
