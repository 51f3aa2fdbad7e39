"""The Telegram channel through python-telegram-bot's real client and a fake Bot API server.

The chatbook side runs as a real aiohttp server (TestServer on 127.0.0.1) with the channel
registered; Telegram's side is ``FakeTelegram``, which records every Bot API call. Updates are
posted as Telegram would post them (JSON, secret header). Handling happens in background tasks,
so tests wait (bounded) for the background work or for the calls they expect, never fixed sleeps.
Tests that book use the ``services`` fixture and so run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.bootstrap import Services
from channels.base import ChannelContext, DeliveryError
from channels.telegram import (
    SECRET_HEADER,
    ChatPacer,
    Limits,
    TelegramSender,
    check,
    mask_token,
    redact,
    register,
    render,
    sender_of,
    webhook_secret,
)
from core.clock import FixedClock
from core.config import AppConfig, TelegramConfig
from core.i18n import texts
from core.messages import Button, IncomingMessage, OutgoingMessage
from core.models import BookingStatus
from tests.channels.fake_telegram import FakeTelegram, callback_update, text_update
from tests.helpers import at
from tests.support.steps import answer_vaccinated

TOKEN = "7012345678:AAHk3Zfake-TOKEN_for_chatbook_tests0"
SECRET = "pawspa-webhook-secret"
PUBLIC_URL = "https://chat.example.com"
CHAT = 5550001
SUN = date(2026, 11, 22)  # "tomorrow" for the fixed clock (Saturday 2026-11-21, 09:00 Shanghai)
FAST = Limits(chat_per_second=0)  # transcripts post turns faster than a person types: no per-chat pace
MAX_BODY = 1024 * 1024


def say(key: str, **values: Any) -> str:
    return texts("zh").t(key, **values)


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns about int time periods when it builds RetryAfter; opt in to the future behaviour.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def with_telegram(
    config: AppConfig,
    api_base_url: str,
    *,
    mode: Literal["webhook", "polling"] = "webhook",
    secret: str | None = SECRET,
    public_url: str | None = PUBLIC_URL,
    token: str = TOKEN,
) -> AppConfig:
    """The demo config with a Telegram bot for pawspa pointed at the fake."""
    shop = config.shops["pawspa"]
    telegram = TelegramConfig(token=token, mode=mode, secret_token=secret, api_base_url=api_base_url)
    shops = {
        **config.shops,
        "pawspa": shop.model_copy(update={"channels": shop.channels.model_copy(update={"telegram": telegram})}),
    }
    server = config.server.model_copy(update={"public_url": public_url})
    return config.model_copy(update={"shops": shops, "server": server})


@dataclass
class RecordingEngine:
    """Stands in for the engine where only "did anything reach it" matters."""

    seen: list[IncomingMessage] = field(default_factory=list)

    async def handle(self, msg: IncomingMessage, *, replay: bool = True) -> list[OutgoingMessage]:
        self.seen.append(msg)
        return [OutgoingMessage(f"got {msg.text or msg.payload}")]


@dataclass
class Chatbook:
    """The chatbook server under test, with the Telegram channel registered."""

    server: TestServer
    session: aiohttp.ClientSession
    ctx: ChannelContext
    app: web.Application

    async def post(
        self, body: Any, *, shop: str = "pawspa", secret: str | None = SECRET, content_type: str = "application/json"
    ) -> int:
        headers = {"Content-Type": content_type}
        if secret is not None:
            headers[SECRET_HEADER] = secret
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        data = io.BytesIO(raw)  # aiohttp warns about big raw bytes bodies
        async with self.session.post(self.server.make_url(f"/telegram/{shop}"), data=data, headers=headers) as resp:
            await resp.read()
            return resp.status

    async def idle(self, within: float = 10.0) -> None:
        """Wait until every update handed to a background task is handled (bounded)."""
        deadline = asyncio.get_running_loop().time() + within
        while self.ctx.tasks:
            assert asyncio.get_running_loop().time() < deadline, "background handling did not finish"
            await asyncio.sleep(0.01)


@asynccontextmanager
async def chatbook(
    config: AppConfig, engine: Any, clock: Any, *, limits: Limits = FAST, push: Any = None
) -> AsyncIterator[Chatbook]:
    app = web.Application(client_max_size=MAX_BODY)
    ctx = ChannelContext(config=config, engine=engine, clock=clock)
    register(app, ctx, limits=limits, push=push)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Chatbook(server, session, ctx, app)
    finally:
        await server.close()


class TelegramUser:
    """One customer in a private chat: types text, taps buttons of the bot's messages."""

    def __init__(self, app: Chatbook, fake: FakeTelegram, chat_id: int = CHAT) -> None:
        self.app, self.fake, self.chat_id = app, fake, chat_id
        self.update_ids = iter(range(900_001, 1_000_000))
        self.last: list[dict[str, Any]] = []  # the bot's messages of the last turn
        self.presses: list[int] = []  # message ids of the messages whose buttons were tapped

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self.deliver(text_update(next(self.update_ids), self.chat_id, text))

    async def press(self, label_part: str) -> list[dict[str, Any]]:
        message, data = self.button(label_part)
        self.presses.append(message["message_id"])
        return await self.deliver(callback_update(next(self.update_ids), self.chat_id, message, data))

    async def deliver(self, update: dict[str, Any], *, times: int = 1) -> list[dict[str, Any]]:
        before = len(self.fake.sent_to(self.chat_id))
        for _ in range(times):
            assert await self.app.post(update) == 200
        await self.app.idle()
        self.last = [c.params["result"] for c in self.fake.sent_to(self.chat_id)[before:]]
        return self.last

    def button(self, label_part: str) -> tuple[dict[str, Any], str]:
        for message in reversed(self.last):
            for row in message.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if label_part in button["text"] and "callback_data" in button:
                        return message, button["callback_data"]
        raise AssertionError(f"no button with {label_part!r} in {self.labels}")

    @property
    def labels(self) -> list[str]:
        return [
            b["text"] for m in self.last for row in m.get("reply_markup", {}).get("inline_keyboard", []) for b in row
        ]

    @property
    def text(self) -> str:
        return "\n".join(m.get("text") or m.get("caption", "") for m in self.last)


async def walk_to_summary(user: TelegramUser, *, hello: bool = True) -> None:
    """New customer, new small dog, tomorrow 15:00: up to the summary with its confirm button."""
    if hello:
        await user.say("你好")
    assert say("greeting.new", shop="爪爪宠物SPA") in user.text
    await user.press(say("btn.book"))
    assert user.text == say("ask.service")
    await user.press("狗狗洗澡")
    assert user.text == say("ask.pet_name")
    await user.say("豆豆")
    assert user.text == say("ask.size", pet="豆豆")
    await user.press(say("btn.size_small"))
    await answer_vaccinated(user, texts("zh"), "豆豆")
    await user.press("明天")
    await user.press(say("btn.afternoon"))
    await user.press("15:00")
    assert user.text.startswith(say("summary.title"))


# ----------------------------------------------------------------------------- start-up


async def test_startup_makes_one_getme_and_sets_the_webhook(fake: FakeTelegram, demo_config: AppConfig) -> None:
    config = with_telegram(demo_config, fake.url)
    async with chatbook(config, RecordingEngine(), FixedClock()) as app:
        await sender_of(app.app).send("pawspa", str(CHAT), OutgoingMessage("hello"))
        assert [c.method for c in fake.calls] == ["getMe", "setWebhook", "sendMessage"]
        [hook] = fake.of("setWebhook")
        assert hook.params["url"] == f"{PUBLIC_URL}/telegram/pawspa"
        assert hook.params["secret_token"] == SECRET
        assert hook.params["allowed_updates"] == ["message", "callback_query"]
    assert len(fake.of("getMe")) == 1
    assert not fake.of("deleteWebhook")  # other server processes may still serve the webhook


async def test_the_outbox_sender_and_the_webhook_share_one_bot(fake: FakeTelegram, demo_config: AppConfig) -> None:
    config = with_telegram(demo_config, fake.url, public_url=None)
    ctx = ChannelContext(config=config, engine=RecordingEngine(), clock=FixedClock())
    outbox_sender = TelegramSender(ctx)  # built by bootstrap before the app exists
    app = web.Application(client_max_size=MAX_BODY)
    register(app, ctx)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        assert sender_of(app).bots["pawspa"] is outbox_sender.bots["pawspa"]
        await outbox_sender.send("pawspa", str(CHAT), OutgoingMessage("reminder"))
        await sender_of(app).send("pawspa", str(CHAT), OutgoingMessage("reply"))
    finally:
        await server.close()
    await outbox_sender.send("pawspa", str(CHAT), OutgoingMessage("after the app closed"))  # reopens
    await outbox_sender.close()
    assert [c.method for c in fake.calls] == ["getMe", "sendMessage", "sendMessage", "getMe", "sendMessage"]
    with pytest.raises(ValueError):
        TelegramSender(ctx, limits=Limits(chat_burst=10))


async def test_no_public_url_no_setwebhook(fake: FakeTelegram, demo_config: AppConfig) -> None:
    config = with_telegram(demo_config, fake.url, public_url=None)
    async with chatbook(config, RecordingEngine(), FixedClock()):
        assert [c.method for c in fake.calls] == ["getMe"]


async def test_without_a_configured_secret_one_is_derived_and_required(
    fake: FakeTelegram, demo_config: AppConfig
) -> None:
    config = with_telegram(demo_config, fake.url, secret=None)
    engine = RecordingEngine()
    async with chatbook(config, engine, FixedClock()) as app:
        telegram = config.shops["pawspa"].channels.telegram
        assert telegram is not None
        derived = webhook_secret("pawspa", telegram)
        assert fake.of("setWebhook")[0].params["secret_token"] == derived
        assert TOKEN not in derived and len(derived) == 64
        assert await app.post(text_update(1, CHAT, "hi"), secret=None) == 403
        assert await app.post(text_update(2, CHAT, "hi"), secret=derived) == 200
        await app.idle()
    assert [m.message_id for m in engine.seen] == ["tg:2"]


# ----------------------------------------------------------------------------- booking transcript


async def test_booking_transcript_through_updates_and_callbacks(
    services: Services, fake: FakeTelegram, demo_config: AppConfig
) -> None:
    config = with_telegram(demo_config, fake.url)
    async with chatbook(config, services.engine, services.clock) as app:
        user = TelegramUser(app, fake)
        await walk_to_summary(user)
        await user.press(say("btn.confirm"))
        assert not user.labels or say("btn.confirm") not in user.labels

    customer = await services.customers.identify("pawspa", "telegram", str(CHAT))
    assert customer.language == "zh" and customer.display_name == "王女士"
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert booking.status == BookingStatus.CONFIRMED
    assert booking.start == at(SUN, "15:00")
    assert booking.service_id == "dog_bath_small"
    assert booking.code in user.text

    # every tap answered, and every tapped keyboard edited away
    answered = [c.params["callback_query_id"] for c in fake.of("answerCallbackQuery")]
    assert len(answered) == len(user.presses) == len(set(answered))
    edits = fake.of("editMessageReplyMarkup")
    assert [c.params["message_id"] for c in edits] == user.presses
    assert all("reply_markup" not in c.params and c.params["chat_id"] == CHAT for c in edits)
    assert all("reply_markup" not in fake.messages[m] for m in user.presses)
    # buttons were inline keyboards, 2 a row, with the engine's payloads as callback data
    for call in fake.of("sendMessage"):
        rows = (call.params.get("reply_markup") or {}).get("inline_keyboard", [])
        assert all(1 <= len(row) <= 2 for row in rows)
        assert all(len(b["callback_data"].encode()) <= 64 for row in rows for b in row if "callback_data" in b)


async def test_old_button_gets_the_polite_answer(
    services: Services, fake: FakeTelegram, demo_config: AppConfig
) -> None:
    config = with_telegram(demo_config, fake.url)
    async with chatbook(config, services.engine, services.clock) as app:
        user = TelegramUser(app, fake)
        await user.say("你好")
        await user.press(say("btn.book"))
        services_keyboard = copy.deepcopy(user.last)  # as a client that missed the edit still shows it
        await user.press("狗狗洗澡")
        assert user.text == say("ask.pet_name")
        user.last = services_keyboard
        await user.press("狗狗洗澡")
        assert say("misc.stale_button") in user.text
        assert len(fake.of("answerCallbackQuery")) == 3


# ----------------------------------------------------------------------------- redelivery


async def test_redelivered_updates_are_handled_once(
    services: Services, fake: FakeTelegram, demo_config: AppConfig
) -> None:
    config = with_telegram(demo_config, fake.url)
    async with chatbook(config, services.engine, services.clock) as app:
        user = TelegramUser(app, fake)
        first = await user.deliver(text_update(1, CHAT, "你好"), times=2)
        assert len(first) == 1 and len(fake.of("sendMessage")) == 1
        await walk_to_summary(user, hello=False)
        message, data = user.button(say("btn.confirm"))
        confirm = callback_update(77, CHAT, message, data)
        replies = await user.deliver(confirm, times=3)
        assert len(replies) == 1
        assert len([c for c in fake.of("answerCallbackQuery") if c.params["callback_query_id"] == "cq77"]) == 1
        again = await user.deliver(confirm)  # later still
        assert again == []

    customer = await services.customers.identify("pawspa", "telegram", str(CHAT))
    bookings = await services.bookings.upcoming("pawspa", customer.id)
    assert len(bookings) == 1


# ----------------------------------------------------------------------------- bad input


async def test_wrong_or_missing_secret_is_403_and_nothing_reaches_the_engine(
    fake: FakeTelegram, demo_config: AppConfig
) -> None:
    engine = RecordingEngine()
    async with chatbook(with_telegram(demo_config, fake.url), engine, FixedClock()) as app:
        assert await app.post(text_update(1, CHAT, "hi"), secret="wrong") == 403
        assert await app.post(text_update(2, CHAT, "hi"), secret=None) == 403
        assert await app.post(text_update(3, CHAT, "hi"), secret=SECRET + "x") == 403
        await app.idle()
    assert engine.seen == []
    assert not fake.of("sendMessage")


async def test_an_overloaded_process_answers_503_so_telegram_keeps_the_update(
    fake: FakeTelegram, demo_config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import channels.telegram

    monkeypatch.setattr(channels.telegram, "MAX_BACKLOG", 0)  # as if 256 updates were still waiting
    engine = RecordingEngine()
    async with chatbook(with_telegram(demo_config, fake.url), engine, FixedClock()) as app:
        assert await app.post(text_update(1, CHAT, "hi"), secret=SECRET) == 503  # Telegram retries it later
        await app.idle()
    assert engine.seen == []


async def test_bad_bodies_are_400(fake: FakeTelegram, demo_config: AppConfig) -> None:
    engine = RecordingEngine()
    async with chatbook(with_telegram(demo_config, fake.url), engine, FixedClock()) as app:
        assert await app.post(b'{"update_id": 1, "message": ') == 400  # malformed JSON
        assert await app.post(b"\xff\xfe") == 400  # not UTF-8
        assert await app.post([1, 2, 3]) == 400  # JSON, but not an object
        assert await app.post({"message": {}}) == 400  # no update_id
        assert await app.post({"update_id": "7"}) == 400
        assert await app.post({"update_id": 5, "message": {"chat": "x"}}) == 400  # not an Update
        assert await app.post(text_update(1, CHAT, "hi"), content_type="text/plain") == 400
        assert await app.post(text_update(2, CHAT, "hi"), content_type="application/x-www-form-urlencoded") == 400
        await app.idle()
    assert engine.seen == []


async def test_unknown_shop_is_404(fake: FakeTelegram, demo_config: AppConfig) -> None:
    async with chatbook(with_telegram(demo_config, fake.url), RecordingEngine(), FixedClock()) as app:
        assert await app.post(text_update(1, CHAT, "hi"), shop="no-such-shop") == 404
        assert await app.post(text_update(1, CHAT, "hi"), shop="clearsight") == 404  # a shop without Telegram


async def test_body_over_one_mebibyte_is_413(fake: FakeTelegram, demo_config: AppConfig) -> None:
    engine = RecordingEngine()
    async with chatbook(with_telegram(demo_config, fake.url), engine, FixedClock()) as app:
        big = text_update(1, CHAT, "x" * MAX_BODY)
        assert await app.post(big) == 413
    assert engine.seen == []


async def test_updates_that_are_not_for_the_engine_are_acknowledged(fake: FakeTelegram, demo_config: AppConfig) -> None:
    engine = RecordingEngine()
    async with chatbook(with_telegram(demo_config, fake.url), engine, FixedClock()) as app:
        group = text_update(1, -100123, "hi")
        group["message"]["chat"] = {"id": -100123, "type": "supergroup", "title": "fans"}
        assert await app.post(group) == 200
        assert await app.post({"update_id": 2, "edited_message": text_update(2, CHAT, "x")["message"]}) == 200
        await app.idle()
    assert engine.seen == []


# ----------------------------------------------------------------------------- inbound mapping


async def test_updates_become_incoming_messages(fake: FakeTelegram, demo_config: AppConfig) -> None:
    engine = RecordingEngine()
    clock = FixedClock()
    async with chatbook(with_telegram(demo_config, fake.url), engine, clock) as app:
        user = TelegramUser(app, fake)
        await user.deliver(text_update(10, CHAT, "hello", first_name="Alice", language_code="en"))
        photo = text_update(11, CHAT, "")
        del photo["message"]["text"]
        photo["message"].update(
            photo=[{"file_id": "f", "file_unique_id": "u", "width": 1, "height": 1}], caption="my dog"
        )
        await user.deliver(photo)
    first, second = engine.seen
    assert (first.message_id, first.user_id, first.text, first.kind) == ("tg:10", str(CHAT), "hello", "text")
    assert (first.language_hint, first.display_name, first.channel) == ("en", "Alice", "telegram")
    assert first.received_at == clock.now()
    assert first.raw["update_id"] == 10
    assert (second.kind, second.text) == ("image", "my dog")


async def test_replies_can_be_pushed_elsewhere(fake: FakeTelegram, demo_config: AppConfig) -> None:
    pushed: list[tuple[str, str, list[str]]] = []

    async def push(shop_id: str, chat_id: str, replies: list[OutgoingMessage]) -> None:
        pushed.append((shop_id, chat_id, [r.text for r in replies]))

    async with chatbook(with_telegram(demo_config, fake.url), RecordingEngine(), FixedClock(), push=push) as app:
        assert await app.post(text_update(1, CHAT, "hi")) == 200
        await app.idle()
    assert pushed == [("pawspa", str(CHAT), ["got hi"])]
    assert not fake.of("sendMessage")


async def test_callback_query_carries_payload_and_label(fake: FakeTelegram, demo_config: AppConfig) -> None:
    engine = RecordingEngine()
    async with chatbook(with_telegram(demo_config, fake.url), engine, FixedClock()) as app:
        days = OutgoingMessage("哪天？", (Button("周日 11/22", "d:2026-11-22"), Button("周一 11/23", "d:2026-11-23")))
        await sender_of(app.app).send("pawspa", str(CHAT), days)
        user = TelegramUser(app, fake)
        user.last = [fake.sent_to(CHAT)[-1].params["result"]]
        await user.press("周一")
    [pressed] = engine.seen
    assert (pressed.payload, pressed.text, pressed.kind) == ("d:2026-11-23", "周一 11/23", "button")
    assert len(fake.of("answerCallbackQuery")) == 1 and len(fake.of("editMessageReplyMarkup")) == 1


# ----------------------------------------------------------------------------- outbound


async def test_429_is_waited_out_and_delivered(fake: FakeTelegram, demo_config: AppConfig) -> None:
    config = with_telegram(demo_config, fake.url)
    ctx = ChannelContext(config=config, engine=RecordingEngine(), clock=FixedClock())
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    async with TelegramSender(ctx) as sender:
        message_id = await sender.send("pawspa", str(CHAT), OutgoingMessage("您的预约已确认"))
    calls = fake.of("sendMessage")
    assert len(calls) == 2  # refused once, sent after retry_after
    assert message_id == str(calls[-1].params["result"]["message_id"])


async def test_long_retry_after_goes_back_to_the_caller(fake: FakeTelegram, demo_config: AppConfig) -> None:
    ctx = ChannelContext(config=with_telegram(demo_config, fake.url), engine=RecordingEngine(), clock=FixedClock())
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 120", retry_after=120)
    async with TelegramSender(ctx) as sender:
        with pytest.raises(DeliveryError) as caught:
            await sender.send("pawspa", str(CHAT), OutgoingMessage("hello"))
    assert caught.value.retry_after == 120 and not caught.value.permanent
    assert len(fake.of("sendMessage")) == 1  # no in-process wait of two minutes


async def test_blocked_bot_and_unknown_chat_are_permanent(fake: FakeTelegram, demo_config: AppConfig) -> None:
    ctx = ChannelContext(config=with_telegram(demo_config, fake.url), engine=RecordingEngine(), clock=FixedClock())
    fake.block(CHAT)
    fake.forget_chat(CHAT + 1)
    async with TelegramSender(ctx) as sender:
        with pytest.raises(DeliveryError) as blocked:
            await sender.send("pawspa", str(CHAT), OutgoingMessage("hello"))
        with pytest.raises(DeliveryError) as missing:
            await sender.send("pawspa", str(CHAT + 1), OutgoingMessage("hello"))
        with pytest.raises(DeliveryError) as no_bot:
            await sender.send("clearsight", str(CHAT), OutgoingMessage("hello"))
    assert blocked.value.permanent and "blocked" in blocked.value.reason
    assert missing.value.permanent and "chat not found" in missing.value.reason.lower()
    assert no_bot.value.permanent


async def test_network_errors_are_temporary(demo_config: AppConfig) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctx = ChannelContext(
        config=with_telegram(demo_config, f"http://127.0.0.1:{port}"), engine=RecordingEngine(), clock=FixedClock()
    )
    sender = TelegramSender(ctx)
    try:
        with pytest.raises(DeliveryError) as caught:
            await sender.send("pawspa", str(CHAT), OutgoingMessage("hello"))
    finally:
        await sender.close()
    assert not caught.value.permanent
    assert TOKEN not in caught.value.reason


async def test_photo_with_caption_and_link_button(fake: FakeTelegram, demo_config: AppConfig) -> None:
    ctx = ChannelContext(config=with_telegram(demo_config, fake.url), engine=RecordingEngine(), clock=FixedClock())
    message = OutgoingMessage(
        "豆豆洗完澡啦！", image_url="https://pawspa.example/p/1.jpg", link=("护理小贴士", "https://pawspa.example/care")
    )
    async with TelegramSender(ctx) as sender:
        await sender.send("pawspa", str(CHAT), message)
        await sender.send("pawspa", str(CHAT), OutgoingMessage("长" * 5000))
    [photo] = fake.of("sendPhoto")
    assert photo.params["photo"] == "https://pawspa.example/p/1.jpg"
    assert photo.params["caption"] == "豆豆洗完澡啦！"
    assert photo.params["reply_markup"] == {
        "inline_keyboard": [[{"text": "护理小贴士", "url": "https://pawspa.example/care"}]]
    }
    long_parts = [c.params["text"] for c in fake.of("sendMessage")]
    assert [len(p) for p in long_parts] == [4096, 904]


def test_render_keyboard_rows_payload_limit_and_links() -> None:
    chinese_64 = "d:" + "日" * 20 + "xx"  # 2 + 60 + 2 = 64 bytes
    message = OutgoingMessage(
        "选一个",
        (*(Button(f"b{i}", f"p{i}") for i in range(3)), Button("长", chinese_64), Button("空", "")),
        link=("地图", "geo:31.2,121.4"),
    )
    text, markup = render(message)
    assert markup is not None
    rows = [[(b.text, b.callback_data) for b in row] for row in markup.inline_keyboard]
    assert rows == [[("b0", "p0"), ("b1", "p1")], [("b2", "p2"), ("长", chinese_64)]]
    assert text == "选一个\n地图: geo:31.2,121.4\n5. 空"  # no URL button for geo:, empty payload numbered
    with pytest.raises(ValueError):
        Button("太长", chinese_64 + "x")
    assert render(OutgoingMessage("plain")) == ("plain", None)


def test_chat_pacer_allows_a_burst_then_one_per_second() -> None:
    now = [100.0]
    pacer = ChatPacer(rate=1.0, burst=3, now=lambda: now[0])
    assert [pacer.reserve(1) for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]
    assert pacer.reserve(2) == 0.0  # other chats are not held up
    now[0] += 10
    assert pacer.reserve(1) == 0.0


# ----------------------------------------------------------------------------- polling


async def test_polling_mode_gets_updates_and_answers(
    services: Services, fake: FakeTelegram, demo_config: AppConfig
) -> None:
    config = with_telegram(demo_config, fake.url, mode="polling", public_url=None)
    async with chatbook(config, services.engine, services.clock):
        fake.push_update(text_update(501, CHAT, "你好"))
        await fake.wait_for(lambda: fake.sent_to(CHAT))
        [greeting] = fake.sent_to(CHAT)
        assert say("greeting.new", shop="爪爪宠物SPA") in greeting.params["text"]
        message = greeting.params["result"]
        button = message["reply_markup"]["inline_keyboard"][0][0]
        fake.push_update(callback_update(502, CHAT, message, button["callback_data"]))
        await fake.wait_for(lambda: len(fake.sent_to(CHAT)) == 2 and fake.of("editMessageReplyMarkup"))
        assert fake.sent_to(CHAT)[1].params["text"] == say("ask.service")
        assert fake.of("answerCallbackQuery")[0].params["callback_query_id"] == "cq502"
    assert len(fake.of("getMe")) == 1
    assert fake.of("deleteWebhook") and not fake.of("setWebhook")
    polls = fake.of("getUpdates")
    assert polls[0].params["allowed_updates"] == ["message", "callback_query"]
    assert polls[-1].params["offset"] == 503  # everything fetched is confirmed on shutdown


# ----------------------------------------------------------------------------- check and secrets


async def test_check_reports_without_showing_the_token(fake: FakeTelegram, demo_config: AppConfig) -> None:
    good = with_telegram(demo_config, fake.url).shops["pawspa"].channels.telegram
    assert good is not None
    ok, reason = await check("pawspa", good)
    assert ok and "@pawspa_bot" in reason and TOKEN not in reason and mask_token(TOKEN) in reason

    wrong = good.model_copy(update={"token": "7012345678:AAHwrong-token-wrong-token-wrong-00"})
    ok, reason = await check("pawspa", wrong)
    assert not ok and "rejected" in reason and wrong.token not in reason

    assert await check("clearsight", None) == (False, "not configured (channels.telegram)")


async def test_tokens_never_reach_the_logs(
    fake: FakeTelegram, demo_config: AppConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with chatbook(with_telegram(demo_config, fake.url), RecordingEngine(), FixedClock()) as app:
        await app.post(text_update(1, CHAT, "hi"))
        await app.idle()
        fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 300", retry_after=300)
        with pytest.raises(DeliveryError):
            await sender_of(app.app).send("pawspa", str(CHAT), OutgoingMessage("x"))
    secret_part = TOKEN.split(":")[1]
    assert "getMe" in caplog.text  # PTB and httpx did log their requests ...
    assert secret_part not in caplog.text  # ... with the token masked
    assert SECRET not in caplog.text  # PTB logs setWebhook's parameters at DEBUG
    assert redact(f"url /bot{TOKEN}/getMe") == "url /bot7012345678:***/getMe"
