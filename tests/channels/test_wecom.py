"""The WeCom customer service channel through its real protocol, against a local fake of the WeCom API.

Callbacks are encrypted and signed with wechatpy's enterprise crypto (tests/channels/fake_wecom.py)
and posted to ``/wecom/{shop}`` on the real app (bot/web.py's build_app) with the real engine, the
durable inbox and the delivery loop running on a real SQLite database. Messages are fetched from
the fake with ``kf/sync_msg`` and answered with ``kf/send_msg``. The clock is fixed.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import delete, func, select

from bot.bootstrap import Services, bootstrap
from bot.web import build_app
from channels.wecom import WEBHOOK_KEY, WeComWebhook, check, render, to_incoming
from core.clock import FixedClock
from core.config import AppConfig, WeComConfig
from core.messages import Button, OutgoingMessage
from core.models import Conversation, ConversationMode, InboundMessage, OutboxMessage, OutboxStatus, WeComCursor
from tests.channels.fake_wecom import OPEN_KFID, SERVICER, FakeWeCom, wecom_config

SHOP = "pawspa"
USER = "wmCustomer0001"
Http = TestClient[web.Request, web.Application]


async def eventually(condition: Callable[[], bool], within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def with_wecom(config: AppConfig, cfg: WeComConfig) -> AppConfig:
    shop = config.shops[SHOP]
    channels = shop.channels.model_copy(update={"wecom": cfg})
    return config.model_copy(update={"shops": {**config.shops, SHOP: shop.model_copy(update={"channels": channels})}})


@dataclass
class Chatbook:
    """One chatbook server process: services with workers, the app, an HTTP client."""

    services: Services
    client: Http
    fake: FakeWeCom
    cfg: WeComConfig

    @property
    def hook(self) -> WeComWebhook:
        return self.client.app[WEBHOOK_KEY]

    async def notify(self, **kwargs: Any) -> int:
        """WeCom's callback: "there is something new for this account"."""
        query, body = self.fake.callback(self.cfg, **kwargs)
        return await self.post(query, body)

    async def post(self, query: dict[str, str], body: bytes, shop: str = SHOP) -> int:
        async with self.client.post(f"/wecom/{shop}", params=query, data=io.BytesIO(body)) as resp:
            await resp.read()
            return resp.status

    async def settle(self) -> None:
        """Wait until syncs, inbox and outbox are idle (bounded)."""
        await self.hook.idle()
        await eventually(lambda: self.services.inbox.in_hand == 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15.0
        while True:
            await self.services.delivery.tick()
            now = self.services.clock.now()
            busy = OutboxMessage.status == OutboxStatus.SENDING
            due = (OutboxMessage.status == OutboxStatus.PENDING) & (OutboxMessage.next_attempt_at <= now)
            if not await count(self, OutboxMessage, busy | due):
                return
            assert loop.time() < deadline, "the outbox did not settle"
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self.hook.idle()
        await self.client.close()
        await self.services.close()


async def start(config: AppConfig, clock: FixedClock, db_url: str, fake: FakeWeCom) -> Chatbook:
    cfg = config.shops[SHOP].channels.wecom
    assert cfg is not None
    services = await bootstrap(config, clock=clock, database_url=db_url)
    await services.start_workers()
    client: Http = TestClient(TestServer(build_app(services)))
    await client.start_server()
    return Chatbook(services, client, fake, cfg)


@pytest.fixture
async def fake(clock: FixedClock) -> AsyncIterator[FakeWeCom]:
    api = await FakeWeCom(clock).start()
    yield api
    await api.stop()


@pytest.fixture
def config(demo_config: AppConfig, fake: FakeWeCom) -> AppConfig:
    return with_wecom(demo_config, wecom_config(fake.url, handoff_servicer=SERVICER))


@pytest.fixture
def db_file(db_url: str) -> str:
    """SQLite and PostgreSQL (the conftest's ``db_url``)."""
    return db_url


@pytest.fixture
async def chatbook(config: AppConfig, clock: FixedClock, db_file: str, fake: FakeWeCom) -> AsyncIterator[Chatbook]:
    cb = await start(config, clock, db_file, fake)
    yield cb
    await cb.close()


async def count(cb: Chatbook, model: Any, *where: Any) -> int:
    async with cb.services.db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def conversation(cb: Chatbook, user: str = USER) -> Conversation:
    async with cb.services.db.reading() as s:
        row = await s.scalar(
            select(Conversation).where(Conversation.channel == "wecom", Conversation.external_id == user)
        )
    assert row is not None
    return row


async def last_outbox_row(cb: Chatbook, *, settled: bool = False) -> OutboxMessage:
    """The newest outbox row (``settled``: once the delivery loop has finished with it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15.0
    while True:
        async with cb.services.db.reading() as s:
            row = await s.scalar(select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(1))
        assert row is not None
        if not settled or row.status in (OutboxStatus.SENT, OutboxStatus.FAILED):
            return row
        assert loop.time() < deadline, "the outbox row was not settled in time"
        await asyncio.sleep(0.02)


# ---------------------------------------------------------------------------------------------- route rules


async def test_url_verification_echoes_the_decrypted_echostr(chatbook: Chatbook, fake: FakeWeCom) -> None:
    query = fake.verification(chatbook.cfg, "1616140317555161061")
    async with chatbook.client.get(f"/wecom/{SHOP}", params=query) as resp:
        assert resp.status == 200
        assert await resp.text() == "1616140317555161061"
    bad = {**query, "msg_signature": "0" * 40}
    async with chatbook.client.get(f"/wecom/{SHOP}", params=bad) as resp:
        assert resp.status == 403
    old = fake.verification(chatbook.cfg, "x", timestamp=int(fake.now()) - 301)
    async with chatbook.client.get(f"/wecom/{SHOP}", params=old) as resp:
        assert resp.status == 403
    async with chatbook.client.get("/wecom/clearsight", params=query) as resp:
        assert resp.status == 404  # no WeCom account there


async def test_bad_signature_old_timestamp_and_replay_are_403(chatbook: Chatbook, fake: FakeWeCom) -> None:
    query, body = fake.callback(chatbook.cfg)
    assert await chatbook.post({**query, "msg_signature": "f" * 40}, body) == 403
    assert await chatbook.post({k: v for k, v in query.items() if k != "msg_signature"}, body) == 403
    old_query, old_body = fake.callback(chatbook.cfg, timestamp=int(fake.now()) - 301)
    assert await chatbook.post(old_query, old_body) == 403
    future_query, future_body = fake.callback(chatbook.cfg, timestamp=int(fake.now()) + 301)
    assert await chatbook.post(future_query, future_body) == 403
    tampered = body.replace(b"<Encrypt><![CDATA[", b"<Encrypt><![CDATA[A")
    assert await chatbook.post(query, tampered) == 403
    assert await chatbook.post(query, body) == 200
    assert await chatbook.post(query, body) == 403  # the same signed callback again: a replay
    assert await chatbook.post(query, body, shop="clearsight") == 404
    assert not fake.errors


async def test_xxe_garbage_and_foreign_corp_are_refused_never_500(chatbook: Chatbook, fake: FakeWeCom) -> None:
    query, _ = fake.callback(chatbook.cfg)
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><Encrypt>&xxe;</Encrypt></xml>"
    )
    assert await chatbook.post(query, xxe) == 400
    laughs = b'<!DOCTYPE xml [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><xml><Encrypt>&b;</Encrypt></xml>'
    assert await chatbook.post(query, laughs) == 400
    inner_xxe = '<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Event>&xxe;</Event></xml>'
    signed_query, signed_body = fake.callback(chatbook.cfg, inner=inner_xxe)
    assert await chatbook.post(signed_query, signed_body) == 400  # signed, but the payload has a DOCTYPE
    other_query, other_body = fake.callback(chatbook.cfg, corp_id="wwSomeOtherCorp")
    assert await chatbook.post(other_query, other_body) == 400  # encrypted for another corp id
    for garbage in (b"", b"not xml", b"<xml><Encrypt></Encrypt></xml>", b"\xff\xfe<xml>", b"<a><b></a>"):
        assert await chatbook.post(query, garbage) in (400, 403)
    assert await chatbook.post(query, b"<xml>" + b"x" * (2 * 1024 * 1024) + b"</xml>") == 413
    assert all("token" not in call for call in fake.sync_calls)  # only the start-up catch-up synced


# ---------------------------------------------------------------------------------------------- messages


async def test_a_message_is_fetched_answered_and_a_tapped_menu_maps_back(chatbook: Chatbook, fake: FakeWeCom) -> None:
    fake.customer_says(USER, "你好")
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) >= 1)
    # the callback's token was used (the start-up catch-up may have synced first, without one)
    assert any(call.get("token") for call in fake.sync_calls)
    assert all(call["open_kfid"] == OPEN_KFID for call in fake.sync_calls)
    menus = [s for s in fake.sent if s.menu]
    assert menus, [s.body for s in fake.sent]
    option_id, label = menus[-1].menu[0]
    before = len(fake.sent)
    tapped = fake.customer_says(USER, label, menu_id=option_id)
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) > before)
    async with chatbook.services.db.reading() as s:
        row = await s.scalar(select(InboundMessage).where(InboundMessage.message_id == f"wecom:{tapped}"))
    assert row is not None and row.message is not None
    assert row.message["payload"] == option_id and row.message["kind"] == "button"
    assert all(s.api == "send_msg" and s.body["open_kfid"] == OPEN_KFID for s in fake.sent)


async def test_duplicate_msgid_is_answered_once(chatbook: Chatbook, fake: FakeWeCom) -> None:
    first = fake.customer_says(USER, "营业时间是几点？")
    fake.redeliver(first)  # the same msgid twice in one page
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) >= 1)
    answered = len(fake.sent)
    fake.redeliver(first)  # and again in a later page
    assert await chatbook.notify() == 200
    await chatbook.settle()
    async with chatbook.services.db.transaction() as s:  # a crash before the cursor moved: all read again
        await s.execute(delete(WeComCursor))
    assert await chatbook.notify() == 200
    await chatbook.settle()
    assert len(fake.sent) == answered
    assert await count(chatbook, InboundMessage, InboundMessage.channel == "wecom") == 1


async def test_cursor_survives_a_restart(config: AppConfig, clock: FixedClock, db_file: str, fake: FakeWeCom) -> None:
    first = await start(config, clock, db_file, fake)
    try:
        fake.customer_says(USER, "你好")
        assert await first.notify() == 200
        await first.settle()
        await eventually(lambda: len(fake.sent) >= 1)
    finally:
        await first.close()
    fake.customer_says(USER, "营业时间是几点？")  # arrives while no server runs: no callback reaches us
    answered = len(fake.sent)
    calls = len(fake.sync_calls)
    second = await start(config, clock, db_file, fake)  # a new process on the same database
    try:
        await second.settle()  # start-up catch-up
        await eventually(lambda: len(fake.sent) > answered)
        assert fake.sync_calls[calls].get("cursor") == "c1"  # where the first process stopped
        assert await count(second, InboundMessage, InboundMessage.channel == "wecom") == 2
    finally:
        await second.close()


async def test_two_processes_on_one_database_read_each_message_once(
    config: AppConfig, clock: FixedClock, db_file: str, fake: FakeWeCom
) -> None:
    one = await start(config, clock, db_file, fake)
    two = await start(config, clock, db_file, fake)
    try:
        await one.settle()
        await two.settle()
        for i, user in enumerate(("wmA", "wmB", "wmC", "wmA")):
            fake.customer_says(user, "营业时间是几点？" if i % 2 else "你好")
        statuses = await asyncio.gather(one.notify(), two.notify(), one.notify(), two.notify())
        assert list(statuses) == [200, 200, 200, 200]
        await one.settle()
        await two.settle()
        assert await count(one, InboundMessage, InboundMessage.channel == "wecom") == 4
        await eventually(lambda: len(fake.sent) >= 4)
        await one.settle()
        assert await count(one, OutboxMessage, OutboxMessage.status == OutboxStatus.SENT) == len(fake.sent)
        assert not fake.errors
    finally:
        await one.close()
        await two.close()


async def test_welcome_uses_the_enter_session_code(chatbook: Chatbook, fake: FakeWeCom) -> None:
    code = fake.customer_enters(USER)
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) >= 1)
    assert fake.sent[0].api == "send_msg_on_event" and fake.sent[0].body["code"] == code
    assert not [e for e in fake.errors if e[0] == "send_msg"]  # no send_msg before the customer wrote


async def test_five_messages_then_the_window_is_closed_and_counted(chatbook: Chatbook, fake: FakeWeCom) -> None:
    fake.customer_says(USER, "营业时间是几点？")
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) >= 1)
    conv = await conversation(chatbook)
    store = chatbook.services.store
    for i in range(6):
        await store.enqueue(conv.id, OutgoingMessage(f"staff note {i}"), author="staff:lin")
        await chatbook.settle()
    assert len(fake.sent) == 5
    assert not fake.errors  # we counted: WeCom never had to refuse
    assert await count(chatbook, OutboxMessage, OutboxMessage.status == OutboxStatus.FAILED) >= 1
    fake.customer_says(USER, "谢谢")  # the customer writes again: a new window
    assert await chatbook.notify() == 200
    await chatbook.settle()
    before = len(fake.sent)
    await store.enqueue(conv.id, OutgoingMessage("after the new message"), author="staff:lin")
    await chatbook.settle()
    assert len(fake.sent) > before and fake.sent[-1].text == "after the new message"


async def test_48_hours_after_the_last_message_nothing_is_sent(
    chatbook: Chatbook, fake: FakeWeCom, clock: FixedClock
) -> None:
    fake.customer_says(USER, "营业时间是几点？")
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) >= 1)
    sent = len(fake.sent)
    clock.advance(timedelta(hours=48, minutes=1))
    conv = await conversation(chatbook)
    await chatbook.services.store.enqueue(conv.id, OutgoingMessage("too late"), author="staff:lin")
    await chatbook.settle()
    row = await last_outbox_row(chatbook, settled=True)
    assert len(fake.sent) == sent and not fake.errors
    assert row.status == OutboxStatus.FAILED and "window closed" in (row.error or "")
    assert row.needs_staff  # the customer has no other channel: staff are told to call


async def test_an_expired_access_token_is_refreshed_once(chatbook: Chatbook, fake: FakeWeCom) -> None:
    fake.customer_says(USER, "你好")
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) >= 1)
    fetches = fake.token_fetches
    fake.expire_token()
    fake.customer_says(USER, "营业时间是几点？")
    before = len(fake.sent)
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: len(fake.sent) > before)
    assert fake.token_fetches == fetches + 1
    assert ("sync_msg", 42001) in fake.errors


async def test_handoff_transfers_to_the_servicer_and_back(chatbook: Chatbook, fake: FakeWeCom) -> None:
    fake.customer_says(USER, "转人工")
    assert await chatbook.notify() == 200
    await chatbook.settle()
    await eventually(lambda: bool(fake.transfers))
    conv = await conversation(chatbook)
    assert conv.mode == ConversationMode.HANDOFF
    assert fake.transfers[-1] == {
        "open_kfid": OPEN_KFID,
        "external_userid": USER,
        "service_state": 3,
        "servicer_userid": SERVICER,
    }
    sent = len(fake.sent)
    fake.customer_says(USER, "还在吗")  # the servicer answers in the WeCom app: the bot stays silent
    fake.servicer_says(USER, "在的，请稍等")
    assert await chatbook.notify() == 200
    await chatbook.settle()
    assert len(fake.sent) == sent
    assert await count(chatbook, InboundMessage, InboundMessage.channel == "wecom") == 2  # servicer's not taken in
    await chatbook.services.store.set_mode(conv.id, ConversationMode.BOT)  # handed back (console / CLI)
    await chatbook.services.store.enqueue(conv.id, OutgoingMessage("back with the bot"), author="bot")
    await chatbook.settle()
    assert fake.transfers[-1]["service_state"] == 4  # the servicer session is ended first
    assert fake.sent[-1].text == "back with the bot"


# ---------------------------------------------------------------------------------------------- units


def test_rendering_buttons_as_msgmenu_and_long_text_split() -> None:
    message = OutgoingMessage("选一个", (Button("洗澡", "svc:bath"), Button("美容", "svc:groom")))
    (menu,) = render(message)
    assert menu["msgtype"] == "msgmenu"
    assert [i["click"]["id"] for i in menu["msgmenu"]["list"]] == ["svc:bath", "svc:groom"]
    long = render(OutgoingMessage("很长的一行" * 300))
    assert len(long) > 1 and all(len(p["text"]["content"].encode()) <= 2048 for p in long)
    assert "".join(p["text"]["content"] for p in long) == "很长的一行" * 300


def test_to_incoming_maps_kinds(demo_config: AppConfig) -> None:
    shop = demo_config.shops[SHOP]
    base = {"msgid": "m1", "external_userid": USER, "open_kfid": OPEN_KFID, "send_time": 1_700_000_000}
    text = to_incoming(SHOP, shop, {**base, "origin": 3, "msgtype": "text", "text": {"content": "hi"}})
    assert text is not None and text.message_id == "wecom:m1" and text.kind == "text" and text.user_id == USER
    tap = {**base, "origin": 3, "msgtype": "text", "text": {"content": "洗澡", "menu_id": "svc:bath"}}
    pressed = to_incoming(SHOP, shop, tap)
    assert pressed is not None and pressed.kind == "button" and pressed.payload == "svc:bath"
    image = to_incoming(SHOP, shop, {**base, "origin": 3, "msgtype": "image"})
    assert image is not None and image.kind == "image"
    assert to_incoming(SHOP, shop, {**base, "origin": 5, "msgtype": "text", "text": {"content": "staff"}}) is None
    enter = {**base, "origin": 4, "msgtype": "event", "event": {"event_type": "enter_session", "external_userid": USER}}
    entered = to_incoming(SHOP, shop, enter)
    assert entered is not None and entered.kind == "event" and entered.text == "你好"
    assert to_incoming(SHOP, shop, {"msgtype": "text"}) is None


async def test_channels_check_reports_the_account(fake: FakeWeCom) -> None:
    ok, reason = await check(SHOP, wecom_config(fake.url))
    assert ok, reason
    assert "secret" not in reason.lower() or "kf-app-secret" not in reason
    bad = wecom_config(fake.url).model_copy(update={"secret": "wrong", "open_kfid": "wkOther"})
    ok, reason = await check(SHOP, bad)
    assert not ok and "40001" in reason and "wrong" not in reason
    other = wecom_config(fake.url).model_copy(update={"open_kfid": "wkOther"})
    ok, reason = await check(SHOP, other)
    assert not ok and "wkOther" in reason
