"""Nothing a channel acknowledged is lost: real server processes killed (SIGKILL) or stopped (SIGTERM)
right after acknowledging Telegram updates, WeChat pushes and widget messages.

Each server is tests/crash_server.py (the real app, inbox worker and delivery loop). The fake
Telegram Bot API and the fake WeChat API are DOWN while the updates are acknowledged, so nothing
can have been delivered before the crash; they come back with the next process. Then every
message is answered exactly once (counted at the fakes), and a Confirm tap acknowledged before
the crash is confirmed. On PostgreSQL two processes share the database: one is killed and the
other takes its work over (its pid is gone: no lease to wait for).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.bootstrap import Services, bootstrap
from channels.telegram import SECRET_HEADER
from core.clock import FixedClock
from core.config import AppConfig
from core.i18n import texts
from core.models import Booking, BookingStatus, InboundMessage, TranscriptEntry
from tests.channels.fake_telegram import FakeTelegram, callback_update, text_update
from tests.channels.fake_wechat import FakeWeChatApi, WeChatUser
from tests.conftest import NOW
from tests.crash_server import SECRET, TOKEN

SERVER = Path(__file__).resolve().parent / "crash_server.py"
WAIT = 30.0
CHATS = [5550100 + i for i in range(4)]  # Telegram chats that each say hello after the crash window
OPENIDS = [f"oCrash_{i:04d}" for i in range(3)]
WIDGETS = 2
CONFIRM_CHAT = 5550999
ZH = texts("zh")
SINCE = time.time()  # every server process of this run: NOW at this wall time (one clock for all)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One crash_server.py process, spawned early (its imports done) and started when told."""

    def __init__(self, db_url: str, telegram_port: int, wechat_port: int, log: Path) -> None:
        self.args = [
            str(SERVER),
            "--since", str(SINCE),
            "--database-url", db_url,
            "--telegram-api", f"http://127.0.0.1:{telegram_port}",
            "--wechat-api", f"http://127.0.0.1:{wechat_port}",
            "--now", NOW.isoformat(),
            "--go-on-stdin",
        ]  # fmt: skip
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def spawn(self) -> Server:
        """The process with everything imported, waiting for the go: it has not opened the database."""
        out = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=out
        )
        out.close()
        return self

    async def start(self) -> Server:
        """Go: it opens the database, takes over what a dead process left, and listens."""
        if self.proc is None:
            await self.spawn()
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(b"go\n")
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), WAIT)
        except (TimeoutError, ConnectionError):
            line = b""
        if not line.startswith(b"ready "):
            if self.proc.returncode is None:
                self.proc.kill()
            await self.proc.wait()
            raise AssertionError(f"server did not start: {line!r}\n{self.output()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def signal(self, sig: int) -> int:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)
        return await asyncio.wait_for(self.proc.wait(), WAIT)

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        if self.url:
            await self.signal(signal.SIGTERM)
            return
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # never started: end of input, it exits untouched
        try:
            await asyncio.wait_for(self.proc.wait(), WAIT)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def telegram_post(http: aiohttp.ClientSession, server: Server, update: dict[str, Any]) -> int:
    headers = {SECRET_HEADER: SECRET}
    async with http.post(f"{server.url}/telegram/pawspa", json=update, headers=headers) as resp:
        await resp.read()
        return resp.status


async def wechat_post(http: aiohttp.ClientSession, server: Server, openid: str, msg_id: int) -> str:
    # sign with the servers' running clock (NOW at SINCE, moving with the wall clock): the suite may
    # reach this test minutes after this module was imported, beyond WeChat's timestamp window
    server_now = NOW + timedelta(seconds=time.time() - SINCE)
    user = WeChatUser(None, "clearsight", FixedClock(server_now), False, openid=openid)  # type: ignore[arg-type]  # only signs: no client
    push = user.sign(user.text_xml("你好", msg_id=msg_id))
    async with http.post(f"{server.url}/wechat/clearsight", params=push.params, data=push.body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.text()


async def widget_send(http: aiohttp.ClientSession, server: Server, client_id: str) -> str:
    """Open a chat, send one message, return the session token once the server acknowledged it."""
    headers = {"Origin": server.url}
    async with http.ws_connect(f"{server.url}/widget/pawspa/ws", headers=headers) as ws:
        await ws.send_json({"type": "hello", "token": None, "lang": "zh"})
        token = (await ws.receive_json(timeout=WAIT))["token"]
        await ws.receive_json(timeout=WAIT)  # history
        await ws.send_json({"type": "message", "id": client_id, "text": "你好"})
        while (frame := await ws.receive_json(timeout=WAIT))["type"] != "ack":
            assert frame["type"] in ("typing", "reply"), frame
        assert frame["id"] == client_id
        return str(token)


async def widget_history(http: aiohttp.ClientSession, server: Server, token: str) -> list[dict[str, Any]]:
    async with http.ws_connect(f"{server.url}/widget/pawspa/ws", headers={"Origin": server.url}) as ws:
        await ws.send_json({"type": "hello", "token": token, "lang": "zh"})
        await ws.receive_json(timeout=WAIT)  # welcome
        history = (await ws.receive_json(timeout=WAIT))["messages"]
        with pytest.raises(TimeoutError):  # and nothing pushed on top of it (shown once)
            await ws.receive_json(timeout=0.5)
        return list(history)


async def eventually(condition: Callable[[], bool | Awaitable[bool]], what: str, servers: list[Server]) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        done = condition()
        if not isinstance(done, bool):
            done = await done
        if done:
            return
        if asyncio.get_running_loop().time() > deadline:
            logs = "\n".join(s.output() for s in servers)
            raise AssertionError(f"{what}: not in time\n{logs[-6000:]}")
        await asyncio.sleep(0.02)


async def walk_to_summary(
    http: aiohttp.ClientSession, server: Server, fake: FakeTelegram, services: Services
) -> dict[str, Any]:
    """One Telegram customer up to the booking summary; returns the summary message (Confirm button)."""
    ids = iter(range(800_001, 900_000))
    last: list[dict[str, Any]] = []

    async def deliver(update: dict[str, Any]) -> None:
        nonlocal last
        before = len(fake.sent_to(CONFIRM_CHAT))
        assert await telegram_post(http, server, update) == 200
        stored: list[Any] = []

        async def answered() -> bool:  # the turn is done and every reply it stored has arrived
            async with services.db.reading() as s:
                row = await s.scalar(
                    select(InboundMessage).where(InboundMessage.message_id == f"tg:{update['update_id']}")
                )
            if row is None or not row.done:
                return False
            stored[:] = row.reply or []
            return len(fake.sent_to(CONFIRM_CHAT)) - before >= len(stored)

        await eventually(answered, "a reply", [server])
        last = [c.params["result"] for c in fake.sent_to(CONFIRM_CHAT)[before:]]
        texts = [c.params["text"] for c in fake.sent_to(CONFIRM_CHAT)]
        assert last and len(last) == len(stored), f"each reply of a turn once: {texts}"  # a late one shows next turn

    async def press(label_part: str) -> None:
        for message in reversed(last):
            for row in message.get("reply_markup", {}).get("inline_keyboard", []):
                for button in row:
                    if label_part in button["text"] and "callback_data" in button:
                        await deliver(callback_update(next(ids), CONFIRM_CHAT, message, button["callback_data"]))
                        return
        raise AssertionError(f"no button {label_part!r} in {last}")

    await deliver(text_update(next(ids), CONFIRM_CHAT, "你好"))
    await press(ZH.t("btn.book"))
    await press("狗狗洗澡")
    await deliver(text_update(next(ids), CONFIRM_CHAT, "豆豆"))
    await press(ZH.t("btn.size_small"))
    await press(ZH.t("btn.affirm"))
    await press("明天")
    await press(ZH.t("btn.afternoon"))
    await press("15:00")
    summary = next(m for m in last if "reply_markup" in m)
    assert any(ZH.t("btn.confirm") in b["text"] for row in summary["reply_markup"]["inline_keyboard"] for b in row)
    return summary


async def stored_replies(services: Any) -> dict[str, list[Any]]:
    async with services.db.reading() as s:
        rows = await s.execute(select(InboundMessage.message_id, InboundMessage.reply))
        return {message_id: list(reply or []) for message_id, reply in rows}


def confirm_update(summary: dict[str, Any]) -> dict[str, Any]:
    data = next(
        b["callback_data"]
        for row in summary["reply_markup"]["inline_keyboard"]
        for b in row
        if ZH.t("btn.confirm") in b["text"]
    )
    return callback_update(777_001, CONFIRM_CHAT, summary, data)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
async def test_everything_acknowledged_before_a_crash_is_answered_once(
    demo_config: AppConfig, db_url: str, tmp_path: Path, http: aiohttp.ClientSession, sig: int
) -> None:
    telegram_port, wechat_port = free_port(), free_port()
    log = tmp_path / "servers.log"
    two = db_url.startswith("postgresql")  # PostgreSQL: two processes share the database
    # Both processes of the scenario are spawned first (Python's start-up overlaps); each opens the
    # database only when started: on SQLite the second one after the crash (SIGTERM: just before).
    spawned = [Server(db_url, telegram_port, wechat_port, log) for _ in range(2)]
    first: list[Server] = spawned[:2] if two else spawned[:1]
    others: list[Server] = []
    services: Services | None = None
    fake = FakeTelegram(TOKEN, port=telegram_port)
    wechat = FakeWeChatApi(port=wechat_port)
    try:
        await asyncio.gather(*(server.spawn() for server in spawned))
        services = await bootstrap(demo_config, clock=FixedClock(NOW), database_url=db_url, senders_override={})
        for server in first:
            await server.start()
        # 0. With the Bot API up: a customer reaches the summary with its Confirm button.
        await fake.start()
        summary = await walk_to_summary(http, first[0], fake, services)
        await fake.close()  # 1. The Bot API (and the WeChat API) are down from here on.
        fake = FakeTelegram(TOKEN, port=telegram_port)

        # 1. Acknowledged: hello from every chat, the Confirm tap, WeChat pushes, widget messages.
        for i, chat in enumerate(CHATS):
            assert await telegram_post(http, first[i % len(first)], text_update(600_000 + i, chat, "你好")) == 200
        assert await telegram_post(http, first[-1], confirm_update(summary)) == 200
        for i, openid in enumerate(OPENIDS):
            await wechat_post(http, first[i % len(first)], openid, 9_000_000 + i)
        tokens = [await widget_send(http, first[i % len(first)], f"c-{i}") for i in range(WIDGETS)]
        # ...and then the process dies (on PostgreSQL: the first of the two). SIGTERM is a rolling
        # deploy: the new process is up first; kill -9 on SQLite is a crash and a restart.
        if sig == signal.SIGTERM and not two:
            others = [await spawned[1].start()]
        code = await first[0].signal(sig)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0), first[0].output()[-3000:]

        # 2. The networks come back; a new process starts (on PostgreSQL the other one is still up).
        await fake.start()
        await wechat.start()
        if not others:
            others = first[1:] if two else [await spawned[1].start()]
        everyone = [*CHATS, CONFIRM_CHAT]
        await eventually(lambda: all(fake.sent_to(c) for c in everyone), "every Telegram chat answered", others)
        await eventually(lambda: {m["touser"] for m in wechat.messages} == set(OPENIDS), "every WeChat user", others)
        answered_at = asyncio.get_running_loop().time()

        async def open_rows() -> int:
            async with services.db.reading() as s:
                return int(await s.scalar(select(func.count()).where(InboundMessage.done.is_(False))) or 0)

        for _ in range(200):
            if not await open_rows():
                break
            await asyncio.sleep(0.05)
        assert await open_rows() == 0
        for history in await asyncio.gather(*(widget_history(http, others[0], token) for token in tokens)):
            assert [m["from"] for m in history][:1] == ["customer"] and len(history) >= 2
            assert sum(m["from"] == "customer" for m in history) == 1  # its message, handled once
        # a second of quiet after the last chat was answered: time for any duplicate to show up
        await asyncio.sleep(max(0.0, answered_at + 1.0 - asyncio.get_running_loop().time()))
        replies = await stored_replies(services)
        expected = Counter({chat: len(replies[f"tg:{600_000 + i}"]) for i, chat in enumerate(CHATS)})
        expected[CONFIRM_CHAT] = len(replies["tg:777001"])
        assert Counter(c.params["chat_id"] for c in fake.of("sendMessage")) == expected  # each reply once
        assert Counter(m["touser"] for m in wechat.messages) == Counter(
            {o: len(replies[f"wx:{9_000_000 + i}"]) for i, o in enumerate(OPENIDS)}
        )
        confirmed = " ".join(c.params["text"] for c in fake.sent_to(CONFIRM_CHAT))
        async with services.db.reading() as s:
            [booking] = list(await s.scalars(select(Booking)))
            assert booking.status == BookingStatus.CONFIRMED
            assert booking.code in confirmed
        async with services.db.reading() as s:  # every message in once (11 Telegram turns before, one each after)
            inbound = await s.scalar(select(func.count()).where(TranscriptEntry.direction == "in"))
        assert inbound == 9 + len(CHATS) + 1 + len(OPENIDS) + WIDGETS
    finally:
        await asyncio.gather(*(server.stop() for server in spawned))
        await fake.close()
        await wechat.stop()
        if services is not None:
            await services.close()
