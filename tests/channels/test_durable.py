"""The durable path of every channel, as `serve` wires it (bot/bootstrap.py, bot/web.py):
stored in the inbox before the acknowledgement, every reply through the outbox.

Real parts: the full app on a TestServer, python-telegram-bot against the fake Bot API, the
WeChat push signed as WeChat signs it and wechatpy against the fake WeChat API, a real widget
WebSocket; SQLite (and PostgreSQL where it matters).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from bot.metrics import format_backlog, read_backlog
from bot.web import build_app
from channels.telegram import SECRET_HEADER
from channels.wechat import WEBHOOK_KEY
from core.clock import FixedClock
from core.config import AppConfig, TelegramConfig
from core.models import InboundMessage, OutboxMessage, OutboxStatus
from tests.channels.fake_telegram import FakeTelegram, text_update
from tests.channels.fake_wechat import FakeWeChatApi, WeChatUser, wechat_config
from tests.conftest import NOW

TOKEN = "7012345678:AAHk3Zfake-TOKEN_for_chatbook_tests0"
SECRET = "pawspa-webhook-secret"
CHAT = 5551234


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def durable_config(config: AppConfig, telegram_api: str, wechat_api: str) -> AppConfig:
    pawspa, clearsight = config.shops["pawspa"], config.shops["clearsight"]
    telegram = TelegramConfig(token=TOKEN, secret_token=SECRET, api_base_url=telegram_api)
    shops = {
        **config.shops,
        "pawspa": pawspa.model_copy(update={"channels": pawspa.channels.model_copy(update={"telegram": telegram})}),
        "clearsight": clearsight.model_copy(
            update={
                "channels": clearsight.channels.model_copy(update={"wechat": wechat_config(wechat_api, aes=False)})
            }
        ),
    }
    return config.model_copy(update={"shops": shops})


async def eventually(condition: Callable[[], Any], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not in time"
        await asyncio.sleep(0.02)


class App:
    def __init__(self, services: Services, client: TestClient[Any, Any], fake: FakeTelegram, api: FakeWeChatApi):
        self.services, self.client, self.fake, self.api = services, client, fake, api

    async def telegram(self, update: dict[str, Any]) -> int:
        resp = await self.client.post("/telegram/pawspa", json=update, headers={SECRET_HEADER: SECRET})
        return resp.status

    async def outbox(self) -> list[OutboxMessage]:
        async with self.services.db.reading() as s:
            return list(await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


@pytest.fixture
async def app(demo_config: AppConfig, db_url: str) -> AsyncIterator[App]:
    port = free_port()
    fake = FakeTelegram(TOKEN, port=port)
    await fake.start()
    api = await FakeWeChatApi().start()
    config = durable_config(demo_config, fake.url, api.url)
    services = await bootstrap(config, clock=FixedClock(NOW), database_url=db_url)
    client = TestClient(TestServer(build_app(services), host="127.0.0.1"))
    await client.start_server()
    await services.start_workers()
    try:
        yield App(services, client, fake, api)
    finally:
        await client.close()
        await services.close()
        await fake.close()
        await api.stop()


async def test_telegram_update_is_stored_before_the_200_and_answered_once_through_the_outbox(app: App) -> None:
    update = text_update(4242, CHAT, "你好")
    statuses = [await app.telegram(update) for _ in range(3)]  # Telegram retried: the same update thrice
    assert statuses == [200, 200, 200]
    await eventually(lambda: app.fake.sent_to(CHAT))
    await asyncio.sleep(0.3)
    async with app.services.db.reading() as s:
        [row] = list(await s.scalars(select(InboundMessage).where(InboundMessage.message_id == "tg:4242")))
    assert row.done and row.message is not None and row.message["raw"]["update_id"] == 4242
    sent = app.fake.sent_to(CHAT)
    assert len(sent) == len(row.reply or [])  # each reply once
    rows = await app.outbox()
    assert [r.status for r in rows] == [OutboxStatus.SENT] * len(sent)


async def test_a_reply_arrives_once_the_bot_api_is_back(demo_config: AppConfig, sqlite_url: str) -> None:
    port = free_port()
    api = await FakeWeChatApi().start()
    clock = FixedClock(NOW)
    services = await bootstrap(
        durable_config(demo_config, f"http://127.0.0.1:{port}", api.url), clock=clock, database_url=sqlite_url
    )
    client = TestClient(TestServer(build_app(services), host="127.0.0.1"))
    await client.start_server()  # the Bot API is down: getMe fails, the server still starts
    await services.start_workers()
    fake = FakeTelegram(TOKEN, port=port)
    try:
        resp = await client.post("/telegram/pawspa", json=text_update(1, CHAT, "你好"), headers={SECRET_HEADER: SECRET})
        assert resp.status == 200
        outbox = lambda: services.db.reading()  # noqa: E731

        async def statuses() -> list[tuple[OutboxStatus, str | None]]:
            async with outbox() as s:
                return [(r.status, r.error) for r in await s.scalars(select(OutboxMessage))]

        deadline = asyncio.get_running_loop().time() + 15
        while not any(error for _, error in await statuses()):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert {status for status, _ in await statuses()} == {OutboxStatus.PENDING}  # kept, to be retried
        clock.advance(timedelta(seconds=3))  # the retry is due after 5 s: only a probe can find the API back
        lines = await read_backlog(services.db, services.outbox, clock.now())  # what `chatbook status` prints
        table = format_backlog(lines, clock.now())
        assert [(line.queue, line.shop_id, line.channel) for line in lines] == [("outbox", "pawspa", "telegram")]
        assert lines[0].rows >= 1 and lines[0].age(clock.now()) == 3.0 and "outbox" in table and "3.0" in table
        await fake.start()  # back, at the same address
        back = asyncio.get_running_loop().time()
        await eventually(lambda: fake.sent_to(CHAT))
        assert asyncio.get_running_loop().time() - back < 5.0  # within seconds of its return
        while {status for status, _ in await statuses()} != {OutboxStatus.SENT}:  # settled right after
            assert asyncio.get_running_loop().time() < deadline + 15
            await asyncio.sleep(0.05)
        assert len(fake.sent_to(CHAT)) == len(await statuses())  # each reply once
    finally:
        await client.close()
        await services.close()
        await fake.close()
        await api.stop()


async def sent_inline(app: App) -> None:
    """The replies' outbox rows are marked sent (right after the inline answer was written)."""
    for _ in range(200):
        rows = await app.outbox()
        if rows and {(r.status, r.provider_id) for r in rows} == {(OutboxStatus.SENT, "inline")}:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"outbox rows not marked sent inline: {[(r.status, r.provider_id) for r in rows]}")


async def test_wechat_passive_reply_is_not_sent_again_by_the_outbox(app: App) -> None:
    user = WeChatUser(app.client, "clearsight", app.services.clock, False, openid="oPassive_01")
    reply = await user.say("你好")
    assert reply  # answered passively, in the response
    await sent_inline(app)
    app.services.delivery.wake()
    await asyncio.sleep(0.3)
    assert app.api.messages == []  # never through the customer service API as well


async def test_wechat_slow_turn_answers_success_and_the_outbox_sends_it(app: App) -> None:
    hook = app.client.app[WEBHOOK_KEY]
    hook.passive_deadline = 0.0  # as if the turn took longer than WeChat waits
    user = WeChatUser(app.client, "clearsight", app.services.clock, False, openid="oSlow_0001")
    assert await user.say("你好") == ""  # "success"
    await eventually(lambda: app.api.messages)
    await asyncio.sleep(0.3)
    rows = await app.outbox()
    assert len(app.api.messages) == len(rows) and {r.status for r in rows} == {OutboxStatus.SENT}


async def test_widget_message_is_acknowledged_then_answered_inline_once(app: App) -> None:
    origin = {"Origin": str(app.client.make_url("/").origin())}
    ws = await app.client.ws_connect("/widget/pawspa/ws", headers=origin)
    await ws.send_json({"type": "hello", "token": None, "lang": "zh"})
    assert (await ws.receive_json())["type"] == "welcome"
    assert (await ws.receive_json())["type"] == "history"
    await ws.send_json({"type": "message", "id": "c1", "text": "你好"})
    kinds = []
    while True:
        frame = await ws.receive_json(timeout=10)
        kinds.append(frame["type"])
        if frame["type"] == "reply":
            break
    assert kinds[0] == "ack" and frame["in_reply_to"] == "c1" and frame["messages"]
    await sent_inline(app)
    with pytest.raises(asyncio.TimeoutError):
        await ws.receive_json(timeout=0.5)  # not pushed again
    await ws.close()


async def test_metrics_show_backlogs_counters_and_latency(app: App) -> None:
    assert await app.telegram(text_update(7, CHAT, "你好")) == 200
    await eventually(lambda: app.fake.sent_to(CHAT))
    for _ in range(100):  # the delivery counter moves when the batch is settled
        resp = await app.client.get("/metrics")
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        body = await resp.text()
        if "chatbook_deliveries_total{" in body:
            break
        await asyncio.sleep(0.05)
    assert 'chatbook_messages_handled_total{channel="telegram",shop="pawspa"} 1.0' in body
    assert "chatbook_turn_seconds_bucket" in body
    assert 'chatbook_deliveries_total{channel="telegram",result="sent",shop="pawspa"}' in body
    assert 'chatbook_backlog_rows{channel="",queue="inbox",shop=""} 0.0' in body



# ----------------------------------------------------------------------------- widget limits


async def test_widget_limits_tell_the_customer_and_create_no_customer(app: App) -> None:
    from sqlalchemy import func

    from channels.web.limits import Limiter, Rate, WidgetLimits
    from core.i18n import texts
    from core.models import Customer

    routes_limits = WidgetLimits(
        sessions_per_address=Rate(burst=3, per_second=0.0),
        messages_per_address=Rate(burst=100, per_second=0.0),
        customers_per_address=Rate(burst=2, per_second=0.0),
        messages_per_session=Rate(burst=2, per_second=0.0),
    )
    from aiohttp import web

    from channels.base import ChannelContext
    from channels.web import register

    widget = web.Application()
    ctx = ChannelContext(app.services.config, app.services.engine, app.services.clock, app.services.store.history)
    ctx.inbox = app.services.inbox
    register(widget, ctx, limiter=Limiter(routes_limits))
    async with TestClient(TestServer(widget, host="127.0.0.1")) as client:
        origin = {"Origin": str(client.make_url("/").origin())}

        async def open_chat() -> Any:
            ws = await client.ws_connect("/widget/pawspa/ws", headers=origin)
            await ws.send_json({"type": "hello", "token": None, "lang": "en"})
            return ws, await ws.receive_json()

        async def count_customers() -> int:
            async with app.services.db.reading() as s:
                return int(await s.scalar(select(func.count()).select_from(Customer)) or 0)

        before = await count_customers()
        chats = []
        for _ in range(3):
            ws, welcome = await open_chat()
            assert welcome["type"] == "welcome"
            assert (await ws.receive_json())["type"] == "history"
            chats.append(ws)
        assert await count_customers() == before  # sessions alone make no customer
        ws, refused = await open_chat()  # the 4th new session from this address
        assert refused == {
            "type": "error",
            "code": "too_many_sessions",
            "message": texts("en").t("limits.too_many_sessions"),
        }

        async def say(ws: Any, client_id: str) -> dict[str, Any]:
            await ws.send_json({"type": "message", "id": client_id, "text": "hello"})
            while (frame := await ws.receive_json(timeout=10))["type"] in ("ack", "typing"):
                pass
            return dict(frame)

        assert (await say(chats[0], "a1"))["type"] == "reply"
        assert (await say(chats[0], "a2"))["type"] == "reply"
        limited = await say(chats[0], "a3")  # the session's third message
        assert limited["code"] == "rate_limited" and limited["in_reply_to"] == "a3"
        assert limited["message"] == texts("en").t("limits.too_many_messages")
        assert (await say(chats[1], "b1"))["type"] == "reply"  # the address's second new customer
        refused_customer = await say(chats[2], "c1")  # a third new customer from this address
        assert refused_customer["code"] == "rate_limited"
        assert await count_customers() == before + 2
        for ws in chats:
            await ws.close()
