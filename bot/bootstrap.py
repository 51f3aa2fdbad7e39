"""The composition root: builds storage, services and clock from a config in one place.

Tests and benchmarks swap parts here (a FixedClock, another database URL) instead of
patching modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.bookings import BookingService
from core.catalog import sync_catalog
from core.clock import Clock, SystemClock
from core.config import AppConfig
from core.db import Database
from core.migrate import upgrade


@dataclass
class Services:
    """Everything a request handler or command needs, wired once."""

    config: AppConfig
    db: Database
    clock: Clock
    bookings: BookingService
    started: list[str] = field(default_factory=list)

    async def close(self) -> None:
        await self.db.dispose()


async def bootstrap(
    config: AppConfig,
    *,
    clock: Clock | None = None,
    database_url: str | None = None,
    migrate: bool = True,
) -> Services:
    """Open the database, migrate it, sync the catalog and build the services."""
    db = Database(database_url or config.database.url, echo=config.database.echo)
    try:
        if migrate:
            await upgrade(db)
        await sync_catalog(db, config)
    except BaseException:
        await db.dispose()
        raise
    clock = clock or SystemClock()
    return Services(config=config, db=db, clock=clock, bookings=BookingService(db, config, clock))
