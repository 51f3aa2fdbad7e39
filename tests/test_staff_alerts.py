"""The staff notification channel: a shop with ``staff_alerts: {telegram: {chat_id: ...}}`` gets a
message in that Telegram chat, through its own bot and the outbox, when the bot hands a chat to
staff and when a visit gets a low rating; never a phone number, a comment, a name or health data.
Sent through python-telegram-bot's real client to the local fake Bot API (tests/channels), on
SQLite and PostgreSQL. A bad ``staff_alerts`` section is refused at load with FILE:LINE: reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import AppConfig, ConfigError, StaffAlertsConfig, TelegramStaffAlerts, load_config
from core.models import OutboxMessage, OutboxStatus
from core.results import Actor, Booked
from core.staff_alerts import KIND, targets
from tests.channels.fake_telegram import FakeTelegram
from tests.channels.test_telegram import TOKEN, with_telegram
from tests.conftest import CONFIG_PATH
from tests.helpers import MON, at, shows
from tests.support.collecting import CollectingChannel

STAFF_CHAT = -1001234567890
PHONE = "13800138000"


def alerting(config: AppConfig, api_base_url: str) -> AppConfig:
    """The demo config with pawspa's Telegram bot on the fake and its staff group as the alert chat."""
    config = with_telegram(config, api_base_url, public_url=None)
    shop = config.shops["pawspa"]
    alerts = StaffAlertsConfig(telegram=TelegramStaffAlerts(chat_id=str(STAFF_CHAT)))
    return config.model_copy(
        update={"shops": {**config.shops, "pawspa": shop.model_copy(update={"staff_alerts": alerts})}}
    )


@pytest.fixture
async def shop(
    services: Services, demo_config: AppConfig, clock: FixedClock, db_url: str
) -> AsyncIterator[tuple[Services, FakeTelegram]]:
    """The local Bot API, and services on the same (migrated, synced) database built from the
    alerting config."""
    bot_api = FakeTelegram(TOKEN)
    await bot_api.start()
    svc = await bootstrap(
        alerting(demo_config, bot_api.url), clock=clock, database_url=db_url, migrate=False, sync=False,
        faq_registry=services.faq,
    )  # fmt: skip
    try:
        yield svc, bot_api
    finally:
        await svc.close()
        await bot_api.close()


async def _alerts(svc: Services) -> list[OutboxMessage]:
    async with svc.db.reading() as s:
        return list(await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND).order_by(OutboxMessage.id)))


async def _customer(svc: Services, user: str) -> int:
    await CollectingChannel(svc.engine, "pawspa", user=user).push("你好")
    customer = await svc.customers.identify("pawspa", "test", user, display_name="赵女士")
    await svc.customers.update(customer.id, phone=PHONE)
    return customer.id


def _clean(text: str) -> None:
    for secret in (PHONE, "赵女士", "皮肤", "过敏", "138"):
        assert secret not in text, secret


async def test_a_handoff_alerts_the_staff_group(shop: tuple[Services, FakeTelegram]) -> None:
    svc, fake = shop
    await _customer(svc, "zhao")
    await CollectingChannel(svc.engine, "pawspa", user="zhao").push("转人工，我家狗皮肤过敏，电话13800138000")
    [row] = await _alerts(svc)
    assert (row.channel, row.external_id, row.conversation_id) == ("telegram", str(STAFF_CHAT), None)
    assert await svc.delivery.tick() >= 1
    [sent] = fake.sent_to(STAFF_CHAT)
    assert shows("staff_alert.handoff", sent.params["text"])
    _clean(sent.params["text"])
    [row] = await _alerts(svc)
    assert row.status == OutboxStatus.SENT


async def test_a_low_rating_alerts_the_staff_group_without_the_comment(shop: tuple[Services, FakeTelegram]) -> None:
    svc, fake = shop
    customer_id = await _customer(svc, "qian")
    booked = await svc.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "10:00"), customer_id=customer_id),
        Actor.customer(customer_id),
    )
    assert isinstance(booked, Booked)
    assert isinstance(svc.clock, FixedClock)
    svc.clock.set(at(MON, "11:05"))
    await svc.bookings.mark_attendance("pawspa", booked.booking.id, "completed", Actor.staff("xiaomei"))
    ratings = svc.engine.ratings
    assert ratings is not None
    await ratings.record_rating(booked.booking.id, customer_id, 4)  # not low: no alert
    assert await _alerts(svc) == []
    second = await svc.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "14:00"), customer_id=customer_id),
        Actor.customer(customer_id),
    )
    assert isinstance(second, Booked)
    svc.clock.set(at(MON, "15:05"))
    await svc.bookings.mark_attendance("pawspa", second.booking.id, "completed", Actor.staff("xiaomei"))
    await ratings.record_rating(second.booking.id, customer_id, 1, f"皮肤过敏了，打我电话{PHONE}")
    assert len(await _alerts(svc)) == 1
    await svc.delivery.tick()
    [sent] = fake.sent_to(STAFF_CHAT)
    text = sent.params["text"]
    assert shows("staff_alert.low_rating", text) and second.booking.code in text
    _clean(text)


async def test_no_alert_where_none_is_configured(services: Services) -> None:
    """The demo config has no staff_alerts: a handoff alerts nobody (the console still shows it)."""
    assert targets(services.config.shops["pawspa"]) == []
    await CollectingChannel(services.engine, "pawspa", user="li").push("转人工")
    assert await _alerts(services) == []


def _config_with(tmp_path: Path, section: str, *, telegram: bool) -> Path:
    source = CONFIG_PATH.read_text(encoding="utf-8")
    extra = "    channels:\n      telegram: {token: " + TOKEN + "}\n" if telegram else ""
    path = tmp_path / "config.yaml"
    text = source.replace("    kind: pet\n", "    kind: pet\n" + section, 1)
    if telegram:
        text = text.replace("    channels:\n", extra, 1)
    path.write_text(text, encoding="utf-8")
    return path


def test_bad_staff_alert_config_is_refused_with_file_and_line(tmp_path: Path) -> None:
    path = _config_with(tmp_path, "    staff_alerts:\n      telegram: {chat_id: '-100123'}\n", telegram=False)
    with pytest.raises(ConfigError) as no_bot:
        load_config(path, environ={})
    [issue] = no_bot.value.issues
    assert str(issue).startswith(f"{path}:") and "shops.pawspa.staff_alerts.telegram" in str(issue)
    assert "channels.telegram" in str(issue)
    line = int(str(issue).split(":")[1])
    assert path.read_text(encoding="utf-8").splitlines()[line - 1].strip().startswith("telegram:")

    path = _config_with(tmp_path, "    staff_alerts:\n      telegram: {chat_id: 'my staff group'}\n", telegram=True)
    with pytest.raises(ConfigError) as bad_id:
        load_config(path, environ={})
    [issue] = bad_id.value.issues
    assert "shops.pawspa.staff_alerts.telegram.chat_id" in str(issue)

    path = _config_with(
        tmp_path, "    staff_alerts:\n      telegram: {chat_id: '${STAFF_CHAT}'}\n      language: en\n", telegram=True
    )
    shop = load_config(path, environ={"STAFF_CHAT": str(STAFF_CHAT)}).shops["pawspa"]
    assert targets(shop) == [("telegram", str(STAFF_CHAT))]
