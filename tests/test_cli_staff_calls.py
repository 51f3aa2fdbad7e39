"""`chatbook staff calls`: whom the front desk has to phone today."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.bootstrap import bootstrap
from core.availability import to_utc
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import load_config
from core.messages import OutgoingMessage
from core.results import Actor, Booked
from tests.conftest import CONFIG_PATH
from tests.helpers import copy_sqlite, sqlite_template
from tests.support.cli import run_chatbook
from tests.support.collecting import CollectingChannel


def test_lists_unanswered_shop_changes_and_undelivered_messages(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    config = load_config(CONFIG_PATH, environ={})
    shop = config.shops["pawspa"]

    async def seed() -> None:
        # Yesterday (real time) the shop recorded time off and asked the customer to answer within the hour.
        clock = FixedClock(datetime.now(UTC) - timedelta(days=1))
        copy_sqlite(await sqlite_template(config), tmp_path / "calls.db")  # migrated and synced once per process
        services = await bootstrap(config, clock=clock, database_url=url, migrate=False, sync=False)
        try:
            await CollectingChannel(services.engine, "pawspa", user="wang", display_name="王女士").push("你好")
            customer = await services.customers.identify("pawspa", "test", "wang")
            await services.customers.update(customer.id, phone="+86 138 0000 1234")
            day = clock.now().astimezone(shop.tz).date() + timedelta(days=2)
            while not shop.hours_on(day):
                day += timedelta(days=1)
            start = to_utc(day, 14 * 60, shop.tz)
            booked = await services.bookings.book(
                BookingRequest("pawspa", "dog_bath_small", start, staff_id="ajie", customer_id=customer.id),
                Actor.customer(customer.id),
            )
            assert isinstance(booked, Booked)
            await services.bookings.add_time_off(
                "pawspa",
                "ajie",
                start - timedelta(hours=1),
                start + timedelta(hours=3),
                Actor.staff("desk"),
                "sick",
                notify_customers=True,
                respond_within=timedelta(hours=1),
            )
            conv = await services.store.latest_conversation("pawspa", customer.id)
            assert conv is not None
            outbox_id = await services.store.enqueue(conv, OutgoingMessage("明天见"), author="staff:lily")
            await services.outbox.claim(["test"])
            await services.outbox.failed(outbox_id, "window closed", needs_staff=True)
        finally:
            await services.close()

    asyncio.run(seed())
    done = run_chatbook(  # bot.cli.main in this process (tests/support/cli.py), on its own bootstrap
        "staff", "calls", "--config", str(CONFIG_PATH), "--shop", "pawspa", env={"CHATBOOK_DATABASE_URL": url}
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("undelivered  王女士  +86 138 0000 1234  (window closed): 明天见") for line in lines)
    assert any("王女士" in line and "asked to answer by" in line for line in lines)
