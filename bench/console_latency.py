"""Console latency: time from a customer's message to its appearance in connected staff consoles,
with 50 consoles connected and 100 conversations held by staff (prints figures, asserts nothing).

Everything under test runs in subprocesses (the load generator, this process, keeps off their
event loop): ``python -m bot serve`` on the demo config.yaml with a temporary database, and a bare
aiohttp echo server for the floor.

  setup     one staff account for pawspa, 51 logins (sessions made in this process on the same
            database before the server starts); 100 customers open the widget WebSocket
            (/widget/pawspa/ws, Origin = the server) and each writes "人工"; a setup console
            (/console/ws with the session cookie and Origin) learns each conversation id from its
            "escalation" event, and the chat is taken with POST /api/console/conversations/{id}/take
            (X-CSRF-Token). The setup console then disconnects.
  messages  customers write at a steady rate (open loop, round robin over the 100 chats, so each
            chat has at most one message in flight); the first --warmup messages are not counted.
  ack       send -> the widget's "reply" frame for that message (engine done, event published).
  event     send -> the "message" event for that conversation on each console socket
            (all = every console x message; last = the 50th console to get it, per message).
  visible   console 0 fetches GET /api/console/conversations/{id} on each event: send -> the
            response containing the message text (what a console shows).
  baselines the same messages with 0 consoles connected (ack only); an aiohttp echo server that
            sends a tiny JSON event to 50 listener sockets, then the ack, for each message
            (the floor of fan-out cost on this machine, client included).

SQLite runs one server process (events are in-process); PostgreSQL (tests.pgcluster, fsync=off)
runs two on one database: customers on process A, consoles on process B, so every event crosses
processes by NOTIFY/LISTEN.

    .venv/bin/python bench/console_latency.py [--rate 10] [--messages 200] [--warmup 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT, backends, machine, ms_summary, print_table
from aiohttp import ClientSession, ClientTimeout, DummyCookieJar, TCPConnector, WSMsgType, web

SELF = str(Path(__file__).resolve())
SHOP = "pawspa"
USERNAME = "bench"
PASSWORD = "bench-console-latency"
CONSOLES = 50
CONVERSATIONS = 100
SETUP = -1  # index of the setup console
GRACE = 20.0  # seconds to wait for the last acks/events after the last message


# ============================================================================ echo server (subprocess)


async def serve_echo(port: int) -> None:
    """Listeners send {"type": "listen"}; customers {"type": "hello", "conversation": n} then messages.
    Each message: a tiny event to every listener, then the ack to the sender."""
    listeners: set[web.WebSocketResponse] = set()

    async def socket_route(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=16 * 1024)
        await ws.prepare(request)
        conversation = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    break
                frame = json.loads(msg.data)
                if frame["type"] == "listen":
                    listeners.add(ws)
                    await ws.send_str(json.dumps({"type": "hello"}))
                elif frame["type"] == "hello":
                    conversation = frame["conversation"]
                    await ws.send_str(json.dumps({"type": "welcome"}))
                elif frame["type"] == "message":
                    event = json.dumps({"type": "message", "shop": SHOP, "conversation": conversation})
                    for other in list(listeners):
                        if not other.closed:
                            await other.send_str(event)
                    await ws.send_str(json.dumps({"type": "reply", "in_reply_to": frame["id"], "messages": []}))
        finally:
            listeners.discard(ws)
        return ws

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/ws", socket_route)
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


# ============================================================================ server processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        """User + system CPU seconds used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_server(name: str, workdir: Path, database_url: str | None) -> Server:
    port = free_port()
    log = workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATBOOK_")}
    env["PYTHONPATH"] = str(ROOT)
    if database_url is None:
        cmd = [sys.executable, SELF, "--echo-server", "--port", str(port)]
    else:
        env["CHATBOOK_DATABASE_URL"] = database_url
        cmd = [sys.executable, "-m", "bot", "serve", "--config", str(ROOT / "config.yaml"), "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    server = Server(name, port, proc, log)
    async with ClientSession() as session:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited at start-up:\n{log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(Exception):
                async with session.get(f"{server.base}/healthz") as resp:
                    if resp.status == 200:
                        return server
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{name} did not answer /healthz within 30 s")


async def stop_server(server: Server, grace: float = 15.0) -> None:
    if server.proc.poll() is not None:
        print(f"  {server.name}: had exited ({server.proc.returncode})")
        return
    started = time.perf_counter()
    server.proc.send_signal(signal.SIGTERM)
    while server.proc.poll() is None and time.perf_counter() - started < grace:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    if server.proc.poll() is None:
        server.proc.kill()
        server.proc.wait()
        print(f"  {server.name}: killed after {grace:.0f} s (SIGTERM not done)")


def log_problems(server: Server) -> list[str]:
    """Warning/error lines of a server's log, grouped by their text without numbers."""
    counts: dict[str, int] = {}
    for line in server.log.read_text(errors="replace").splitlines():
        if re.search(r"\b(WARNING|ERROR|CRITICAL)\b|Traceback|Error", line):
            key = re.sub(r"\d+", "N", line)[:160]
            counts[key] = counts.get(key, 0) + 1
    return [f"{n} x {key}" for key, n in sorted(counts.items(), key=lambda kv: -kv[1])[:8]]


async def prepare_database(url: str, sessions: int) -> list[tuple[str, str]]:
    """Migrate, add the staff account, log in ``sessions`` times: [(cookie token, csrf)]."""
    from bot.bootstrap import bootstrap
    from core.config import load_config

    config = load_config(ROOT / "config.yaml", environ={})
    services = await bootstrap(config, database_url=url)
    try:
        await services.accounts.add(USERNAME, PASSWORD, shops=[SHOP], display_name="Bench")
        made = []
        for _ in range(sessions):
            session = await services.accounts.login(USERNAME, PASSWORD, "127.0.0.1")
            assert session is not None
            made.append((session.token, session.csrf))
        return made
    finally:
        await services.close()


# ============================================================================ measurement


@dataclass
class Msg:
    index: int
    conversation: int
    client_id: str
    text: str
    sent: float = 0.0
    ack: float | None = None
    events: list[float] = field(default_factory=list)
    visible: float | None = None
    error: str | None = None


class Phase:
    def __init__(self, name: str, consoles: int) -> None:
        self.name = name
        self.consoles = consoles
        self.messages: list[Msg] = []
        self.by_id: dict[str, Msg] = {}
        self.waiting: list[dict[int, deque[Msg]]] = [defaultdict(deque) for _ in range(consoles)]
        self.unseen: dict[int, list[Msg]] = defaultdict(list)
        self.unmatched = 0
        self.fetches = 0
        self.fetch_misses = 0
        self.fetch_errors = 0
        self.in_flight = 0

    def add(self, msg: Msg, fetching: bool) -> None:
        self.messages.append(msg)
        self.by_id[msg.client_id] = msg
        for waiting in self.waiting:
            waiting[msg.conversation].append(msg)
        if fetching:
            self.unseen[msg.conversation].append(msg)

    def done(self) -> bool:
        return (
            all(m.ack is not None or m.error for m in self.messages)
            and all(not q for w in self.waiting for q in w.values())
            and all(not u for u in self.unseen.values())
            and self.in_flight == 0
        )


class Run:
    """Sockets and the phase being measured, for one server set-up."""

    def __init__(self, http: ClientSession) -> None:
        self.http = http
        self.phase: Phase | None = None
        self.setup_events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.setup_acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.fetch_base = ""
        self.fetch_cookie = ""
        self.tasks: set[asyncio.Task[None]] = set()

    def fetching(self, phase: Phase) -> bool:
        return bool(self.fetch_base) and phase.consoles > 0

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def customer_reader(self, ws: Any) -> None:
        async for frame_msg in ws:
            t = time.perf_counter()
            if frame_msg.type != WSMsgType.TEXT:
                break
            frame = json.loads(frame_msg.data)
            kind, ref = frame.get("type"), frame.get("in_reply_to")
            if kind not in ("reply", "error") or ref is None:
                continue
            future = self.setup_acks.pop(ref, None)
            if future is not None and not future.done():
                future.set_result(frame)
                continue
            msg = self.phase.by_id.get(ref) if self.phase else None
            if msg is None:
                continue
            if kind == "reply":
                msg.ack = t - msg.sent
            else:
                msg.error = frame.get("code", "error")

    async def console_reader(self, index: int, ws: Any) -> None:
        async for frame_msg in ws:
            t = time.perf_counter()
            if frame_msg.type != WSMsgType.TEXT:
                break
            event = json.loads(frame_msg.data)
            if index == SETUP:
                self.setup_events.put_nowait(event)
                continue
            phase = self.phase
            if phase is None or event.get("type") != "message":
                continue
            queue = phase.waiting[index].get(event.get("conversation"))
            if not queue:
                phase.unmatched += 1
                continue
            msg = queue.popleft()
            msg.events.append(t - msg.sent)
            if index == 0 and self.fetch_base:
                phase.in_flight += 1
                self.spawn(self.fetch(phase, msg))

    async def fetch(self, phase: Phase, msg: Msg) -> None:
        """What a console does on an event: load the conversation and look for the message."""
        phase.fetches += 1
        try:
            url = f"{self.fetch_base}/api/console/conversations/{msg.conversation}"
            async with self.http.get(url, headers={"Cookie": self.fetch_cookie}) as resp:
                body = await resp.json()
                ok = resp.status == 200
            t = time.perf_counter()
            if not ok:
                phase.fetch_errors += 1
                return
            shown = {e["text"] for e in body["transcript"] if e["direction"] == "in"}
            unseen = phase.unseen[msg.conversation]
            for other in list(unseen):
                if other.text in shown:
                    other.visible = t - other.sent
                    unseen.remove(other)
            if msg.visible is None:
                phase.fetch_misses += 1
        except Exception:
            phase.fetch_errors += 1
        finally:
            phase.in_flight -= 1


@dataclass
class Target:
    """Where customers and consoles connect (for chatbook: A and B, the same server on SQLite)."""

    customer_url: str
    customer_origin: str
    console_url: str
    console_origin: str
    echo: bool


async def open_customers(run: Run, target: Target, count: int) -> list[Any]:
    sockets = []
    for i in range(count):
        ws = await run.http.ws_connect(target.customer_url, headers={"Origin": target.customer_origin})
        hello = {"type": "hello", "conversation": i} if target.echo else {"type": "hello", "token": None, "lang": "zh"}
        await ws.send_str(json.dumps(hello))
        welcome = await ws.receive_json(timeout=10)
        assert welcome["type"] == "welcome", welcome
        if not target.echo:
            history = await ws.receive_json(timeout=10)
            assert history["type"] == "history", history
        run.spawn(run.customer_reader(ws))
        sockets.append(ws)
    return sockets


async def open_consoles(run: Run, target: Target, cookies: list[str], first_index: int) -> list[Any]:
    async def one(i: int, cookie: str) -> Any:
        headers = {"Origin": target.console_origin}
        if cookie:
            headers["Cookie"] = cookie
        ws = await run.http.ws_connect(target.console_url, headers=headers)
        if target.echo:
            await ws.send_str(json.dumps({"type": "listen"}))
        hello = await ws.receive_json(timeout=10)
        assert hello["type"] == "hello", hello
        run.spawn(run.console_reader(i, ws))
        return ws

    return list(await asyncio.gather(*(one(first_index + k, c) for k, c in enumerate(cookies))))


async def hold_conversations(run: Run, base_b: str, customers: list[Any], setup: tuple[str, str]) -> list[int]:
    """Each customer writes "人工"; the setup console learns the conversation and takes it."""
    conversations = []
    cookie, csrf = f"chatbook_session={setup[0]}", setup[1]
    for i, ws in enumerate(customers):
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        run.setup_acks[f"esc-{i}"] = ack
        await ws.send_str(json.dumps({"type": "message", "id": f"esc-{i}", "text": "人工"}))
        while True:
            event = await asyncio.wait_for(run.setup_events.get(), 15)
            if event.get("type") == "escalation":
                break
        conversation = int(event["conversation"])
        assert conversation not in conversations, event
        await asyncio.wait_for(ack, 15)
        url = f"{base_b}/api/console/conversations/{conversation}/take"
        async with run.http.post(url, headers={"Cookie": cookie, "X-CSRF-Token": csrf}) as resp:
            body = await resp.json()
            assert resp.status == 200, (resp.status, body)
        conversations.append(conversation)
    return conversations


async def drive(
    run: Run, phase: Phase, customers: list[Any], conversations: list[int], args: argparse.Namespace
) -> float:
    """Open loop at ``args.rate``; waits for the stragglers. Returns the seconds spent sending."""
    run.phase = phase
    fetching = run.fetching(phase)
    total = args.warmup + args.messages
    # Client ids must differ between phases: the widget answers a repeated id with the stored reply.
    tag = f"{re.sub(r'[^A-Za-z]', '', phase.name)[:16]}{phase.consoles}"
    started = time.perf_counter()
    for i in range(total):
        delay = started + i / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        k = i % len(customers)
        msg = Msg(i, conversations[k], f"{tag}-{i}", f"bench {tag} 第{i}条 请问明天下午还能约洗澡吗")
        phase.add(msg, fetching)
        msg.sent = time.perf_counter()
        await customers[k].send_str(json.dumps({"type": "message", "id": msg.client_id, "text": msg.text}))
    sending = time.perf_counter() - started
    deadline = time.perf_counter() + GRACE
    while time.perf_counter() < deadline and not phase.done():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    run.phase = None
    return sending


def summarize(
    phase: Phase, warmup: int, cpu: float | None, sending: float, fetching: bool
) -> tuple[tuple[str, ...], dict[str, float]]:
    measured = phase.messages[warmup:]
    n = len(measured)
    acks = [m.ack for m in measured if m.ack is not None]
    every = [t for m in measured for t in m.events]
    last = [max(m.events) for m in measured if phase.consoles and len(m.events) == phase.consoles]
    visible = [m.visible for m in measured if m.visible is not None]
    lost = []
    if len(acks) < n:
        lost.append(f"{n - len(acks)} acks ({sum(1 for m in measured if m.error)} errors)")
    if phase.consoles and len(every) < n * phase.consoles:
        lost.append(f"{n * phase.consoles - len(every)} events")
    if fetching and len(visible) < n:
        lost.append(f"{n - len(visible)} not visible")
    if phase.unmatched:
        lost.append(f"{phase.unmatched} stray events")

    def pair(values: list[float]) -> str:
        return " / ".join(ms_summary(values)) if values else "-"

    medians = {
        "ack": sorted(acks)[len(acks) // 2] if acks else float("nan"),
        "event": sorted(every)[len(every) // 2] if every else float("nan"),
    }
    row = (
        phase.name,
        str(phase.consoles),
        f"{n} @ {(n + warmup) / max(sending, 1e-9):.1f}/s",
        pair(acks),
        pair(every),
        pair(last),
        pair(visible) if fetching else "-",
        f"{cpu * 1000 / (n + warmup):.1f}" if cpu is not None else "-",
        ", ".join(lost) or "none",
    )
    return row, medians


async def run_setup(
    name: str, args: argparse.Namespace, workdir: Path, database_url: str | None, two_processes: bool
) -> list[tuple[tuple[str, ...], dict[str, float]]]:
    """One server set-up: the baseline phase (0 consoles) then 50 consoles."""
    servers: list[Server] = []
    results = []
    connector = TCPConnector(limit=0)
    http = ClientSession(connector=connector, cookie_jar=DummyCookieJar(), timeout=ClientTimeout(total=30))
    run = Run(http)
    sockets: list[Any] = []
    try:
        if database_url is None:
            sessions: list[tuple[str, str]] = [("", "")] * (CONSOLES + 1)
            servers.append(await start_server("echo", workdir, None))
            a = b = servers[0]
            target = Target(f"{a.base}/ws", a.base, f"{b.base}/ws", b.base, echo=True)
        else:
            started = time.perf_counter()
            sessions = await prepare_database(database_url, CONSOLES + 1)
            print(f"  {name}: account and {CONSOLES + 1} sessions in {time.perf_counter() - started:.1f} s")
            tag = name.split()[0].lower()
            servers.append(await start_server(f"{tag}-A", workdir, database_url))
            if two_processes:
                servers.append(await start_server(f"{tag}-B", workdir, database_url))
            a, b = servers[0], servers[-1]
            target = Target(f"{a.base}/widget/{SHOP}/ws", a.base, f"{b.base}/console/ws", b.base, echo=False)
        cookies = [f"chatbook_session={token}" if token else "" for token, _ in sessions]
        started = time.perf_counter()
        customers = await open_customers(run, target, CONVERSATIONS)
        sockets += customers
        if target.echo:
            conversations = list(range(CONVERSATIONS))
        else:
            [setup] = await open_consoles(run, target, cookies[:1], SETUP)
            conversations = await hold_conversations(run, b.base, customers, sessions[0])
            await setup.close()
            run.fetch_base, run.fetch_cookie = b.base, cookies[1]
        print(f"  {name}: {CONVERSATIONS} conversations ready in {time.perf_counter() - started:.1f} s")
        for consoles in (0, CONSOLES):
            if consoles:
                sockets += await open_consoles(run, target, cookies[1 : consoles + 1], 0)
                await asyncio.sleep(0.5)
            phase = Phase(f"{name}", consoles)
            cpu_before = sum(s.cpu() for s in servers)
            sending = await drive(run, phase, customers, conversations, args)
            cpu = sum(s.cpu() for s in servers) - cpu_before
            results.append(summarize(phase, args.warmup, cpu, sending, run.fetching(phase)))
            if phase.fetch_misses or phase.fetch_errors:
                print(
                    f"  {name}, {consoles} consoles: {phase.fetches} fetches, {phase.fetch_misses} without the "
                    f"message, {phase.fetch_errors} failed"
                )
    finally:
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for task in list(run.tasks):
            task.cancel()
        await asyncio.gather(*run.tasks, return_exceptions=True)
        await http.close()
        for server in servers:
            await stop_server(server)
            for problem in log_problems(server):
                print(f"  {server.name} log: {problem}")
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10.0, help="customer messages per second")
    parser.add_argument("--messages", type=int, default=200, help="measured messages per phase")
    parser.add_argument("--warmup", type=int, default=20, help="messages sent first, not counted")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        await serve_echo(args.port)
        return
    began = time.perf_counter()
    print(f"console latency ({machine()}), load average {os.getloadavg()[0]:.1f} at start")
    print("note: other sessions may be loading this machine; read the ratios to the baselines of this run\n")
    rows: list[tuple[tuple[str, ...], dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="chatbook-console-bench-") as tmp:
        workdir = Path(tmp)
        rows += await run_setup("echo (bare aiohttp)", args, workdir, None, False)
        async for backend, url in backends():
            if backend == "sqlite":
                rows += await run_setup("SQLite, 1 process", args, workdir, url, False)
                if args.no_postgres:
                    break
            else:
                rows += await run_setup("PostgreSQL, A+B", args, workdir, url, True)
    print()
    headers = [
        "setup",
        "consoles",
        "messages",
        "ack p50/p99 ms",
        "event all p50/p99 ms",
        "event last p50/p99 ms",
        "visible p50/p99 ms",
        "server CPU ms/msg",
        "lost",
    ]
    print_table(headers, [row for row, _ in rows])
    echo = rows[1][1]["event"]
    print()
    for (row, medians), (_, base) in zip(rows[3::2], rows[2::2], strict=False):
        print(
            f"  {row[0]}: event p50 {medians['event'] * 1000:.2f} ms = {medians['event'] / echo:.1f}x the echo "
            f"fan-out, {medians['event'] / base['ack']:.2f}x the 0-console ack; ack with 50 consoles / 0 consoles "
            f"{medians['ack'] / base['ack']:.2f}"
        )
    print(f"\ntotal {time.perf_counter() - began:.0f} s, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    asyncio.run(main())
