"""The WeChat Official Account channel through its real protocol, on SQLite and PostgreSQL.

Pushes are XML signed with the account token (plain mode) or encrypted and signed with wechatpy's
WeChatCrypto (AES mode), sent to ``/wechat/{shop}`` on a real aiohttp server; passive replies are
decrypted the same way. Outbound messages go through wechatpy's real client to a local fake
WeChat API (tests/channels/fake_wechat.py). The clock is fixed: timestamps come from it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.bootstrap import Services
from channels.base import ChannelContext, DeliveryError, MessageHandler
from channels.wechat import (
    WeChatSender,
    WeChatWebhook,
    check,
    client_for,
    parse_xml,
    passive_text,
    register,
    signature,
)
from core.config import AppConfig, WeChatConfig
from core.messages import Button, IncomingMessage, OutgoingMessage
from core.models import TranscriptEntry
from tests.channels.fake_wechat import (
    APP_SECRET,
    FakeWeChatApi,
    Push,
    WeChatUser,
    message_xml,
    wechat_config,
)

SHOP = "clearsight"
MAX_BODY = 1024 * 1024
BOOKED = "预约成功"


async def eventually(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Bounded polling: wait until ``condition()`` holds (fails after ``within`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@dataclass
class GatedEngine:
    """The real engine behind a gate the test opens; records every call."""

    inner: MessageHandler
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[IncomingMessage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle(self, msg: IncomingMessage, *, replay: bool = True) -> list[OutgoingMessage]:
        self.calls.append(msg)
        await self.gate.wait()
        return await self.inner.handle(msg, replay=replay)


@dataclass
class Harness:
    services: Services
    config: AppConfig
    ctx: ChannelContext
    client: TestClient[Any, Any]
    hook: WeChatWebhook
    engine: GatedEngine
    api: FakeWeChatApi

    def user(self, *, aes: bool = False, openid: str = "oUser_0001", shop: str = SHOP) -> WeChatUser:
        return WeChatUser(self.client, shop, self.services.clock, aes, openid=openid)


def with_wechat(config: AppConfig, shop_id: str, wechat: WeChatConfig) -> AppConfig:
    shop = config.shops[shop_id]
    channels = shop.channels.model_copy(update={"wechat": wechat})
    return config.model_copy(
        update={"shops": {**config.shops, shop_id: shop.model_copy(update={"channels": channels})}}
    )


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeWeChatApi]:
    api = await FakeWeChatApi().start()
    yield api
    await api.stop()


async def start(services: Services, demo_config: AppConfig, api: FakeWeChatApi, *, aes: bool) -> Harness:
    config = with_wechat(demo_config, SHOP, wechat_config(api.url, aes=aes))
    ctx = ChannelContext(config=config, engine=services.engine, clock=services.clock)
    engine = GatedEngine(services.engine)
    app = web.Application(client_max_size=MAX_BODY)
    # A generous passive deadline: these tests assert what is answered, never how fast.
    hook = register(app, ctx, engine=engine, passive_deadline=60.0)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return Harness(services, config, ctx, client, hook, engine, api)


@pytest.fixture
async def plain(services: Services, demo_config: AppConfig, fake_api: FakeWeChatApi) -> AsyncIterator[Harness]:
    h = await start(services, demo_config, fake_api, aes=False)
    yield h
    await asyncio.gather(*h.ctx.tasks, return_exceptions=True)
    await h.client.close()


@pytest.fixture(params=["plain", "aes"])
async def harness(
    request: pytest.FixtureRequest, services: Services, demo_config: AppConfig, fake_api: FakeWeChatApi
) -> AsyncIterator[Harness]:
    h = await start(services, demo_config, fake_api, aes=request.param == "aes")
    yield h
    await asyncio.gather(*h.ctx.tasks, return_exceptions=True)
    await h.client.close()


def is_aes(h: Harness) -> bool:
    wechat = h.config.shops[SHOP].channels.wechat
    return wechat is not None and wechat.encoding_aes_key is not None


async def inbound_count(services: Services) -> int:
    async with services.db.reading() as s:
        return int(
            await s.scalar(select(func.count()).select_from(TranscriptEntry).where(TranscriptEntry.direction == "in"))
            or 0
        )


# ----------------------------------------------------------------------------- server check


async def test_get_answers_the_signature_check(plain: Harness) -> None:
    user = plain.user()
    push = user.sign(b"")
    resp = await plain.client.get(user.path, params={**push.params, "echostr": "4711abc"})
    assert resp.status == 200 and await resp.text() == "4711abc"
    assert resp.content_type == "text/plain"

    bad = {**push.params, "signature": "0" * 40, "echostr": "4711abc"}
    assert (await plain.client.get(user.path, params=bad)).status == 403
    stale = user.sign(b"", timestamp=user.now() - 301).params
    assert (await plain.client.get(user.path, params={**stale, "echostr": "x"})).status == 403
    assert (await plain.client.get("/wechat/nosuchshop", params={**push.params, "echostr": "x"})).status == 404


# ----------------------------------------------------------------------------- a booking


async def test_a_booking_by_typed_numbers_lands_in_the_schedule(harness: Harness) -> None:
    user = harness.user(aes=is_aes(harness))
    greeting = await user.say("你好")
    assert "1. 我要预约" in greeting
    services = await user.say("1")
    assert "请问想预约哪项服务" in services and "1. 成人验光检查" in services
    for _ in range(3):  # the service, the day, the part of the day
        await user.say("1")
    summary = await user.say("1")  # the time
    assert "请确认预约信息" in summary and "1. 确认预约" in summary, summary
    confirmation = await user.say("1")
    assert BOOKED in confirmation, confirmation

    customer = await harness.services.customers.identify(SHOP, "wechat", user.openid)
    upcoming = await harness.services.bookings.upcoming(SHOP, customer.id)
    assert len(upcoming) == 1 and upcoming[0].code in confirmation
    assert harness.api.messages == []  # everything was answered passively
    assert len(harness.engine.calls) == 7


# ----------------------------------------------------------------------------- redelivery


async def test_redelivery_while_the_first_attempt_runs_is_processed_once(harness: Harness) -> None:
    user = harness.user(aes=is_aes(harness))
    xml = user.text_xml("你好", msg_id=9_100_000_001)
    harness.engine.gate.clear()
    first = asyncio.create_task(user.post(user.sign(xml)))
    retry = asyncio.create_task(user.post(user.sign(xml)))  # WeChat's retry: new nonce, same MsgId
    await eventually(lambda: sum(d.waiters for d in harness.hook.deliveries.values()) == 2)
    harness.engine.gate.set()
    (status1, body1), (status2, body2) = await asyncio.gather(first, retry)
    assert status1 == status2 == 200
    assert user.open_reply(body1) == user.open_reply(body2) != ""
    assert len(harness.engine.calls) == 1
    assert await inbound_count(harness.services) == 1

    late = await user.send_xml(xml)  # a late redelivery: the same reply, still one engine call
    assert late == user.open_reply(body1)
    assert len(harness.engine.calls) == 1

    # Another server process (its own memory) gets the retry: the engine's claim answers it.
    other_app = web.Application(client_max_size=MAX_BODY)
    other_engine = GatedEngine(harness.services.engine)
    register(other_app, harness.ctx, engine=other_engine, passive_deadline=60.0)
    async with TestClient(TestServer(other_app, host="127.0.0.1")) as other_client:
        other = WeChatUser(other_client, SHOP, harness.services.clock, is_aes(harness), openid=user.openid)
        assert await other.send_xml(xml) == late
    assert len(other_engine.calls) == 1  # reached the engine, which did not process it again
    assert await inbound_count(harness.services) == 1
    assert harness.api.messages == []


# ----------------------------------------------------------------------------- bad requests


async def test_requests_that_are_not_from_wechat_are_refused(harness: Harness) -> None:
    aes = is_aes(harness)
    user = harness.user(aes=aes)
    client = harness.client

    async def status(push: Push, path: str | None = None) -> int:
        resp = await client.post(path or user.path, params=push.params, data=io.BytesIO(push.body))
        return resp.status

    # bad signature
    push = user.sign(user.text_xml("你好"))
    assert await status(Push({**push.params, "signature": "f" * 40}, push.body)) == 403
    assert await status(Push({k: v for k, v in push.params.items() if k != "signature"}, push.body)) == 403
    if aes:  # a body that does not match msg_signature; an unencrypted push to a safe-mode account
        other = user.sign(user.text_xml("something else"))
        assert await status(Push(push.params, other.body)) == 403
        unsealed = WeChatUser(client, SHOP, user.clock, False).sign(user.text_xml("你好"))
        assert await status(unsealed) == 403
    else:  # an encrypted push to an account without an AES key
        sealed = WeChatUser(client, SHOP, user.clock, True).sign(user.text_xml("你好"))
        assert await status(sealed) == 400
    # timestamps more than 300 s away (either side)
    assert await status(user.sign(user.text_xml("你好"), timestamp=user.now() - 301)) == 403
    assert await status(user.sign(user.text_xml("你好"), timestamp=user.now() + 301)) == 403
    # replayed (timestamp, nonce) with another body
    original = user.sign(user.text_xml("你好"), nonce="replayed-nonce")
    assert await status(original) == 200
    forged = user.sign(
        user.text_xml("取消我的预约"), timestamp=int(original.params["timestamp"]), nonce="replayed-nonce"
    )
    assert await status(forged) == 403
    assert await status(original) == 200  # the very same request again is a redelivery: answered, not reprocessed
    # unknown shop, and a shop without WeChat
    assert await status(user.sign(user.text_xml("你好")), "/wechat/nosuchshop") == 404
    assert await status(user.sign(user.text_xml("你好")), "/wechat/pawspa") == 404
    # too big
    huge = user.sign(b"<xml>" + b"x" * (MAX_BODY + 1) + b"</xml>")
    assert await status(huge) == 413

    assert len(harness.engine.calls) == 1  # only the one genuine push reached the engine
    assert await inbound_count(harness.services) == 1


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&lol3;</Content><MsgId>1</MsgId></xml>"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""


@pytest.mark.parametrize(
    "body",
    [
        "<xml><ToUserName>gh</ToUserName>",  # cut off
        "not xml at all",
        "<html><body/></html>",  # not WeChat's root
        "<xml><ToUserName>gh</ToUserName></xml>",  # fields missing
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        "<!DOCTYPE xml><xml/>",
    ],
    ids=["truncated", "text", "html", "incomplete", "billion-laughs", "xxe", "doctype"],
)
async def test_malformed_or_dangerous_xml_is_a_bad_request(harness: Harness, body: str) -> None:
    user = harness.user(aes=is_aes(harness))
    status, _ = await user.post(user.sign(body))
    assert status == 400
    assert harness.engine.calls == []


def test_the_xml_parser_refuses_entities_and_keeps_flat_fields() -> None:
    fields = parse_xml(message_xml("o1", 5, "text", Content="a&b <c>", MsgId=42).encode())
    assert fields == {"ToUserName": "gh_0123456789ab", "FromUserName": "o1", "CreateTime": "5", "MsgType": "text"} | {
        "Content": "a&b <c>",
        "MsgId": "42",
    }
    nested = parse_xml("<xml><MsgType>event</MsgType><ScanCodeInfo><ScanType>x</ScanType></ScanCodeInfo></xml>")
    assert nested == {"MsgType": "event", "ScanCodeInfo": ""}
    for dangerous in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        with pytest.raises(ValueError, match="DOCTYPE"):
            parse_xml(dangerous)


# ----------------------------------------------------------------------------- slow engine


async def test_a_slow_answer_says_success_and_arrives_through_the_customer_service_api(harness: Harness) -> None:
    user = harness.user(aes=is_aes(harness))
    harness.hook.passive_deadline = 0.05
    harness.engine.gate.clear()  # the engine is "slow" until the test opens the gate
    status, body = await user.post(user.sign(user.text_xml("你好")))
    assert (status, body) == (200, "success")
    harness.engine.gate.set()
    await eventually(lambda: len(harness.api.messages) == 1)
    menu = harness.api.messages[0]
    assert menu["touser"] == user.openid and menu["msgtype"] == "msgmenu"
    options = {o["content"]: o["id"] for o in menu["msgmenu"]["list"]}
    assert list(options) == ["我要预约", "我的预约", "转人工"]

    # The customer taps "我要预约": WeChat sends its text with bizmsgmenuid; it is the button's payload.
    harness.hook.passive_deadline = 60.0
    reply = await user.send_xml(user.text_xml("我要预约", menu_id=options["我要预约"]))
    assert "请问想预约哪项服务" in reply
    assert harness.engine.calls[-1].payload == "m:book" and harness.engine.calls[-1].kind == "button"
    assert len(harness.api.messages) == 1


# ----------------------------------------------------------------------------- sending


async def test_an_expired_token_is_refreshed_once_and_the_message_delivered(plain: Harness) -> None:
    sender = WeChatSender(plain.ctx)
    assert sender.channel == "wechat"
    wechat = plain.config.shops[SHOP].channels.wechat
    assert wechat is not None and client_for(wechat) is client_for(wechat)  # one token holder per app
    await sender.send(SHOP, "oUser_0001", OutgoingMessage("第一条"))
    assert plain.api.token_fetches == 1
    plain.api.expire_tokens()
    await sender.send(SHOP, "oUser_0001", OutgoingMessage("第二条", link=("地图", "https://example.com/map")))
    assert plain.api.token_fetches == 2
    assert plain.api.texts() == ["第一条", "第二条\n地图: https://example.com/map"]
    rejected = [c for c in plain.api.calls if c.answer.get("errcode") == 40001]
    assert len(rejected) == 1


async def test_send_errors_say_whether_retrying_helps(plain: Harness) -> None:
    sender = WeChatSender(plain.ctx)
    plain.api.fail_next(45015)
    with pytest.raises(DeliveryError) as closed:
        await sender.send(SHOP, "oUser_0001", OutgoingMessage("明天见"))
    assert closed.value.permanent and closed.value.reason == "window closed"
    plain.api.fail_next(45047)
    with pytest.raises(DeliveryError) as busy:
        await sender.send(SHOP, "oUser_0001", OutgoingMessage("明天见"))
    assert not busy.value.permanent
    with pytest.raises(DeliveryError) as unknown:
        await sender.send("pawspa", "oUser_0001", OutgoingMessage("明天见"))
    assert unknown.value.permanent
    assert plain.api.messages == []

    buttons = OutgoingMessage("确认吗？", buttons=(Button("确认", "ok"), Button("取消", "x")))
    await sender.send(SHOP, "oUser_0001", buttons)
    assert plain.api.texts() == ["确认吗？\n确认\n取消"]


async def test_outside_the_48_hour_window_a_template_message_is_sent(
    services: Services, demo_config: AppConfig, fake_api: FakeWeChatApi
) -> None:
    wechat = wechat_config(fake_api.url, aes=False).model_copy(
        update={"reminder_template_id": "TPL-REMIND", "template_fields": {"first": "title", "keyword1": "body"}}
    )
    ctx = ChannelContext(config=with_wechat(demo_config, SHOP, wechat), engine=services.engine, clock=services.clock)
    fake_api.fail_next(45015)  # the customer has not written for more than 48 hours
    reminder = OutgoingMessage(
        "明天见哦~\n成人验光检查 · 11月23日（周一）10:00", buttons=(Button("我会准时到", "rc:1"),)
    )
    provider_id = await WeChatSender(ctx).send(SHOP, "oUser_0001", reminder)
    [sent] = fake_api.templates
    assert sent["template_id"] == "TPL-REMIND" and sent["touser"] == "oUser_0001"
    assert sent["data"]["first"]["value"] == "明天见哦~"
    assert "成人验光检查" in sent["data"]["keyword1"]["value"]
    assert provider_id == "200001"
    assert fake_api.messages == []  # the customer service message itself was refused


async def test_check_reports_whether_a_token_can_be_fetched(plain: Harness, fake_api: FakeWeChatApi) -> None:
    ok, reason = await check(SHOP, wechat_config(fake_api.url, aes=False))
    assert ok, reason
    bad_secret = wechat_config(fake_api.url, aes=False).model_copy(update={"app_secret": "wrong-secret-xyz"})
    ok, reason = await check(SHOP, bad_secret)
    assert not ok and "40125" in reason and "app_secret" in reason
    assert "wrong-secret-xyz" not in reason and APP_SECRET not in reason
    unreachable = bad_secret.model_copy(update={"api_base_url": "http://127.0.0.1:9"})
    ok, reason = await check(SHOP, unreachable)
    assert not ok and "cannot reach" in reason and "wrong-secret-xyz" not in reason


# ----------------------------------------------------------------------------- events


async def test_subscribe_greets_with_the_menu_and_unsubscribe_is_only_acknowledged(harness: Harness) -> None:
    user = harness.user(aes=is_aes(harness), openid="oNewFollower")
    greeting = await user.send_xml(user.event_xml("subscribe"))
    assert "欢迎" in greeting and "1. 我要预约" in greeting
    assert harness.engine.calls[-1].kind == "event"
    assert harness.engine.calls[-1].message_id == f"wx:oNewFollower:{user.now()}"

    calls = len(harness.engine.calls)
    assert await user.send_xml(user.event_xml("unsubscribe", create_time=user.now() + 1)) == ""
    assert len(harness.engine.calls) == calls


async def test_an_image_is_not_text(plain: Harness) -> None:
    user = plain.user()
    xml = message_xml(user.openid, user.now(), "image", PicUrl="http://example.com/p.jpg", MediaId="m1", MsgId=77)
    assert await user.send_xml(xml)
    assert plain.engine.calls[-1].kind == "image" and plain.engine.calls[-1].text == ""


def test_several_replies_become_one_passive_text_with_the_last_buttons_numbered() -> None:
    replies = [
        OutgoingMessage("已取消", buttons=(Button("撤销", "undo"),)),
        OutgoingMessage("还需要什么？", buttons=(Button("预约", "m:book"), Button("人工", "m:human"))),
    ]
    assert passive_text(replies) == "已取消\n\n还需要什么？\n1. 预约\n2. 人工"
    assert signature("b", "a", "c") == signature("c", "b", "a")


async def test_an_answer_too_long_for_a_passive_reply_is_pushed(plain: Harness) -> None:
    long_text = "很长的回答。" * 200  # over 2048 bytes

    class Verbose:
        async def handle(self, msg: IncomingMessage, *, replay: bool = True) -> list[OutgoingMessage]:
            return [OutgoingMessage(long_text)]

    plain.hook.engine = Verbose()
    user = plain.user()
    assert await user.say("说说看") == ""  # "success"
    await eventually(lambda: len(plain.api.messages) == 1)
    assert plain.api.texts() == [long_text]
