"""The console's JSON API and live events: take-over races, replies through the outbox, hand-back,
manual bookings racing chat bookings, shop isolation, FAQ upload, events across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import Services, bootstrap
from bot.web import build_app
from core.clock import FixedClock
from core.config import AppConfig
from core.i18n import texts
from core.messages import OutgoingMessage
from core.models import ConversationMode
from tests.helpers import MON
from tests.support.collecting import CollectingChannel

PASSWORD = "correct horse battery"


class Staff:
    """A logged-in console user talking to the JSON API."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.http, self.csrf = base, session, ""

    async def login(self, services: Services, username: str) -> Staff:
        session = await services.accounts.login(username, PASSWORD, "127.0.0.1")
        assert session is not None
        self.http.cookie_jar.update_cookies({"chatbook_session": session.token})
        self.csrf = session.csrf
        return self

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path) as resp:
            return resp.status, await resp.json()

    async def post(
        self, path: str, body: Any = None, *, csrf: bool = True, raw: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body or {}}
        async with self.http.post(self.base + path, headers=headers, **kwargs) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def console(services: Services) -> AsyncIterator[tuple[str, list[aiohttp.ClientSession]]]:
    await services.accounts.add("lily", PASSWORD, shops=["pawspa"], display_name="Lily")
    await services.accounts.add("ming", PASSWORD, shops=["pawspa"], display_name="Ming")
    await services.accounts.add("eye", PASSWORD, shops=["clearsight"])
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin")
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in range(3)]
    yield str(server.make_url("")).rstrip("/"), sessions
    for s in sessions:
        await s.close()
    await server.close()


async def _escalated(services: Services, user: str = "cust") -> tuple[CollectingChannel, int]:
    chat = CollectingChannel(services.engine, "pawspa", user=user, channel="web")
    await chat.push("人工")
    [item] = [i for i in await services.store.handoffs("pawspa") if i.external_id == user]
    return chat, item.conversation_id


async def test_two_staff_cannot_both_take_a_chat(services: Services, console: Any) -> None:
    base, (a, b, _) = console
    lily, ming = await Staff(base, a).login(services, "lily"), await Staff(base, b).login(services, "ming")
    _, conv = await _escalated(services)
    results = await asyncio.gather(
        lily.post(f"/api/console/conversations/{conv}/take"), ming.post(f"/api/console/conversations/{conv}/take")
    )
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409]
    loser = next(body for status, body in results if status == 409)
    assert loser["error"] == "taken" and loser["by"] in ("lily", "ming")
    status, _ = (
        await ming.post(f"/api/console/conversations/{conv}/reply", {"text": "hi"})
        if loser["by"] == "lily"
        else await lily.post(f"/api/console/conversations/{conv}/reply", {"text": "hi"})
    )
    assert status == 409  # the one who lost cannot reply over the other


async def test_reply_reaches_the_customer_and_hand_back_wakes_the_bot(services: Services, console: Any) -> None:
    base, (a, _, _) = console
    lily = await Staff(base, a).login(services, "lily")
    chat, conv = await _escalated(services)
    assert (await lily.post(f"/api/console/conversations/{conv}/take"))[0] == 200
    status, _ = await lily.post(f"/api/console/conversations/{conv}/reply", {"text": "您好，我是Lily"})
    assert status == 200
    sent: list[str] = []

    class Widget:
        channel = "web"

        async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
            sent.append(message.text)
            return None

    services.delivery.senders["web"] = Widget()
    await services.delivery.tick()
    assert "您好，我是Lily" in sent and texts("zh").t("handoff.joined", name="Lily") in sent  # told who joined
    assert await chat.push("营业时间是几点？") == []  # staff have it: the bot is silent
    assert (await lily.post(f"/api/console/conversations/{conv}/note", {"text": "VIP"}))[0] == 200
    status, detail = await lily.get(f"/api/console/conversations/{conv}")
    assert [e["direction"] for e in detail["transcript"]].count("note") == 1
    assert detail["conversation"]["mode"] == "staff" and detail["conversation"]["assigned_to"] == "lily"
    assert (await lily.post(f"/api/console/conversations/{conv}/release"))[0] == 200
    await services.delivery.tick()
    assert sent[-1] == texts("zh").t("handoff.released")  # the customer is told the bot is back
    assert "10:00" in (await chat.push("营业时间是几点？"))[0].text  # the bot answers again


async def test_shop_isolation_and_csrf(services: Services, console: Any) -> None:
    base, (a, b, c) = console
    eye = await Staff(base, a).login(services, "eye")
    _, conv = await _escalated(services)
    assert (await eye.get(f"/api/console/conversations/{conv}"))[0] == 403
    assert (await eye.get("/api/console/inbox?shop=pawspa"))[0] == 403
    assert (await eye.get(f"/api/console/day?shop=pawspa&date={MON}"))[0] == 403
    assert (await eye.post(f"/api/console/conversations/{conv}/take"))[0] == 403
    lily = await Staff(base, b).login(services, "lily")
    status, body = await lily.post(f"/api/console/conversations/{conv}/take", csrf=False)
    assert status == 403 and body["error"] == "csrf"
    anonymous = Staff(base, c)
    assert (await anonymous.get("/api/console/inbox?shop=pawspa"))[0] == 401


async def test_manual_booking_racing_a_chat_booking(services: Services, console: Any) -> None:
    base, (a, _, _) = console
    lily = await Staff(base, a).login(services, "lily")
    chat = CollectingChannel(services.engine, "pawspa", user="racer")
    for text in ("预约", "修剪指甲", "豆豆", "狗狗", "小型", "11月23日"):
        await chat.push(text)
    slot = chat.button("10:00") if "10:00" in chat.labels else None
    manual = lily.post(
        "/api/console/bookings",
        {
            "shop": "pawspa",
            "service": "nail_trim",
            "date": MON.isoformat(),
            "time": "10:00",
            "staff": "xiaomei",
            "customer_name": "Walk-in Wang",
            "phone": "+86 138 0000 1111",
        },
    )
    if slot is not None:
        (status, body), _ = await asyncio.gather(manual, chat.push(slot.label, payload=slot.payload))
    else:
        status, body = await manual
    upcoming = [b for b in await services.bookings.free_slots("pawspa", "nail_trim", MON, staff_id="xiaomei")]
    assert all(s.start.astimezone(services.config.shops["pawspa"].tz).strftime("%H:%M") != "10:00" for s in upcoming)
    if status == 200:
        assert body["booking"]["status"] == "confirmed" and body["booking"]["staff"] == "xiaomei"
    else:
        assert status == 409 and body["alternatives"]


async def test_faq_upload_is_validated_before_it_replaces_anything(
    services: Services, console: Any, tmp_path: Any, demo_config: AppConfig, clock: FixedClock
) -> None:
    import shutil

    faq_dir = tmp_path / "faq"
    shutil.copytree(demo_config.faq_dir, faq_dir)
    config = demo_config.model_copy(update={"faq_dir": str(faq_dir)})
    url = services.db.url.render_as_string(hide_password=False)
    local = await bootstrap(config, clock=clock, database_url=url, migrate=False)
    server = TestServer(build_app(local), host="127.0.0.1")
    await server.start_server()
    base, (a, b, _) = str(server.make_url("")).rstrip("/"), console[1]
    try:
        boss, lily = await Staff(base, a).login(local, "boss"), await Staff(base, b).login(local, "lily")
        good = (faq_dir / "pawspa.yaml").read_text(encoding="utf-8")
        broken = good.replace("  - id: ", "  - idd: ", 1)
        assert (await lily.post("/api/console/faq/pawspa", raw=broken.encode()))[0] == 403  # admins only
        status, body = await boss.post("/api/console/faq/pawspa", raw=broken.encode())
        assert status == 400 and any("pawspa.yaml:" in e for e in body["errors"])
        assert (faq_dir / "pawspa.yaml").read_text(encoding="utf-8") == good  # nothing replaced
        status, body = await boss.post("/api/console/faq/pawspa", raw=good.replace("周二休息", "周二周三休息").encode())
        assert status == 200 and body["entries"] > 20
        status, faq = await boss.get("/api/console/faq")
        assert {s["shop"]: s["ok"] for s in faq["shops"]} == {"pawspa": True, "clearsight": True}
    finally:
        await server.close()
        await local.close()


async def test_events_reach_consoles_on_another_process(
    services: Services, demo_config: AppConfig, clock: FixedClock
) -> None:
    url = services.db.url.render_as_string(hide_password=False)
    other = await bootstrap(demo_config, clock=clock, database_url=url, migrate=False)
    try:
        await services.events.start()
        await other.events.start()
        queue = other.events.subscribe()
        _, conv = await _escalated(services)  # escalation on process 1 ...
        if services.db.dialect != "postgresql":
            pytest.skip("SQLite runs one server process: events are in-process only")
        event = await asyncio.wait_for(queue.get(), 10)  # ... seen by a console on process 2
        assert event == {"type": "escalation", "shop": "pawspa", "conversation": conv}
    finally:
        await other.close()


async def test_escalation_reaches_a_console_socket(services: Services, console: Any) -> None:
    base, (a, _, _) = console
    await Staff(base, a).login(services, "lily")
    async with a.ws_connect(base.replace("http", "ws") + "/console/ws", headers={"Origin": base}) as ws:
        hello = await ws.receive_json(timeout=10)
        assert hello["type"] == "hello" and hello["shops"] == ["pawspa"]
        _, conv = await _escalated(services, user="live")
        event = await ws.receive_json(timeout=10)
        assert event == {"type": "escalation", "shop": "pawspa", "conversation": conv}
    assert ConversationMode.HANDOFF.value == "handoff"


async def test_a_console_that_falls_behind_is_told_to_resync(services: Services) -> None:
    from bot.events import QUEUE_SIZE

    queue = services.events.subscribe()
    for i in range(QUEUE_SIZE + 3):
        await services.events.publish({"type": "activity", "shop": "pawspa", "conversation": i})
    received = [queue.get_nowait() for _ in range(queue.qsize())]
    assert received[0] == {"type": "resync"}  # instead of silently missing events
    assert [e["conversation"] for e in received[1:]] == [QUEUE_SIZE + 1, QUEUE_SIZE + 2]  # then live again
