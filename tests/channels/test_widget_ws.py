"""The web widget's WebSocket protocol against the real engine (no browser): booking by
pressing buttons, idempotent resends, resuming with the token, Origin and shop checks,
malformed and oversized frames, token expiry, outbound pushes, the demo page's CSP."""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.bootstrap import Services
from channels.base import ChannelContext, DeliveryError, History
from channels.web import MAX_FRAME_BYTES, WebSender, external_id_of, issue_token, register, shop_status
from core.clock import FixedClock
from core.config import AppConfig, ShopConfig, WebWidgetConfig
from core.i18n import texts
from core.messages import IncomingMessage, OutgoingMessage
from core.models import Conversation
from tests.conftest import NOW
from tests.support.steps import answer_vaccinated

pytestmark = pytest.mark.asyncio
WAIT = 15  # seconds: a bound on every receive, not a timing assertion
EN = texts("en")
CTX = web.AppKey("widget_ctx", ChannelContext)


def transcript_history(services: Services) -> History:
    """What the server hands the widget: the store's own history, wired as bot/bootstrap.py does."""
    return services.store.history


def widget_app(
    config: AppConfig, engine: Any, services: Services, *, history: History | None = None
) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[CTX] = ChannelContext(config=config, engine=engine, clock=services.clock, history=history)
    register(app, app[CTX])
    return app


def with_web(config: AppConfig, shop_id: str, web_config: WebWidgetConfig) -> AppConfig:
    shop = config.shops[shop_id]
    channels = shop.channels.model_copy(update={"web": web_config})
    return config.model_copy(
        update={"shops": {**config.shops, shop_id: shop.model_copy(update={"channels": channels})}}
    )


class Chat:
    """One widget socket speaking the protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.token = ""
        self.welcome: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.last: list[dict[str, Any]] = []
        self._ids = 0
        self._prefix = uuid.uuid4().hex[:12]  # client ids are unique per page, like the widget's

    async def recv(self) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=WAIT)
        assert msg.type == WSMsgType.TEXT, msg
        frame: dict[str, Any] = json.loads(msg.data)
        return frame

    async def hello(self, token: str | None = None, lang: str | None = "en") -> Chat:
        await self.ws.send_json({"type": "hello", "token": token, "lang": lang})
        welcome = await self.recv()
        assert welcome["type"] == "welcome"
        self.welcome = welcome
        self.token = welcome["token"]
        history = await self.recv()
        assert history["type"] == "history"
        self.history = history["messages"]
        self.last = self.history
        return self

    async def reply_to(self, client_id: str) -> list[dict[str, Any]]:
        while True:
            frame = await self.recv()
            if frame["type"] == "reply" and frame["in_reply_to"] == client_id:
                assert frame["received_at"].endswith("Z")
                self.last = frame["messages"]
                return self.last
            assert frame["type"] == "typing", frame

    def next_id(self) -> str:
        self._ids += 1
        return f"{self._prefix}-{self._ids}"

    async def say(self, text: str, client_id: str | None = None) -> list[dict[str, Any]]:
        client_id = client_id or self.next_id()
        await self.ws.send_json({"type": "message", "id": client_id, "text": text})
        return await self.reply_to(client_id)

    def button(self, label_part: str) -> dict[str, str]:
        buttons = self.last[-1].get("buttons", []) if self.last else []
        for b in buttons:
            if label_part in b["label"]:
                found: dict[str, str] = b
                return found
        raise AssertionError(f"no button with {label_part!r} in {[b['label'] for b in buttons]}")

    async def press(self, label_part: str, client_id: str | None = None) -> list[dict[str, Any]]:
        b = self.button(label_part)
        client_id = client_id or self.next_id()
        await self.ws.send_json({"type": "press", "id": client_id, "payload": b["payload"], "label": b["label"]})
        return await self.reply_to(client_id)

    @property
    def text(self) -> str:
        return "\n".join(m["text"] for m in self.last)


Connect = Callable[..., Awaitable[Chat]]


@pytest.fixture
async def client(services: Services) -> AsyncIterator[TestClient]:
    app = widget_app(services.config, services.engine, services, history=transcript_history(services))
    async with TestClient(TestServer(app)) as c:
        yield c


def same_origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("/").origin())}


@pytest.fixture
def connect(client: TestClient) -> Connect:
    async def open_chat(shop: str = "pawspa", token: str | None = None, lang: str | None = "en") -> Chat:
        ws = await client.ws_connect(f"/widget/{shop}/ws", headers=same_origin(client))
        return await Chat(ws).hello(token, lang)

    return open_chat


async def to_summary(chat: Chat) -> None:
    """From the greeting to the booking summary, by pressing buttons (and typing the pet's name)."""
    assert chat.history and chat.history[-1].get("intro")  # a new customer sees the greeting
    await chat.press(EN.t("btn.book"))
    assert chat.text == EN.t("ask.service")
    await chat.press("Dog bath")
    assert chat.text == EN.t("ask.pet_name")
    await chat.say("Max")
    await chat.press(EN.t("btn.size_small"))
    await answer_vaccinated(chat, EN, "Max")
    await chat.press("Tomorrow")
    await chat.press(EN.t("btn.afternoon"))
    await chat.press("15:00")
    assert chat.text.startswith(EN.t("summary.title"))


async def upcoming(services: Services, token: str) -> list[Any]:
    customer = await services.customers.identify("pawspa", "web", external_id_of(token))
    return await services.bookings.upcoming("pawspa", customer.id)


# ----------------------------------------------------------------------------- booking


async def test_booking_by_pressing_buttons_lands_a_booking(services: Services, connect: Connect) -> None:
    chat = await connect()
    await to_summary(chat)
    await chat.press(EN.t("btn.confirm"))
    [booking] = await upcoming(services, chat.token)
    assert booking.code in chat.text
    assert booking.service_id == "dog_bath_small"
    assert [b["label"] for b in chat.last[-1]["buttons"]] == [EN.t("btn.my_bookings"), EN.t("notices.offer")]
    assert all(m["from"] == "shop" and m["at"].endswith("Z") for m in chat.last)


async def test_the_same_client_id_twice_gives_one_reply_and_one_booking(services: Services, connect: Connect) -> None:
    chat = await connect()
    await to_summary(chat)
    confirm = chat.button(EN.t("btn.confirm"))
    frame = {"type": "press", "id": "confirm-1", **confirm}
    await chat.ws.send_json(frame)
    first = await chat.reply_to("confirm-1")
    await chat.ws.send_json(frame)  # a resend on the same socket
    assert await chat.reply_to("confirm-1") == first
    await chat.ws.close()

    again = await connect(token=chat.token)  # and after a reconnect
    await again.ws.send_json(frame)
    assert await again.reply_to("confirm-1") == first
    assert len(await upcoming(services, chat.token)) == 1


async def test_reconnecting_with_the_token_resumes_the_conversation(services: Services, connect: Connect) -> None:
    chat = await connect()
    await chat.press(EN.t("btn.book"))
    await chat.press("Dog bath")
    await chat.ws.close()

    resumed = await connect(token=chat.token)
    assert resumed.token == chat.token
    texts_shown = [(m["from"], m["text"]) for m in resumed.history]
    assert texts_shown == [
        ("customer", EN.t("btn.book")),
        ("shop", EN.t("ask.service")),
        ("customer", "Dog bath"),
        ("shop", EN.t("ask.pet_name")),
    ]
    assert any(b["label"] == "Dog bath" for b in resumed.history[1]["buttons"])  # buttons are kept
    await resumed.say("Max")  # the dialog goes on where it was
    assert resumed.text == EN.t("ask.size", pet="Max")


async def test_a_new_customer_without_history_function_gets_the_greeting(sqlite_services: Services) -> None:
    app = widget_app(sqlite_services.config, sqlite_services.engine, sqlite_services, history=None)
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect("/widget/clearsight/ws", headers=same_origin(c))
        chat = await Chat(ws).hello(None, "zh-CN")
        [intro] = chat.history
        assert intro["intro"] is True and sqlite_services.config.shops["clearsight"].name.zh in intro["text"]
        assert [b["payload"] for b in intro["buttons"]] == ["m:book", "m:my", "m:human"]
        assert intro["buttons"][0]["label"] == texts("zh").t("btn.book")


# ----------------------------------------------------------------------------- the shop's hours


def opening(shop: ShopConfig, day: date) -> str:
    """The shop's first opening time on ``day``, as config says it ("10:00")."""
    first = min(shop.hours_on(day))
    return f"{first.start_min // 60:02d}:{first.start_min % 60:02d}"


async def test_at_four_in_the_morning_the_widget_says_closed_and_when_it_opens(
    sqlite_services: Services, clock: FixedClock
) -> None:
    shop = sqlite_services.config.shops["pawspa"]
    saturday = NOW.astimezone(shop.tz).date()  # pawspa opens on Saturdays (config)
    clock.set(datetime.combine(saturday, time(4, 0), tzinfo=shop.tz))
    app = widget_app(sqlite_services.config, sqlite_services.engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        for lang in ("en", "zh-CN"):
            ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
            welcome = (await Chat(ws).hello(None, lang)).welcome
            await ws.close()
            catalog = texts(lang[:2])
            assert welcome["open"] is False
            assert welcome["status"] == catalog.t("widget.closed_today", time=opening(shop, saturday))
            opens = datetime.fromisoformat(welcome["opens_at"].replace("Z", "+00:00")).astimezone(shop.tz)
            assert (opens.date(), opens.strftime("%H:%M")) == (saturday, opening(shop, saturday))
            assert catalog.t("widget.status_open") not in welcome["status"]


async def test_in_opening_hours_the_widget_says_online(
    sqlite_services: Services, clock: FixedClock
) -> None:
    shop = sqlite_services.config.shops["pawspa"]
    saturday = NOW.astimezone(shop.tz).date()
    [hours] = shop.hours_on(saturday)
    clock.set(datetime.combine(saturday, hours.start, tzinfo=shop.tz) + timedelta(hours=3))
    app = widget_app(sqlite_services.config, sqlite_services.engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
        chat = await Chat(ws).hello()
        assert chat.welcome["open"] is True and "opens_at" not in chat.welcome
        assert chat.welcome["status"] == EN.t("widget.status_open")
        assert (await chat.say("hello"))[0]["from"] == "shop"  # and the chat works as ever


async def test_after_closing_before_a_closed_day_it_names_the_day_it_opens(
    sqlite_services: Services, clock: FixedClock
) -> None:
    shop = sqlite_services.config.shops["pawspa"]
    saturday = NOW.astimezone(shop.tz).date()
    monday = saturday + timedelta(days=2)
    closed, wednesday = monday + timedelta(days=1), monday + timedelta(days=2)
    assert shop.hours_on(monday) and not shop.hours_on(closed) and shop.hours_on(wednesday)  # config: closed Tuesdays
    clock.set(datetime.combine(monday, time(22, 30), tzinfo=shop.tz))
    app = widget_app(sqlite_services.config, sqlite_services.engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
        welcome = (await Chat(ws).hello()).welcome
        expected = EN.t("widget.closed_later", day=EN.format_date(wednesday), time=opening(shop, wednesday))
        assert (welcome["open"], welcome["status"]) == (False, expected)


async def test_a_closed_date_in_config_is_skipped_when_saying_when_the_shop_opens(demo_config: AppConfig) -> None:
    shop = demo_config.shops["pawspa"]
    saturday = NOW.astimezone(shop.tz).date()
    sunday, monday = saturday + timedelta(days=1), saturday + timedelta(days=2)
    holiday = shop.model_copy(update={"closed_dates": [sunday]})  # open on Sundays, but not this one
    late = datetime.combine(saturday, time(23, 0), tzinfo=shop.tz)
    assert shop_status(shop, "en", late)["status"] == EN.t("widget.closed_tomorrow", time=opening(shop, sunday))
    status = shop_status(holiday, "en", late)
    assert status["status"] == EN.t("widget.closed_later", day=EN.format_date(monday), time=opening(shop, monday))
    assert status["opens_at"] == datetime.combine(monday, min(shop.hours_on(monday)).start, tzinfo=shop.tz) \
        .astimezone(UTC).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------- sessions


async def test_expired_malformed_and_future_tokens_get_a_new_token(sqlite_services: Services) -> None:
    app = widget_app(sqlite_services.config, sqlite_services.engine, sqlite_services)
    now = sqlite_services.clock.now()
    async with TestClient(TestServer(app)) as c:

        async def token_after_hello(token: Any) -> str:
            ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
            chat = await Chat(ws).hello(token)
            await ws.close()
            return chat.token

        fresh = issue_token(now - timedelta(days=29))
        assert await token_after_hello(fresh) == fresh
        for bad in (
            issue_token(now - timedelta(days=31)),  # expired
            issue_token(now + timedelta(days=1)),  # from the future
            "not-a-token",
            "",
            None,
        ):
            new = await token_after_hello(bad)
            assert new != bad and new.split(".")[0] == str(int(now.timestamp()))
            assert len(new.split(".")[1]) == 43
        ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
        await ws.send_json({"type": "hello", "token": 12345})
        assert (await Chat(ws).recv())["code"] == "bad_frame"


async def test_the_token_is_not_stored_only_its_hash(services: Services, connect: Connect) -> None:
    chat = await connect()
    await chat.say("hello")
    async with services.db.reading() as s:
        ids = list(await s.scalars(select(Conversation.external_id).where(Conversation.channel == "web")))
    assert ids == [external_id_of(chat.token)]
    assert chat.token.split(".")[1] not in ids[0]


# ----------------------------------------------------------------------------- bad input


async def test_origin_is_checked(sqlite_services: Services) -> None:
    config = with_web(sqlite_services.config, "pawspa", WebWidgetConfig(allowed_origins=["https://PawSpa.example/"]))
    app = widget_app(config, sqlite_services.engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        for headers in (
            {"Origin": "https://evil.example"},
            {},
            {"Origin": "null"},
            {"Origin": "https://pawspa.example.evil"},
        ):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await c.ws_connect("/widget/pawspa/ws", headers=headers)
            assert err.value.status == 403
        ok = await c.ws_connect("/widget/pawspa/ws", headers={"Origin": "https://pawspa.example"})
        await Chat(ok).hello()
        await ok.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:  # allowed for pawspa only
            await c.ws_connect("/widget/clearsight/ws", headers={"Origin": "https://pawspa.example"})
        assert err.value.status == 403


async def test_unknown_shop_or_disabled_widget_is_404(sqlite_services: Services) -> None:
    config = with_web(sqlite_services.config, "clearsight", WebWidgetConfig(enabled=False))
    app = widget_app(config, sqlite_services.engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        for shop in ("nosuchshop", "clearsight"):
            for path in (f"/widget/{shop}", f"/widget/{shop}.js", f"/widget/{shop}.css", f"/widget/{shop}/demo.css"):
                assert (await c.get(path)).status == 404, path
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await c.ws_connect(f"/widget/{shop}/ws", headers=same_origin(c))
            assert err.value.status == 404


async def test_malformed_frames_get_error_frames_and_the_socket_keeps_working(sqlite_services: Services) -> None:
    app = widget_app(sqlite_services.config, sqlite_services.engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
        chat = Chat(ws)
        await ws.send_json({"type": "message", "id": "a1", "text": "hi"})
        assert (await chat.recv())["code"] == "hello_first"
        await chat.hello()
        cases: list[tuple[Any, str]] = [
            ("{not json", "bad_json"),
            ([1, 2], "bad_frame"),
            ("null", "bad_frame"),
            ({"type": "dance"}, "bad_frame"),
            ({"type": "message", "text": "hi"}, "bad_id"),
            ({"type": "message", "id": 7, "text": "hi"}, "bad_id"),
            ({"type": "message", "id": "x" * 65, "text": "hi"}, "bad_id"),
            ({"type": "message", "id": "<b>", "text": "hi"}, "bad_id"),
            ({"type": "message", "id": "a2", "text": ["hi"]}, "bad_frame"),
            ({"type": "message", "id": "a3", "text": "   "}, "empty"),
            ({"type": "press", "id": "a4"}, "bad_frame"),
            ({"type": "press", "id": "a5", "payload": "x" * 65}, "bad_frame"),
            ({"type": "press", "id": "a6", "payload": "m:book", "label": {"x": 1}}, "bad_frame"),
            ({"type": "hello", "token": None}, "bad_frame"),  # hello twice
        ]
        for frame, code in cases:
            await ws.send_str(frame if isinstance(frame, str) else json.dumps(frame))
            error = await chat.recv()
            assert (error["type"], error["code"]) == ("error", code), frame
        await ws.send_bytes(b"\x00\x01")
        assert (await chat.recv())["code"] == "bad_frame"
        assert await chat.say("hello")  # still answering


async def test_an_oversized_frame_closes_the_socket(sqlite_services: Services) -> None:
    app = widget_app(sqlite_services.config, sqlite_services.engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
        await Chat(ws).hello()
        await ws.send_str(json.dumps({"type": "message", "id": "big", "text": "x" * (MAX_FRAME_BYTES + 10)}))
        msg = await ws.receive(timeout=WAIT)
        assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


class RecordingEngine:
    def __init__(self) -> None:
        self.seen: list[IncomingMessage] = []

    async def handle(self, msg: IncomingMessage, *, replay: bool = True) -> list[OutgoingMessage]:
        self.seen.append(msg)
        return [OutgoingMessage("ok")]


async def test_frames_become_incoming_messages(sqlite_services: Services) -> None:
    engine = RecordingEngine()
    app = widget_app(sqlite_services.config, engine, sqlite_services)
    async with TestClient(TestServer(app)) as c:
        ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
        chat = await Chat(ws).hello(lang="en-GB")
        long_text = "  " + "長" * 4000 + "  "  # 12 kB of UTF-8: under the frame limit, over the text cap
        await ws.send_str(json.dumps({"type": "message", "id": "m-1", "text": long_text}, ensure_ascii=False))
        await chat.reply_to("m-1")
        await ws.send_json({"type": "press", "id": "m-2", "payload": "m:book", "label": "Book"})
        await chat.reply_to("m-2")
    typed, pressed = engine.seen
    user = external_id_of(chat.token)
    assert (typed.channel, typed.user_id, typed.message_id) == ("web", user, f"web:{user}:m-1")
    assert typed.text == "長" * 2000 and typed.payload is None and typed.language_hint == "en"
    assert (pressed.payload, pressed.text, pressed.kind, pressed.message_id) == (
        "m:book",
        "Book",
        "button",
        f"web:{user}:m-2",
    )


# ----------------------------------------------------------------------------- outbound


async def test_web_sender_pushes_to_open_sockets(sqlite_services: Services) -> None:
    app = widget_app(sqlite_services.config, RecordingEngine(), sqlite_services)
    sender = WebSender(app[CTX])
    assert sender.channel == "web"
    async with TestClient(TestServer(app)) as c:
        tabs: list[Chat] = []
        for _ in range(2):
            ws = await c.ws_connect("/widget/pawspa/ws", headers=same_origin(c))
            tabs.append(await Chat(ws).hello(tabs[0].token if tabs else None))
        user = external_id_of(tabs[0].token)
        message = OutgoingMessage(
            "See you <b>soon</b>", image_url="https://x.example/p.jpg", link=("Map", "https://m.example")
        )
        assert await sender.send("pawspa", user, message)
        for tab in tabs:
            push = await tab.recv()
            assert push["type"] == "push"
            [body] = push["messages"]
            assert body["text"] == "See you <b>soon</b>" and body["link"] == ["Map", "https://m.example"]
            assert body["image_url"] == "https://x.example/p.jpg" and body["from"] == "shop"
        with pytest.raises(DeliveryError) as err:
            await sender.send("clearsight", user, message)  # same person, other shop: not connected
        assert err.value.permanent is False and err.value.reason == "not connected"
        for tab in tabs:
            await tab.ws.close()
        with pytest.raises(DeliveryError):
            await sender.send("pawspa", user, message)


# ----------------------------------------------------------------------------- assets


async def test_demo_page_script_and_styles(sqlite_services: Services) -> None:
    app = widget_app(sqlite_services.config, RecordingEngine(), sqlite_services)
    async with TestClient(TestServer(app)) as c:
        page = await c.get("/widget/pawspa?lang=en")
        assert page.status == 200 and page.content_type == "text/html"
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert "unsafe-inline" not in csp
        body = await page.text()
        assert '<script src="/widget/pawspa.js" async></script>' in body
        assert body.count("<script") == 1 and "http://" not in body and "https://" not in body
        assert "PawSpa Pet Salon" in body and '<html lang="en">' in body
        assert EN.t("widget.tagline_pet") in body and html.escape(EN.t("widget.demo_services_title")) in body
        assert all(f"<li>{step}</li>" in body for step in EN.list("widget.demo_steps"))  # texts from core/locales
        script = await c.get("/widget/pawspa.js")
        assert script.status == 200 and script.content_type == "text/javascript"
        source = await script.text()
        assert '"shop": "pawspa"' in source and "innerHTML" not in source
        assert (await c.get("/widget/clearsight.css")).content_type == "text/css"
