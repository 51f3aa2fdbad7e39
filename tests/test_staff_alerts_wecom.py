"""Staff alerts to a WeCom group chat: a shop with ``staff_alerts: {wecom: {corp_id, secret, chat_id}}``
gets the handoff and low-rating alerts in that chat (``appchat/send`` through the corp's app, its
own access token), through the outbox and the delivery loop, sent by the WeCom channel's real
client (channels/wecom/api.py, aiohttp) to the local fake WeCom API (tests/channels/fake_wecom.py,
given the app-chat endpoint here). A busy WeCom is retried, an unknown chat is flagged for staff,
the app's secret is never logged, and the config's secret comes from ``${VAR}``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import AppConfig, ConfigError, StaffAlertsConfig, WeComStaffAlerts, load_config
from core.models import OutboxMessage, OutboxStatus
from core.results import Actor, Booked
from core.staff_alerts import KIND, targets
from tests.channels.fake_wecom import CORP_ID, FakeWeCom
from tests.helpers import MON, at, shows
from tests.support.collecting import CollectingChannel
from tests.test_staff_alerts import PHONE, _config_with

APP_SECRET = "staff-app-secret-do-not-log"
CHAT = "staffroom01"


@dataclass
class FakeWeComApp(FakeWeCom):
    """The fake WeCom API with the app group chat endpoint (``appchat/send``): known chats only,
    text of at most 2048 bytes, the same access tokens (and expiry) as the other endpoints."""

    chats: dict[str, list[str]] = field(default_factory=dict)
    busy_next: int = 0  # answer the next N sends with -1 (system busy)

    async def start(self) -> FakeWeComApp:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/appchat/send", self._appchat_send)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    def texts(self, chat: str = CHAT) -> list[str]:
        return self.chats.get(chat, [])

    async def _appchat_send(self, request: web.Request) -> web.Response:
        body, error = await self._body(request, "appchat/send")
        if error is not None:
            return error
        assert body is not None
        if self.busy_next:
            self.busy_next -= 1
            return self._fail("appchat/send", -1, "system busy")
        chat = str(body.get("chatid", ""))
        if chat not in self.chats:
            return self._fail("appchat/send", 86003, "chat not exist")
        content = body.get("text", {}).get("content", "") if body.get("msgtype") == "text" else ""
        if not isinstance(content, str) or not 0 < len(content.encode()) <= 2048:
            return self._fail("appchat/send", 40008, "invalid message")
        self.chats[chat].append(content)
        return web.json_response({"errcode": 0, "errmsg": "ok"})


def alerting(config: AppConfig, api_base_url: str, chat: str = CHAT) -> AppConfig:
    shop = config.shops["pawspa"]
    wecom = WeComStaffAlerts(corp_id=CORP_ID, secret=APP_SECRET, chat_id=chat, api_base_url=api_base_url)
    alerts = StaffAlertsConfig(wecom=wecom)
    return config.model_copy(
        update={"shops": {**config.shops, "pawspa": shop.model_copy(update={"staff_alerts": alerts})}}
    )


@pytest.fixture
async def fake(clock: FixedClock) -> AsyncIterator[FakeWeComApp]:
    api = FakeWeComApp(clock, secret=APP_SECRET, chats={CHAT: []})
    await api.start()
    try:
        yield api
    finally:
        await api.stop()


async def _services(services: Services, config: AppConfig, clock: FixedClock, db_url: str) -> Services:
    return await bootstrap(
        config, clock=clock, database_url=db_url, migrate=False, sync=False, faq_registry=services.faq
    )


def _logged(caplog: pytest.LogCaptureFixture, secret: str) -> list[str]:
    """Our log lines holding ``secret`` (the fake server's own access log, WeCom's side, aside)."""
    return [r.getMessage() for r in caplog.records if r.name != "aiohttp.access" and secret in r.getMessage()]


async def _alerts(svc: Services) -> list[OutboxMessage]:
    async with svc.db.reading() as s:
        return list(await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == KIND).order_by(OutboxMessage.id)))


async def test_handoffs_and_low_ratings_reach_the_wecom_staff_chat(
    services: Services, demo_config: AppConfig, clock: FixedClock, db_url: str, fake: FakeWeComApp,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    svc = await _services(services, alerting(demo_config, fake.url), clock, db_url)
    try:
        await CollectingChannel(svc.engine, "pawspa", user="zhao").push(f"转人工，我家狗皮肤过敏，电话{PHONE}")
        [row] = await _alerts(svc)
        assert (row.channel, row.external_id, row.conversation_id) == ("wecom", CHAT, None)
        fake.busy_next = 1  # WeCom busy once: tried again, not given up
        await svc.delivery.tick()
        [row] = await _alerts(svc)
        assert row.status == OutboxStatus.PENDING and row.attempts == 1 and fake.texts() == []
        clock.advance(timedelta(minutes=5))
        await svc.delivery.tick()
        [handoff] = fake.texts()
        assert shows("staff_alert.handoff", handoff)
        for secret in (PHONE, "皮肤", "过敏"):
            assert secret not in handoff
        assert (await _alerts(svc))[0].status == OutboxStatus.SENT

        customer = await svc.customers.identify("pawspa", "test", "zhao")
        booked = await svc.bookings.book(
            BookingRequest("pawspa", "dog_bath_small", at(MON, "10:00"), customer_id=customer.id),
            Actor.customer(customer.id),
        )
        assert isinstance(booked, Booked)
        clock.set(at(MON, "11:05"))
        await svc.bookings.mark_attendance("pawspa", booked.booking.id, "completed", Actor.staff("xiaomei"))
        assert svc.engine.ratings is not None
        await svc.engine.ratings.record_rating(booked.booking.id, customer.id, 1, f"太差了，打我电话{PHONE}")
        await svc.delivery.tick()
        low = fake.texts()[-1]
        assert shows("staff_alert.low_rating", low) and booked.booking.code in low and PHONE not in low
        assert fake.token_fetches == 1  # one token for the app, reused
    finally:
        await svc.close()
    assert not _logged(caplog, APP_SECRET)


async def test_an_unknown_chat_is_flagged_for_staff_not_retried_forever(
    services: Services, demo_config: AppConfig, clock: FixedClock, db_url: str, fake: FakeWeComApp,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    svc = await _services(services, alerting(demo_config, fake.url, chat="nosuchchat"), clock, db_url)
    try:
        await CollectingChannel(svc.engine, "pawspa", user="li").push("转人工")
        await svc.delivery.tick()
        [row] = await _alerts(svc)
        assert row.status == OutboxStatus.FAILED and row.needs_staff
        assert fake.texts() == [] and ("appchat/send", 86003) in fake.errors
    finally:
        await svc.close()
    assert not _logged(caplog, APP_SECRET)


def test_the_wecom_section_takes_its_secret_from_the_environment(tmp_path: Path) -> None:
    section = (
        "    staff_alerts:\n"
        "      wecom: {corp_id: " + CORP_ID + ", secret: '${PAWSPA_STAFF_APP_SECRET}', chat_id: " + CHAT + "}\n"
    )
    path = _config_with(tmp_path, section, telegram=False)
    shop = load_config(path, environ={"PAWSPA_STAFF_APP_SECRET": APP_SECRET}).shops["pawspa"]
    assert shop.staff_alerts is not None and shop.staff_alerts.wecom is not None
    assert shop.staff_alerts.wecom.secret == APP_SECRET
    assert targets(shop) == [("wecom", CHAT)]

    with pytest.raises(ConfigError) as missing:
        load_config(path, environ={})
    assert "PAWSPA_STAFF_APP_SECRET" in str(missing.value)

    bad = _config_with(tmp_path, section.replace(CHAT, "'staff room!'"), telegram=False)
    with pytest.raises(ConfigError) as refused:
        load_config(bad, environ={"PAWSPA_STAFF_APP_SECRET": APP_SECRET})
    [issue] = refused.value.issues
    assert "shops.pawspa.staff_alerts.wecom.chat_id" in str(issue)
    assert APP_SECRET not in str(issue)
