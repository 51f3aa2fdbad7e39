"""Channel throughput over HTTP on SQLite: FAQ answers per second and p50/p99 latency through
``POST /telegram/{shop}`` and ``POST /wechat/{shop}`` (AES mode), each next to a bare aiohttp
handler and a minimal python-telegram-bot Application, in the same run (prints figures, asserts
nothing).

Servers under test, each in a subprocess of its own, started fresh per endpoint:

  chatbook  ``python -m bot serve`` with a generated config (the demo config.yaml plus a Telegram
            bot for pawspa and a WeChat account in AES mode for clearsight, both pointed at fakes
            in this process; no public_url, so no setWebhook) and a temporary SQLite database
  commit    the baseline of issue 10: aiohttp that verifies (the secret header / the WeChat
            signatures), parses, does ONE commit (an INSERT into a SQLite table through SQLAlchemy's
            async engine, WAL, synchronous=NORMAL, as chatbook's) and answers: Telegram 200 and the
            fixed answer to the fake Bot API; WeChat the fixed answer as the encrypted passive reply
  bare      aiohttp: json.loads the Telegram body / verify msg_signature, decrypt and parse the
            WeChat body; answers 200 (no answer at all)
  ptb       a python-telegram-bot 22 Application whose MessageHandler answers a fixed text (the
            pawspa FAQ answer), driven through ``Application.process_update``: Telegram updates go
            onto its update_queue and are acked 200 at once (as PTB's own webhook does), start()'s
            fetcher runs process_update 64 at a time and the reply goes to the fake Bot API; WeChat
            pushes are decrypted into an ``Update``, processed inline and the handler's text
            returned as the encrypted passive reply

Load: wrk (Debian) -c64 -t1 with bench/wrk/*.lua, after a short warm-up. Telegram: unique
update_id per request, chat ids over --chats chats; wrk's latency is the ACK latency (the answer
is sent in the background), so the fake Bot API counts the sendMessage calls made during the
wrk run (answers/s), and a second phase (before the wrk one) measures answers end to end: 64
Python clients each send an update to a fresh chat and wait until the fake receives the
sendMessage for that chat. WeChat: requests pre-generated here (unique nonce and MsgId, valid
signatures, a fresh timestamp); the passive reply is the answer, so wrk's latency is the answer
latency; responses are classified (encrypted passive reply / "success" = late / other).

    .venv/bin/python bench/channels_throughput.py [--seconds 10] [--warmup 2] [--e2e-seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import yaml
from _common import ROOT, machine, percentile, print_table
from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from tests.channels.fake_telegram import FakeTelegram
from tests.channels.fake_wechat import ACCOUNT, AES_KEY, APP_ID, APP_SECRET, FakeWeChatApi, message_xml

TG_SHOP = "pawspa"
WX_SHOP = "clearsight"
TG_TOKEN = "123456:AAbenchmarkTokenForChatbookChannels"
TG_SECRET = "bench-secret-token"
WX_TOKEN = "chatbook-push-token"
QUESTION = "营业时间是几点？"
# What the PTB handler answers: the pawspa FAQ answer, so both send about the same bytes.
FIXED_ANSWER = (
    "我们每天 10:00–20:00 营业，每周二休息哦~ 最晚一单洗护需在打烊前开始，欢迎提前在聊天里预约，期待您家小可爱的到来~"
)
VARIANTS = ("chatbook", "commit", "bare", "ptb")
PTB_CONCURRENCY = 64  # ApplicationBuilder.concurrent_updates of the PTB baseline
E2E_IDS = itertools.count(50_000_000)  # update ids of the end-to-end phases, never reused
WRK = shutil.which("wrk")
SELF = str(Path(__file__).resolve())


# ============================================================================ servers (subprocess side)


def _wechat_fields(request: web.Request, body: bytes) -> dict[str, str]:
    """Verify msg_signature, decrypt and parse an AES push (wechatpy's crypto, our expat parser)."""
    from wechatpy.crypto import WeChatCrypto

    from channels.wechat import parse_xml

    q = request.query
    crypto = WeChatCrypto(WX_TOKEN, AES_KEY, APP_ID)
    plain = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
    return parse_xml(plain)


async def serve_baseline(kind: str, port: int, api: str) -> None:
    """``bare`` or ``ptb`` on 127.0.0.1:port until SIGTERM."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from wechatpy.crypto import WeChatCrypto

    from channels.wechat import text_reply_xml

    app = web.Application()
    application: Any = None
    replies: dict[int, str] = {}

    if kind == "ptb":
        from telegram import Update
        from telegram.ext import Application, MessageHandler, filters

        async def answer(update: Update, context: Any) -> None:
            if update.update_id < 0:  # a WeChat push: the text goes back in the HTTP response
                replies[update.update_id] = FIXED_ANSWER
            else:
                await update.message.reply_text(FIXED_ANSWER)  # type: ignore[union-attr]  # bench sends messages only

        application = (
            Application.builder()
            .token(TG_TOKEN)
            .base_url(f"{api}/bot")
            .updater(None)
            .concurrent_updates(PTB_CONCURRENCY)
            .build()
        )
        application.add_handler(MessageHandler(filters.TEXT, answer))
        await application.initialize()
        await application.start()  # its update fetcher: update_queue -> process_update, 64 at a time

        async def telegram(request: web.Request) -> web.Response:
            data = json.loads(await request.read())
            await application.update_queue.put(Update.de_json(data, application.bot))  # as PTB's own webhook
            return web.Response(status=200)

        async def wechat(request: web.Request) -> web.Response:
            fields = _wechat_fields(request, await request.read())
            uid = -int(fields["MsgId"])
            chat = int(fields["FromUserName"].removeprefix("oBench")) + 1
            data = {
                "update_id": uid,
                "message": {
                    "message_id": int(fields["MsgId"]) % 2**31,
                    "from": {"id": chat, "is_bot": False, "first_name": "Bench"},
                    "chat": {"id": chat, "type": "private", "first_name": "Bench"},
                    "date": int(fields["CreateTime"]),
                    "text": fields.get("Content", ""),
                },
            }
            await application.process_update(Update.de_json(data, application.bot))
            text = replies.pop(uid, None)
            if text is None:
                return web.Response(text="success")
            now = str(int(time.time()))
            xml = text_reply_xml(fields["FromUserName"], fields["ToUserName"], int(now), text)
            sealed = WeChatCrypto(WX_TOKEN, AES_KEY, APP_ID).encrypt_message(xml, request.query["nonce"], now)
            return web.Response(text=sealed, content_type="application/xml")

    elif kind == "commit":
        import hmac

        from sqlalchemy import event, text
        from sqlalchemy.ext.asyncio import create_async_engine

        db = Path(tempfile.gettempdir()) / f"chatbook-bench-commit-{port}.db"
        db.unlink(missing_ok=True)
        engine = create_async_engine(f"sqlite+aiosqlite:///{db}")

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE inbox (id INTEGER PRIMARY KEY, key TEXT UNIQUE, body TEXT)"))
        http = ClientSession()
        background: set[asyncio.Task[Any]] = set()
        insert = text("INSERT INTO inbox (key, body) VALUES (:k, :b)")

        async def send_answer(chat: int) -> None:
            with contextlib.suppress(Exception):
                url = f"{api}/bot{TG_TOKEN}/sendMessage"
                async with http.post(url, json={"chat_id": chat, "text": FIXED_ANSWER}) as resp:
                    await resp.read()

        async def telegram(request: web.Request) -> web.Response:
            secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "").encode()
            if not hmac.compare_digest(secret, TG_SECRET.encode()):
                return web.Response(status=403)
            body = await request.read()
            data = json.loads(body)
            async with engine.begin() as conn:  # ONE commit
                await conn.execute(insert, {"k": f"tg:{data['update_id']}", "b": body.decode()})
            task = asyncio.get_running_loop().create_task(send_answer(data["message"]["chat"]["id"]))
            background.add(task)
            task.add_done_callback(background.discard)
            return web.Response(status=200)

        async def wechat(request: web.Request) -> web.Response:
            fields = _wechat_fields(request, await request.read())
            async with engine.begin() as conn:  # ONE commit
                await conn.execute(insert, {"k": f"wx:{fields['MsgId']}", "b": json.dumps(fields)})
            now = str(int(time.time()))
            xml = text_reply_xml(fields["FromUserName"], fields["ToUserName"], int(now), FIXED_ANSWER)
            sealed = WeChatCrypto(WX_TOKEN, AES_KEY, APP_ID).encrypt_message(xml, request.query["nonce"], now)
            return web.Response(text=sealed, content_type="application/xml")

    else:

        async def telegram(request: web.Request) -> web.Response:
            json.loads(await request.read())
            return web.Response(status=200)

        async def wechat(request: web.Request) -> web.Response:
            _wechat_fields(request, await request.read())
            return web.Response(text="success")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_post("/telegram/{shop}", telegram)
    app.router.add_post("/wechat/{shop}", wechat)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    if application is not None:
        while not application.update_queue.empty():  # the backlog is not the point: drop it
            application.update_queue.get_nowait()
        await application.stop()
        await application.shutdown()


# ============================================================================ orchestration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(directory: Path, telegram_api: str, wechat_api: str) -> Path:
    """The demo config with pawspa on Telegram and clearsight on WeChat (AES), both on fakes."""
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    data["faq_dir"] = str(ROOT / "faq")
    data["server"]["public_url"] = ""
    data["shops"][TG_SHOP].setdefault("channels", {})["telegram"] = {
        "token": TG_TOKEN,
        "secret_token": TG_SECRET,
        "api_base_url": telegram_api,
    }
    data["shops"][WX_SHOP].setdefault("channels", {})["wechat"] = {
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "token": WX_TOKEN,
        "encoding_aes_key": AES_KEY,
        "api_base_url": wechat_api,
    }
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Server:
    kind: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    db: Path | None
    started: float
    notes: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def inbound(self, channel: str) -> int | None:
        """Messages the engine has finished (chatbook only; claimed rows marked done), from its SQLite file."""
        if self.db is None or not self.db.exists():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)) as conn:
            query = "SELECT count(*) FROM inbound_messages WHERE channel = ? AND done"
            return int(conn.execute(query, (channel,)).fetchone()[0])

    def outbox(self, channel: str) -> int | None:
        """Replies the outbox sent (or holds) because the inline answer did not happen (chatbook only:
        every reply has an outbox row; those answered passively are marked ``inline``)."""
        if self.db is None or not self.db.exists():
            return None
        query = "SELECT count(*) FROM outbox WHERE channel = ? AND coalesce(provider_id, '') != 'inline'"
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)) as conn:
            return int(conn.execute(query, (channel,)).fetchone()[0])


async def start_server(kind: str, workdir: Path, config: Path, telegram_api: str, tag: str) -> Server:
    port = free_port()
    log = workdir / f"{tag}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOOK_")}
    env["PYTHONPATH"] = str(ROOT)
    db = None
    if kind == "chatbook":
        db = workdir / f"{tag}.db"
        env["CHATBOOK_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
        cmd = [sys.executable, "-m", "bot", "serve", "--config", str(config), "--port", str(port)]
    else:
        cmd = [sys.executable, SELF, "--serve", kind, "--port", str(port), "--api", telegram_api]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    server = Server(kind, port, proc, log, db, time.perf_counter())
    async with ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited at start-up:\n{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(Exception):
                async with session.get(f"{server.base}/healthz") as resp:
                    if resp.status == 200:
                        return server
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{kind} did not answer /healthz within 30 s")


async def stop_server(server: Server, grace: float) -> str:
    """SIGTERM, then SIGKILL after ``grace`` seconds; says how it went."""
    if server.proc.poll() is not None:
        return f"had exited ({server.proc.returncode})"
    started = time.perf_counter()
    server.proc.send_signal(signal.SIGTERM)
    while server.proc.poll() is None and time.perf_counter() - started < grace:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()
        return f"killed after {grace:.0f} s (SIGTERM not done)"
    return f"stopped in {time.perf_counter() - started:.1f} s (exit {server.proc.returncode})"


def log_problems(server: Server) -> list[str]:
    """Warning/error lines of the server's log, grouped by their text without numbers."""
    counts: dict[str, int] = {}
    for line in server.log.read_text(errors="replace").splitlines():
        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback", line):
            key = re.sub(r"\d+", "N", line)[:160]
            counts[key] = counts.get(key, 0) + 1
    return [f"{n} x {key}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])[:8]]


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    passive: int
    success: int
    other: int
    wrapped: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


async def run_wrk(script: str, url: str, seconds: float, connections: int, env: dict[str, str]) -> WrkResult:
    assert WRK is not None
    proc = await asyncio.create_subprocess_exec(
        WRK,
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        script,
        url,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    match = re.search(r"^WRK (\{.*\})$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk output without figures:\n{text}")
    d = json.loads(match.group(1))
    errors = {k: d[k] for k in ("connect", "read", "write", "status", "timeout") if d[k]}
    return WrkResult(
        d["requests"],
        d["duration_us"] / 1e6,
        d["p50_us"] / 1000,
        d["p99_us"] / 1000,
        errors,
        d["passive"],
        d["success"],
        d["other"],
        d["wrapped"],
    )


class CountingTelegram(FakeTelegram):
    """The tests' fake Bot API, noting when each sendMessage arrives and waking who waits for a chat."""

    def __init__(self) -> None:
        super().__init__(TG_TOKEN)
        self.sent_at: list[float] = []
        self.waiters: dict[int, asyncio.Future[float]] = {}
        self.texts: dict[int, str] = {}

    async def _api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        response = await super()._api_sendMessage(params)
        now = time.perf_counter()
        self.sent_at.append(now)
        chat = params.get("chat_id")
        if isinstance(chat, int):
            waiter = self.waiters.pop(chat, None)
            if waiter is not None and not waiter.done():
                self.texts[chat] = str(params.get("text", ""))
                waiter.set_result(now)
        return response

    def sent_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.sent_at if start <= t <= end)


def telegram_update(update_id: int, chat: int) -> bytes:
    sender = {"id": chat, "is_bot": False, "first_name": "Bench", "language_code": "zh-hans"}
    message = {
        "message_id": update_id,
        "from": sender,
        "chat": {"id": chat, "type": "private", "first_name": "Bench"},
        "date": int(time.time()),
        "text": QUESTION,
    }
    return json.dumps({"update_id": update_id, "message": message}).encode()


@dataclass
class EndToEnd:
    answered: int
    seconds: float
    latencies: list[float]
    non_200: int
    lost: int
    sample: str


async def telegram_end_to_end(server: Server, fake: CountingTelegram, seconds: float, concurrency: int) -> EndToEnd:
    """Closed loop: each client sends an update to a fresh chat and waits for its sendMessage."""
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    non_200 = lost = 0
    sample = ""
    url = f"{server.base}/telegram/{TG_SHOP}"
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    deadline = loop.time() + seconds

    async def worker(session: ClientSession) -> None:
        nonlocal non_200, lost, sample
        while loop.time() < deadline:
            update_id = next(E2E_IDS)
            chat = 900_000_000 + update_id
            waiter: asyncio.Future[float] = loop.create_future()
            fake.waiters[chat] = waiter
            started = time.perf_counter()
            async with session.post(url, data=telegram_update(update_id, chat), headers=headers) as resp:
                await resp.read()
                status = resp.status
            if status != 200:
                non_200 += 1
                fake.waiters.pop(chat, None)
                continue
            try:
                arrived = await asyncio.wait_for(waiter, 30)
            except TimeoutError:
                lost += 1
                fake.waiters.pop(chat, None)
                continue
            latencies.append(arrived - started)
            sample = sample or fake.texts.get(chat, "")

    started = time.perf_counter()
    async with ClientSession(connector=TCPConnector(limit=concurrency), timeout=ClientTimeout(total=60)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return EndToEnd(len(latencies), time.perf_counter() - started, latencies, non_200, lost, sample)


def wechat_requests(path: Path, count: int, users: int) -> None:
    """``count`` signed AES pushes of QUESTION, each with its own nonce and MsgId, timestamped now."""
    from wechatpy.crypto import WeChatCrypto

    from channels.wechat import signature

    crypto = WeChatCrypto(WX_TOKEN, AES_KEY, APP_ID)
    encrypt_re = re.compile(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>")
    signature_re = re.compile(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>")
    run = secrets.token_hex(4)
    now = str(int(time.time()))
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            openid = f"oBench{i % users:06d}"
            nonce = f"{run}{i}"
            inner = message_xml(openid, int(now), "text", Content=QUESTION, MsgId=8_000_000_000 + i)
            sealed = crypto.encrypt_message(inner, nonce, now)
            encrypted = encrypt_re.search(sealed).group(1)  # type: ignore[union-attr]  # we just sealed it
            msg_signature = signature_re.search(sealed).group(1)  # type: ignore[union-attr]  # we just sealed it
            query = {
                "signature": signature(WX_TOKEN, now, nonce),
                "timestamp": now,
                "nonce": nonce,
                "openid": openid,
                "encrypt_type": "aes",
                "msg_signature": msg_signature,
            }
            body = (
                f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
            )
            out.write(f"/wechat/{WX_SHOP}?{urlencode(query)}\t{body}\n")


async def wechat_sample(server: Server, line: str) -> str:
    """Send one pre-generated push with Python and return the decrypted passive reply's text."""
    from wechatpy.crypto import WeChatCrypto

    from channels.wechat import parse_xml

    target, body = line.rstrip("\n").split("\t", 1)
    headers = {"Content-Type": "text/xml"}
    async with ClientSession() as session, session.post(server.base + target, data=body.encode(), headers=headers) as r:
        text = await r.text()
        status = r.status
    if status != 200:
        return f"HTTP {status}: {text[:80]}"
    if text == "success":
        return '"success" (no passive reply)'
    outer = parse_xml(text)
    plain = WeChatCrypto(WX_TOKEN, AES_KEY, APP_ID).decrypt_message(
        text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
    )
    return parse_xml(plain).get("Content", "")


def ms(value: float) -> str:
    return f"{value:,.1f}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.3f}"


def errors_text(result: WrkResult, extra: str = "") -> str:
    parts = [f"{k} {v}" for k, v in result.errors.items()]
    if extra:
        parts.append(extra)
    return ", ".join(parts) or "none"


async def bench_telegram(args: argparse.Namespace, workdir: Path, wechat_api: str) -> None:
    print(f"\n== POST /telegram/{TG_SHOP} ==")
    rows = []
    figures: dict[str, dict[str, float | None]] = {}
    script = "bench/wrk/telegram.lua"
    text = json.dumps(QUESTION)[1:-1]
    for kind in VARIANTS:
        fake = CountingTelegram()
        await fake.start()
        config = write_config(workdir, fake.url, wechat_api)
        server = await start_server(kind, workdir, config, fake.url, f"telegram-{kind}")
        try:
            e2e = None
            if kind != "bare":
                await telegram_end_to_end(server, fake, 1.0, 8)  # warm-up: FAQ loaded, bot ready
                e2e = await telegram_end_to_end(server, fake, args.e2e_seconds, args.connections)
            env = {"TG_SECRET": TG_SECRET, "TG_TEXT": text, "CHATS": str(args.chats), "UPDATE_BASE": "1"}
            url = f"{server.base}/telegram/{TG_SHOP}"
            await run_wrk(script, url, args.warmup, args.connections, env)
            env["UPDATE_BASE"] = "10000000"
            handled_before = server.inbound("telegram")
            t0 = time.perf_counter()
            result = await run_wrk(script, url, args.seconds, args.connections, env)
            t1 = time.perf_counter()
            handled_after = server.inbound("telegram")
            answers = fake.sent_between(t0, t1) / (t1 - t0) if kind != "bare" else None
            handled = (
                (handled_after - handled_before) / (t1 - t0)
                if handled_before is not None and handled_after is not None
                else answers
            )
            backlog = ""
            if handled_after is not None:
                total_sent = len(fake.sent_at)
                backlog = f"engine finished {handled_after:,} in all, {total_sent:,} answers sent"
            stopped = await stop_server(server, args.grace)
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
            await fake.close()
        e2e_rate = e2e.answered / e2e.seconds if e2e else None
        e2e_problems = f"e2e non-200 {e2e.non_200}, lost {e2e.lost}" if e2e and (e2e.non_200 or e2e.lost) else ""
        figures[kind] = {"acks": result.rate, "answers": answers, "e2e": e2e_rate}
        rows.append(
            (
                kind,
                rate(result.rate),
                ms(result.p50_ms),
                ms(result.p99_ms),
                rate(handled),
                rate(answers),
                rate(e2e_rate),
                ms(percentile(e2e.latencies, 50) * 1000) if e2e and e2e.latencies else "-",
                ms(percentile(e2e.latencies, 99) * 1000) if e2e and e2e.latencies else "-",
                errors_text(result, e2e_problems),
            )
        )
        print(f"  {kind}: {stopped}" + (f"; {backlog}" if backlog else ""))
        if e2e and e2e.sample:
            print(f"    answer seen by the fake: {e2e.sample[:60]!r}")
        for problem in log_problems(server):
            print(f"    log: {problem}")
    print()
    print_table(
        [
            "server",
            "acks/s",
            "ack p50 ms",
            "ack p99 ms",
            "engine done/s",
            "answers/s",
            "e2e answers/s",
            "answer p50 ms",
            "answer p99 ms",
            "errors",
        ],
        rows,
    )
    ours, bare, ptb, commit = figures["chatbook"], figures["bare"], figures["ptb"], figures["commit"]
    print(
        f"  vs the one-commit baseline (goal >= 0.33): acks/s {ratio(ours['acks'], commit['acks'])}, "
        f"answers/s during wrk {ratio(ours['answers'], commit['answers'])}, "
        f"end-to-end answers/s {ratio(ours['e2e'], commit['e2e'])}"
    )
    print(
        f"  ratios: acks/s chatbook/bare {ratio(ours['acks'], bare['acks'])}, chatbook/ptb "
        f"{ratio(ours['acks'], ptb['acks'])}; answers/s during wrk chatbook/ptb "
        f"{ratio(ours['answers'], ptb['answers'])}; "
        f"end-to-end answers/s chatbook/ptb {ratio(ours['e2e'], ptb['e2e'])}"
    )


async def bench_wechat(args: argparse.Namespace, workdir: Path, wechat_api: str) -> None:
    print(f"\n== POST /wechat/{WX_SHOP} (AES) ==")
    pushes = workdir / "wechat.txt"
    started = time.perf_counter()
    wechat_requests(pushes, args.wechat_requests, args.users)
    lines = pushes.read_text(encoding="utf-8").splitlines()
    print(f"  {len(lines):,} signed AES pushes generated in {time.perf_counter() - started:.1f} s")
    rows = []
    figures: dict[str, float] = {}
    script = "bench/wrk/wechat.lua"
    for kind in VARIANTS:
        fake = CountingTelegram()  # the Telegram bot of the config still says getMe at start
        await fake.start()
        config = write_config(workdir, fake.url, wechat_api)
        server = await start_server(kind, workdir, config, fake.url, f"wechat-{kind}")
        try:
            samples = [await wechat_sample(server, lines[i]) for i in range(3)]
            env = {"WX_FILE": str(pushes), "WX_START": "3"}
            url = server.base + f"/wechat/{WX_SHOP}"
            warm = await run_wrk(script, url, args.warmup, args.connections, env)
            env["WX_START"] = str(3 + warm.requests + 100)
            result = await run_wrk(script, url, args.seconds, args.connections, env)
            late = server.outbox("wechat")
            stopped = await stop_server(server, args.grace)
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
            await fake.close()
        figures[kind] = result.rate
        answers = result.passive / result.seconds
        extra = []
        if result.success:
            extra.append(f'"success" {result.success}')
        if result.other:
            extra.append(f"other {result.other}")
        if result.wrapped:
            extra.append(f"file wrapped {result.wrapped}x")
        if late:
            extra.append(f"outbox {late}")
        rows.append(
            (
                kind,
                rate(result.rate),
                ms(result.p50_ms),
                ms(result.p99_ms),
                rate(answers) if kind != "bare" else "-",
                errors_text(result, ", ".join(extra)),
            )
        )
        print(f"  {kind}: {stopped}; Python sample before the run: {samples[0][:60]!r}")
        for problem in log_problems(server):
            print(f"    log: {problem}")
    print()
    print_table(["server", "req/s", "p50 ms", "p99 ms", "answers/s", "errors / not answered"], rows)
    print(
        f"  vs the one-commit baseline (goal >= 0.33): req/s chatbook/commit "
        f"{ratio(figures['chatbook'], figures['commit'])}\n"
        f"  ratios: req/s chatbook/bare {ratio(figures['chatbook'], figures['bare'])}, "
        f"chatbook/ptb {ratio(figures['chatbook'], figures['ptb'])}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="wrk run per server")
    parser.add_argument("--warmup", type=float, default=2, help="wrk warm-up per server")
    parser.add_argument("--e2e-seconds", type=float, default=8, help="Telegram end-to-end phase per server")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--chats", type=int, default=2000, help="Telegram chats the wrk updates are spread over")
    parser.add_argument("--users", type=int, default=2000, help="WeChat openids the pushes are spread over")
    parser.add_argument("--wechat-requests", type=int, default=80_000, help="pre-generated AES pushes")
    parser.add_argument("--grace", type=float, default=15, help="seconds a server may take to stop")
    parser.add_argument("--only", choices=["telegram", "wechat"])
    parser.add_argument("--keep", action="store_true", help="keep the work directory (server logs, databases)")
    parser.add_argument("--serve", choices=["bare", "ptb", "commit"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--api", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        await serve_baseline(args.serve, args.port, args.api)
        return
    if WRK is None:
        print("wrk not found: this benchmark needs it as the load generator (apt-get install wrk)")
        return
    print(f"channel throughput over HTTP, SQLite ({machine()})")
    print(
        f"  load: wrk -t1 -c{args.connections} -d{args.seconds:g}s after {args.warmup:g} s warm-up; every server "
        f"in its own process; load generator, fakes and server share the {os.cpu_count()} cores"
    )
    workdir = Path(tempfile.mkdtemp(prefix="chatbook-bench-channels-"))
    wechat_api = await FakeWeChatApi().start()
    try:
        if args.only != "wechat":
            await bench_telegram(args, workdir, wechat_api.url)
        if args.only != "telegram":
            await bench_wechat(args, workdir, wechat_api.url)
    finally:
        await wechat_api.stop()
        if args.keep:
            print(f"\nserver logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
