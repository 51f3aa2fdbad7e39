"""The composition root: builds storage, services and clock from a config in one place.

Tests and benchmarks swap parts here (a FixedClock, another database URL) instead of
patching modules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from bot.delivery import Delivery
from bot.engine.engine import Engine
from bot.engine.store import ConversationStore
from bot.events import EventBus
from bot.inbox import Inbox, Workers
from bot.metrics import Metrics
from bot.notifier import ReminderDispatcher
from bot.usecases.staff_alerts import AlertingEvents
from bot.wiring import build_senders
from channels.base import ChannelContext, ChannelSender
from core.bookings import BookingService
from core.catalog import sync_catalog
from core.clock import Clock, SystemClock
from core.config import AppConfig
from core.customers import CustomerDirectory
from core.db import Database
from core.migrate import upgrade
from core.outbox import Outbox
from core.ratings import RatingService
from core.staff_accounts import StaffAccounts
from core.staff_alerts import StaffAlerts
from core.waitlist import Waitlist
from faq import FaqRegistry

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a request handler or command needs, wired once."""

    config: AppConfig
    db: Database
    clock: Clock
    bookings: BookingService
    customers: CustomerDirectory
    store: ConversationStore
    faq: FaqRegistry | None
    engine: Engine
    channels: ChannelContext
    outbox: Outbox
    delivery: Delivery
    reminders: ReminderDispatcher
    waitlist: Waitlist
    events: EventBus
    accounts: StaffAccounts
    inbox: Inbox
    workers: Workers
    metrics: Metrics
    started: list[str] = field(default_factory=list)

    async def start_workers(self) -> None:
        """What a `serve` process runs besides HTTP: the inbox worker (takes over what a dead
        process left) and the delivery loop (woken by turns here and NOTIFY from others)."""
        self.events.on_wake(self.delivery.wake)
        await self.inbox.start()
        self.delivery.start()

    async def stop_workers(self, grace: float = 10.0) -> None:
        """SIGTERM: take no new messages, finish those in hand and send their replies (bounded)."""
        await self.inbox.stop(grace)
        await self.delivery.stop(grace / 2)

    async def close(self) -> None:
        await self.stop_workers(grace=2.0)
        await self.events.stop()
        for sender in self.delivery.senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                await close()
        await self.db.dispose()


async def bootstrap(
    config: AppConfig,
    *,
    clock: Clock | None = None,
    database_url: str | None = None,
    migrate: bool = True,
    senders_override: dict[str, ChannelSender] | None = None,
    sync: bool = True,
    faq_registry: FaqRegistry | None = None,
) -> Services:
    """Open the database, migrate it, sync the catalog and build the services.

    Tests pass ``sync=False`` for a copy of a database already synced with this config and
    ``faq_registry`` for one already loaded from ``config.faq_dir`` (it hot-reloads on its own).
    """
    db = Database(database_url or config.database.url, echo=config.database.echo)
    try:
        if migrate:
            await upgrade(db)
        if sync:
            await sync_catalog(db, config)
    except BaseException:
        await db.dispose()
        raise
    clock = clock or SystemClock()
    bookings = BookingService(db, config, clock)
    customers = CustomerDirectory(db, clock)
    workers = Workers(db)
    store = ConversationStore(db, clock, owner=workers.id)
    faq = faq_registry if faq_registry is not None else load_faq_registry(config)
    waitlist = Waitlist(db, config, clock, bookings)
    alerts = StaffAlerts(db, config, clock)  # the shop's staff notification channel (core/staff_alerts.py)
    events: EventBus = AlertingEvents(db, alerts)  # handoffs also alert that channel
    engine = Engine(config, db, clock, bookings, customers, store, faq, waitlist, events)
    engine.ratings = RatingService(db, config, clock, publish=events.publish, notify_staff=alerts.notify)
    channels = ChannelContext(config=config, engine=engine, clock=clock, history=store.history)
    outbox = Outbox(db, clock, owner=workers.id)
    metrics = Metrics(db, outbox, clock)
    senders: dict[str, ChannelSender] = build_senders(channels) if senders_override is None else senders_override
    delivery = Delivery(db, outbox, senders, customers, clock, metrics=metrics)
    store.wake = delivery.wake
    alerts.wake = delivery.wake
    inbox = Inbox(db, engine, outbox, workers, wake_delivery=delivery.wake, metrics=metrics)
    channels.inbox = inbox
    reminders = ReminderDispatcher(db, config, clock, bookings)
    reminders.metrics = metrics
    channels.db = db  # channels with state of their own (WeCom's sync cursor and reply windows)
    return Services(
        config=config,
        db=db,
        clock=clock,
        bookings=bookings,
        customers=customers,
        store=store,
        faq=faq,
        engine=engine,
        channels=channels,
        outbox=outbox,
        delivery=delivery,
        reminders=reminders,
        waitlist=waitlist,
        events=events,
        accounts=StaffAccounts(db, clock),
        inbox=inbox,
        workers=workers,
        metrics=metrics,
    )


def load_faq_registry(config: AppConfig) -> FaqRegistry | None:
    """The FAQ files for the configured shops; problems are logged, the last good version serves."""
    directory = Path(config.faq_dir)
    if not directory.is_dir():
        log.warning("FAQ directory %s not found: FAQ answers are off", directory)
        return None
    routes = {member.role for shop in config.shops.values() for member in shop.staff.values()}
    registry = FaqRegistry(
        directory, known_routes=sorted(routes | {"front_desk"}), cache_dir=config.faq_cache_dir or None
    )
    for error in registry.errors():
        log.warning("FAQ: %s", error)
    return registry
