"""The in-process scheduler: APScheduler runs the periodic work of every `serve` process.

Jobs live in memory only (APScheduler's job stores must not be shared between processes: its
docs say so, and a shared store double-fires). What a job does is decided by the database:
the reminder claim picks who queues a reminder, the guarded UPDATE picks who expires a hold, the
locked exam row and its audit row pick who sends a check-up recall (bot/usecases/recalls.py).
Delivery is not a job: it is the loop ``Delivery.run`` (started by ``Services.start_workers``),
woken the moment there is something to send. APScheduler's own INFO lines (two per second) are
silenced: only its warnings reach the log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.bootstrap import Services
from bot.usecases import series as series_usecases
from bot.usecases.recalls import DailyRecalls

log = logging.getLogger(__name__)
REMINDERS_EVERY_SECONDS = 1
WAITLIST_EVERY_SECONDS = 30
HOLD_SWEEP_EVERY_SECONDS = 60
SERIES_EVERY_SECONDS = 3600
RECALLS_EVERY_SECONDS = 300  # the opticians' daily check-up reminders: each shop runs once a day from its send_at


# Reminders per transaction. On SQLite a batch runs on the event loop without a pause (inline
# writes), so the messages of earlier batches are sent between batches: 500 at once left every
# shop's bot idle for ~0.25 s per batch (paced wave of bench/reminder_wave.py: 200 is faster).
REMINDER_BATCH = 200
MAX_ROUNDS = 1000  # per job run: a backlog (a reminder wave) drains in one run, as fast as the database allows


async def drain(tick: Callable[..., Awaitable[int]], batch: int) -> None:
    """Run ``tick`` again while it comes back with a full batch (a backlog drains in one go)."""
    for _ in range(MAX_ROUNDS):
        if await tick(limit=batch) < batch:
            return


def quiet_scheduler_logs() -> None:
    for name in ("apscheduler", "apscheduler.scheduler", "apscheduler.executors.default", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)


async def queue_reminders(services: Services) -> None:
    """Drain the due reminders (round robin over the shops, so a wave reaches every shop's
    channel at once), waking the delivery loop after every batch."""

    def queued(n: int) -> None:
        if n:
            services.delivery.wake()

    await services.reminders.drain(REMINDER_BATCH, queued)


def start_scheduler(services: Services) -> AsyncIOScheduler:
    quiet_scheduler_logs()
    scheduler = AsyncIOScheduler(timezone="UTC")
    jobs: list[tuple[str, Callable[..., Awaitable[object]], list[object], int]] = [
        ("reminders", queue_reminders, [services], REMINDERS_EVERY_SECONDS),
        ("waitlist", services.waitlist.tick, [], WAITLIST_EVERY_SECONDS),
        ("hold-expiry", services.bookings.release_expired_holds, [], HOLD_SWEEP_EVERY_SECONDS),
        ("series", series_usecases.extend, [services.bookings], SERIES_EVERY_SECONDS),  # visits now in the horizon
        ("eye-recalls", DailyRecalls().tick, [services], RECALLS_EVERY_SECONDS),
    ]
    for job_id, func, args, seconds in jobs:  # never two runs of one job at once in a process
        scheduler.add_job(func, "interval", args=args, seconds=seconds, id=job_id, max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
