"""What ops can see: `GET /metrics` in Prometheus text format, and `chatbook status`.

Counters and the turn latency histogram are kept in memory per process (each `serve` process is
scraped on its own). Backlogs (inbox and outbox rows not yet done, the age of the oldest, the
reminders due) are read from the database at scrape time, so they are the same whichever
process answers, and `chatbook status` prints the same figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select

from core.clock import Clock
from core.db import Database
from core.models import Booking, InboundMessage, Reminder, ReminderStatus
from core.outbox import Outbox

__all__ = ["CONTENT_TYPE", "Backlog", "Metrics", "read_backlog"]

TURN_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class BacklogLine:
    queue: str  # inbox | outbox | reminders
    shop_id: str
    channel: str
    rows: int
    oldest: datetime | None

    def age(self, now: datetime) -> float:
        return max((now - self.oldest).total_seconds(), 0.0) if self.oldest else 0.0


Backlog = list[BacklogLine]


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def read_backlog(db: Database, outbox: Outbox, now: datetime) -> Backlog:
    """Inbox rows not done, outbox rows not sent, reminders due and not queued: per shop and channel."""
    lines: Backlog = []
    async with db.reading() as s:
        rows = await s.execute(
            select(InboundMessage.shop_id, InboundMessage.channel, func.count(), func.min(InboundMessage.received_at))
            .where(InboundMessage.done.is_(False), InboundMessage.message.is_not(None))
            .group_by(InboundMessage.shop_id, InboundMessage.channel)
        )
        lines += [BacklogLine("inbox", shop, channel, int(n), _aware(oldest)) for shop, channel, n, oldest in rows]
        due = await s.execute(
            select(Booking.shop_id, func.count(), func.min(Reminder.due_at))
            .join(Booking, Booking.id == Reminder.booking_id)
            .where(Reminder.status == ReminderStatus.PENDING, Reminder.due_at <= now)
            .group_by(Booking.shop_id)
        )
        lines += [BacklogLine("reminders", shop, "", int(n), _aware(oldest)) for shop, n, oldest in due]
    lines += [BacklogLine("outbox", shop, channel, n, oldest) for shop, channel, n, oldest in await outbox.backlog()]
    return sorted(lines, key=lambda line: (line.queue, line.shop_id, line.channel))


def format_backlog(lines: Iterable[BacklogLine], now: datetime) -> str:
    """The table `chatbook status` prints."""
    out = [f"{'queue':<10} {'shop':<14} {'channel':<10} {'rows':>7} {'oldest (s)':>11}"]
    lines = list(lines)
    for line in lines:
        channel = line.channel or "-"
        out.append(f"{line.queue:<10} {line.shop_id:<14} {channel:<10} {line.rows:>7} {line.age(now):>11.1f}")
    if not lines:
        out.append("nothing waiting: inbox, outbox and due reminders are empty")
    return "\n".join(out)


class Metrics:
    """This process's counters and histograms, and the backlog gauges filled at scrape time."""

    def __init__(self, db: Database, outbox: Outbox, clock: Clock) -> None:
        self.db = db
        self.outbox = outbox
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.handled = Counter(
            "chatbook_messages_handled", "Inbound messages handled by the engine", ["shop", "channel"], registry=r
        )
        self.turn_seconds = Histogram(
            "chatbook_turn_seconds", "Engine time per message", ["channel"], buckets=TURN_BUCKETS, registry=r
        )
        self.deliveries = Counter(
            "chatbook_deliveries", "Outbox send attempts by result (sent, retried, failed)",
            ["shop", "channel", "result"], registry=r,
        )
        self.reminders_queued = Counter(
            "chatbook_reminders_sent", "Reminders handed to the outbox", ["shop"], registry=r
        )
        self.backlog_rows = Gauge(
            "chatbook_backlog_rows", "Rows waiting (queue: inbox, outbox, reminders due)",
            ["queue", "shop", "channel"], registry=r,
        )
        self.backlog_age = Gauge(
            "chatbook_backlog_oldest_seconds", "Age of the oldest waiting row",
            ["queue", "shop", "channel"], registry=r,
        )

    def turn(self, shop_id: str, channel: str, seconds: float) -> None:
        self.handled.labels(shop_id, channel).inc()
        self.turn_seconds.labels(channel).observe(seconds)

    def delivery(self, shop_id: str, channel: str, result: str) -> None:
        self.deliveries.labels(shop_id, channel, result).inc()

    async def render(self) -> bytes:
        now = self.clock.now()
        lines = await read_backlog(self.db, self.outbox, now)
        self.backlog_rows.clear()
        self.backlog_age.clear()
        for queue in ("inbox", "outbox", "reminders"):  # an empty queue still shows as 0
            self.backlog_rows.labels(queue, "", "").set(0)
        for line in lines:
            self.backlog_rows.labels(line.queue, line.shop_id, line.channel).set(line.rows)
            self.backlog_age.labels(line.queue, line.shop_id, line.channel).set(line.age(now))
        return generate_latest(self.registry)
