"""The web chat widget: an embeddable script, a demo page and a WebSocket per open chat.

Routes (``register(app, ctx)``):

    GET /widget/{shop}.js     the embeddable script; one tag puts a chat bubble on any page:
                              <script src="https://HOST/widget/pawspa.js" async></script>
                              (it finds its server origin and shop from its own URL)
    GET /widget/{shop}.css    the widget's styles (loaded by the script into its shadow root)
    GET /widget/{shop}        a demo page embedding the script, served with a strict CSP
    GET /widget/{shop}/demo.css   the demo page's styles
    GET /widget/{shop}/ws     the chat WebSocket

Unknown shop or widget disabled -> 404. The WebSocket's ``Origin`` must be one of the shop's
``channels.web.allowed_origins`` or the server's own host (the demo page) -> 403 otherwise.

Session: the server issues a token ``"<unix issue time>.<token_urlsafe(32)>"`` which the
browser keeps in localStorage. The server never stores it: the customer's external id is
``"w" + sha256(token)[:40]``. Tokens older than 30 days (or malformed, or from the future)
are refused and a new one is issued (a new, empty conversation). Since the issue time is part
of the hashed token, a client cannot extend a token's life by rewriting it.

Protocol: JSON text frames, at most 16 KiB each (a bigger frame closes the socket, 1009).

client -> server
    {"type": "hello", "token": <str|null>, "lang": <"zh"|"en"|browser tag|null>}   first frame
    {"type": "message", "id": <client id>, "text": <str>}       text is cut at 2,000 characters
    {"type": "press", "id": <client id>, "payload": <str>, "label": <str>}   a quick reply
server -> client
    {"type": "welcome", "token": <str>, "open": <bool>, "opens_at": <ISO-8601 UTC, when closed>,
     "status": <str>}                                    the token to keep (maybe a new one) and
                                                         the shop's state now, from its opening
                                                         hours in config in its zone: "status" is
                                                         the header line in the chat's language
                                                         ("Online" / "We're closed now, we open
                                                         at 10:00..."; core/locales widget.*)
    {"type": "history", "messages": [<message>...]}      the recent transcript after hello
    {"type": "ack", "id": <client id>}                   stored: it will be answered, even after a
                                                         server restart (no need to resend it)
    {"type": "typing"}                                   a reply is being prepared
    {"type": "reply", "in_reply_to": <client id>, "received_at": <ISO-8601 UTC>, "messages": [...]}
    {"type": "push", "messages": [<message>...]}         staff replies, reminders (WebSender)
    {"type": "error", "code": <str>, "message": <str>, "in_reply_to": <client id, optional>}
<message> = {"from": "shop"|"customer", "text": str, "buttons": [{"label", "payload"}],
             "image_url": str, "link": [label, url], "at": ISO-8601 UTC, "intro": true}
(optional keys are left out; "intro" marks the greeting shown to a customer without history,
which is not part of the transcript).

Client ids (``[A-Za-z0-9_.:-]{1,64}``) make a resend after a reconnect idempotent: the engine
gets ``message_id = f"web:{external_id}:{client id}"`` and answers a repeat with its stored
reply. Error codes: hello_first, bad_json, bad_frame, bad_id, empty, busy, failed, rate_limited
(the message text says so to the customer; nothing was stored), too_many_sessions (then closed).
Limits per address and per session (channels/web/limits.py): new sessions, messages, new
customers. No customer row exists before a session's first message that gets through.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import re
import secrets
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from channels.base import ChannelContext, DeliveryError, InboxBusy, TranscriptLine
from channels.web.limits import Limiter
from core.config import ShopConfig
from core.i18n import language_tag, texts
from core.messages import IncomingMessage, OutgoingMessage
from core.opening import open_state

log = logging.getLogger(__name__)

CHANNEL = "web"
STATIC = Path(__file__).resolve().parent / "static"
TOKEN_TTL = timedelta(days=30)
TOKEN_SKEW = timedelta(minutes=5)  # tokens "issued" further in the future than this are refused
MAX_FRAME_BYTES = 16 * 1024
MAX_TEXT = 2000
MAX_LABEL = 200
MAX_PAYLOAD_BYTES = 64
HISTORY_LIMIT = 100
QUEUE_LIMIT = 16  # messages of one socket waiting for the engine
HEARTBEAT_SECONDS = 30.0
REPLY_WAIT_SECONDS = 4.0  # a reply frame waits this long for the turn; later replies are pushed
_TOKEN_RE = re.compile(r"^(\d{1,12})\.([A-Za-z0-9_-]{43})$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_LANG_RE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")
# The engine's global menu buttons, offered in the greeting before the first message.
_INTRO_BUTTONS = (("btn.book", "m:book"), ("btn.my_bookings", "m:my"), ("btn.human", "m:human"))
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"}
DEMO_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


# --------------------------------------------------------------------------- session tokens


def issue_token(now: datetime) -> str:
    """A new session token carrying its issue time."""
    return f"{int(now.timestamp())}.{secrets.token_urlsafe(32)}"


def token_valid(token: object, now: datetime) -> bool:
    """Well formed, not older than 30 days, not from the future."""
    if not isinstance(token, str):
        return False
    match = _TOKEN_RE.match(token)
    if match is None:
        return False
    issued = datetime.fromtimestamp(int(match.group(1)), tz=UTC)
    return now - TOKEN_TTL < issued <= now + TOKEN_SKEW


def external_id_of(token: str) -> str:
    """The customer's id on the web channel: a hash of the token (the token is never stored)."""
    return "w" + hashlib.sha256(token.encode("ascii")).hexdigest()[:40]


# --------------------------------------------------------------------------- open sockets


class Hub:
    """Open sockets per customer: (shop, external id) -> sockets."""

    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str], set[web.WebSocketResponse]] = {}

    def add(self, shop_id: str, external_id: str, ws: web.WebSocketResponse) -> None:
        self._sockets.setdefault((shop_id, external_id), set()).add(ws)

    def remove(self, shop_id: str, external_id: str, ws: web.WebSocketResponse) -> None:
        key = (shop_id, external_id)
        sockets = self._sockets.get(key)
        if sockets is not None:
            sockets.discard(ws)
            if not sockets:
                del self._sockets[key]

    def sockets(self, shop_id: str, external_id: str) -> list[web.WebSocketResponse]:
        return [ws for ws in self._sockets.get((shop_id, external_id), ()) if not ws.closed]

    def all(self) -> list[web.WebSocketResponse]:
        return [ws for sockets in self._sockets.values() for ws in sockets]


_HUBS: dict[int, Hub] = {}


def hub_of(ctx: ChannelContext) -> Hub:
    """The socket registry shared by ``register`` and ``WebSender`` for one context."""
    key = id(ctx)
    hub = _HUBS.get(key)
    if hub is None:
        hub = _HUBS[key] = Hub()
        weakref.finalize(ctx, _HUBS.pop, key, None)
    return hub


# --------------------------------------------------------------------------- rendering


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def render_message(message: OutgoingMessage, at: datetime, *, sender: str = "shop") -> dict[str, Any]:
    body = message.to_json()
    body["from"] = sender
    body["at"] = _iso(at)
    return body


def render_history(lines: Iterable[TranscriptLine]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for line in lines:
        if line.direction == "in":
            if line.text.strip():
                out.append({"from": "customer", "text": line.text, "at": _iso(line.at)})
            continue
        message = line.message or OutgoingMessage(line.text)
        if message.text.strip() or message.buttons or message.image_url or message.link:
            out.append(render_message(message, line.at))
    return out[-HISTORY_LIMIT:]


def intro_message(shop: ShopConfig, lang: str, now: datetime) -> dict[str, Any]:
    """The greeting a customer without history sees (not part of the transcript)."""
    catalog = texts(lang)
    body = {
        "from": "shop",
        "text": catalog.t("greeting.new", shop=shop.name.get(catalog.lang)),
        "buttons": [{"label": catalog.t(key), "payload": payload} for key, payload in _INTRO_BUTTONS],
        "at": _iso(now),
        "intro": True,
    }
    return body


def shop_status(shop: ShopConfig, lang: str, now: datetime) -> dict[str, Any]:
    """The welcome frame's ``open`` / ``opens_at`` / ``status``: open or closed now by the shop's
    opening hours (core/opening.py), and when closed the next opening in the shop's zone."""
    catalog = texts(lang)
    state = open_state(shop, now)
    if state.open:
        return {"open": True, "status": catalog.t("widget.status_open")}
    if state.opens_at is None:
        return {"open": False, "status": catalog.t("widget.closed")}
    local = state.opens_at.astimezone(shop.tz)
    days = (local.date() - now.astimezone(shop.tz).date()).days
    hour = local.strftime("%H:%M")
    if days == 0:
        status = catalog.t("widget.closed_today", time=hour)
    elif days == 1:
        status = catalog.t("widget.closed_tomorrow", time=hour)
    else:
        status = catalog.t("widget.closed_later", day=catalog.format_date(local.date()), time=hour)
    return {"open": False, "opens_at": _iso(state.opens_at), "status": status}


def _customer_lang(value: object) -> str | None:
    """A well-formed browser tag (at most 35 characters) as our language (core.i18n)."""
    if not isinstance(value, str) or len(value) > 35 or not _LANG_RE.match(value):
        return None
    return language_tag(value)


# --------------------------------------------------------------------------- outbound


class WebSender:
    """ChannelSender for the widget: pushes to the customer's open sockets."""

    channel = CHANNEL

    def __init__(self, ctx: ChannelContext, limiter: Limiter | None = None) -> None:
        self.ctx = ctx
        self.hub = hub_of(ctx)
        self.limiter = limiter or Limiter()

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
        frame = {"type": "push", "messages": [render_message(message, self.ctx.clock.now())]}
        delivered = 0
        for ws in self.hub.sockets(shop_id, external_id):
            if await _send(ws, frame):
                delivered += 1
        if not delivered:
            raise DeliveryError(reason="not connected", permanent=False)
        return f"web:{uuid.uuid4().hex}"


async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> bool:
    if ws.closed:
        return False
    try:
        await ws.send_str(json.dumps(frame, ensure_ascii=False))
    except (ConnectionError, RuntimeError):
        return False
    return True


# --------------------------------------------------------------------------- inbound


class FrameError(Exception):
    def __init__(self, code: str, message: str, in_reply_to: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.in_reply_to = in_reply_to


def parse_frame(data: str) -> dict[str, Any]:
    """A client frame, validated; raises FrameError with a code for the error frame."""
    try:
        frame = json.loads(data)
    except ValueError:
        raise FrameError("bad_json", "frames are JSON objects") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", "frames are JSON objects")
    kind = frame.get("type")
    if kind == "hello":
        token = frame.get("token")
        if token is not None and not isinstance(token, str):
            raise FrameError("bad_frame", "token must be a string")
        return {"type": "hello", "token": token, "lang": _customer_lang(frame.get("lang"))}
    if kind not in ("message", "press"):
        raise FrameError("bad_frame", "type must be hello, message or press")
    client_id = frame.get("id")
    if not isinstance(client_id, str) or not _ID_RE.match(client_id):
        raise FrameError("bad_id", "id must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    if kind == "message":
        text = frame.get("text")
        if not isinstance(text, str):
            raise FrameError("bad_frame", "text must be a string", client_id)
        text = text.strip()[:MAX_TEXT]
        if not text:
            raise FrameError("empty", "text is empty", client_id)
        return {"type": "message", "id": client_id, "text": text}
    payload, label = frame.get("payload"), frame.get("label", "")
    if not isinstance(payload, str) or not payload or len(payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise FrameError("bad_frame", f"payload must be a string of 1-{MAX_PAYLOAD_BYTES} bytes", client_id)
    if not isinstance(label, str):
        raise FrameError("bad_frame", "label must be a string", client_id)
    return {"type": "press", "id": client_id, "payload": payload, "label": label.strip()[:MAX_LABEL]}


@dataclass
class _Session:
    shop_id: str
    external_id: str
    lang: str | None
    address: str = ""
    known: bool = False  # the customer has a conversation already (history was not empty)
    sent: bool = False  # a message of this session went through (the customer exists now)


class WidgetRoutes:
    def __init__(self, ctx: ChannelContext, limiter: Limiter | None = None) -> None:
        self.ctx = ctx
        self.hub = hub_of(ctx)
        self.limiter = limiter or Limiter()
        self.script = (STATIC / "widget.js").read_text(encoding="utf-8")
        self.styles = (STATIC / "widget.css").read_bytes()
        self.demo_styles = (STATIC / "demo.css").read_bytes()
        self.demo_template = (STATIC / "demo.html").read_text(encoding="utf-8")

    # ------------------------------------------------------------------ helpers

    def shop(self, request: web.Request) -> tuple[str, ShopConfig]:
        shop_id = request.match_info["shop"]
        shop = self.ctx.config.shops.get(shop_id)
        if shop is None or not shop.channels.web.enabled:
            raise web.HTTPNotFound(text="no chat widget here")
        return shop_id, shop

    def origin_allowed(self, request: web.Request, shop: ShopConfig) -> bool:
        origin = request.headers.get("Origin", "")
        parts = urlsplit(origin.strip().lower())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        if parts.netloc == request.host.lower():
            return True  # the demo page on this server (scheme may differ behind a TLS proxy)
        allowed = {o.strip().lower().rstrip("/") for o in shop.channels.web.allowed_origins}
        return f"{parts.scheme}://{parts.netloc}" in allowed

    # ------------------------------------------------------------------ assets

    async def script_route(self, request: web.Request) -> web.Response:
        shop_id, shop = self.shop(request)
        config = {"shop": shop_id, "kind": shop.kind, "name": {"zh": shop.name.zh, "en": shop.name.en}}
        body = self.script.replace("/*CHATBOOK_CONFIG*/null", json.dumps(config, ensure_ascii=True), 1)
        return web.Response(text=body, content_type="text/javascript", charset="utf-8", headers=dict(_ASSET_HEADERS))

    async def styles_route(self, request: web.Request) -> web.Response:
        self.shop(request)
        return web.Response(body=self.styles, content_type="text/css", charset="utf-8", headers=dict(_ASSET_HEADERS))

    async def demo_styles_route(self, request: web.Request) -> web.Response:
        self.shop(request)
        return web.Response(
            body=self.demo_styles, content_type="text/css", charset="utf-8", headers=dict(_ASSET_HEADERS)
        )

    async def demo_route(self, request: web.Request) -> web.Response:
        shop_id, shop = self.shop(request)
        lang = _customer_lang(request.query.get("lang")) or shop.default_language
        catalog = texts(lang)
        services = "".join(
            f'<li><span class="svc">{html.escape(s.name.get(lang))}</span>'
            f'<span class="meta">{s.duration_min} min · {html.escape(catalog.format_price(s.price))}</span></li>'
            for s in shop.services.values()
        )
        values = {
            "lang": lang,
            "shop": html.escape(shop_id),
            "kind": html.escape(shop.kind),
            "name": html.escape(shop.name.get(lang)),
            "address": html.escape(shop.address.get(lang)),
            "phone": html.escape(shop.phone or ""),
            "services": services,
            "tagline": html.escape(catalog.t(f"widget.tagline_{shop.kind}")),
            "services_title": html.escape(catalog.t("widget.demo_services_title")),
            "hint": html.escape(catalog.t("widget.demo_hint")),
            "steps_title": html.escape(catalog.t("widget.demo_steps_title")),
            "steps": "".join(f"<li>{html.escape(step)}</li>" for step in catalog.list("widget.demo_steps")),
        }
        page = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], self.demo_template)
        headers = {
            "Content-Security-Policy": DEMO_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }
        return web.Response(text=page, content_type="text/html", charset="utf-8", headers=headers)

    # ------------------------------------------------------------------ the socket

    async def socket_route(self, request: web.Request) -> web.WebSocketResponse:
        shop_id, shop = self.shop(request)
        if not self.origin_allowed(request, shop):
            raise web.HTTPForbidden(text="origin not allowed")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        session: _Session | None = None
        queue: asyncio.Queue[tuple[str, IncomingMessage] | None] = asyncio.Queue(QUEUE_LIMIT)
        try:
            async for frame_msg in ws:
                if frame_msg.type == WSMsgType.BINARY:
                    await _send_error(ws, FrameError("bad_frame", "frames are JSON text"))
                    continue
                if frame_msg.type != WSMsgType.TEXT:
                    break  # an error (e.g. a frame over the size limit): aiohttp has closed
                try:
                    frame = parse_frame(frame_msg.data)
                    if frame["type"] != "hello":
                        await self.accept(ws, shop, session, queue, frame)
                        continue
                    if session is not None:
                        raise FrameError("bad_frame", "hello was already sent")
                    session = await self.hello(ws, shop_id, shop, frame, request.remote or "")
                    if session is None:
                        break  # too many new sessions from this address: told, and closed
                    self.ctx.spawn(self.worker(ws, queue))
                except FrameError as exc:
                    await _send_error(ws, exc)
        finally:
            if session is not None:
                self.hub.remove(session.shop_id, session.external_id, ws)
                await _put_sentinel(queue)
        return ws

    async def accept(
        self,
        ws: web.WebSocketResponse,
        shop: ShopConfig,
        session: _Session | None,
        queue: asyncio.Queue[tuple[str, IncomingMessage] | None],
        frame: dict[str, Any],
    ) -> None:
        """A message or press frame: limited, stored (durable inbox: before the ack) and queued
        for the socket's worker; FrameError says why not."""
        if session is None:
            raise FrameError("hello_first", "send hello first", frame.get("id"))
        new_customer = not session.known and not session.sent
        if not self.limiter.message(session.address, session.external_id, new_customer=new_customer):
            lang = session.lang or shop.default_language
            raise FrameError("rate_limited", texts(lang).t("limits.too_many_messages"), frame["id"])
        incoming = self.incoming(session, frame)
        if queue.full():
            raise FrameError("busy", "too many messages at once", frame["id"])
        if self.ctx.inbox is not None:  # durable: stored before the ack
            try:
                await self.ctx.inbox.accept(incoming, wait=True)
            except InboxBusy:
                raise FrameError("busy", "too many messages at once", frame["id"]) from None
            await _send(ws, {"type": "ack", "id": frame["id"]})
        queue.put_nowait((frame["id"], incoming))
        session.sent = True

    async def hello(
        self, ws: web.WebSocketResponse, shop_id: str, shop: ShopConfig, frame: dict[str, Any], address: str = ""
    ) -> _Session | None:
        now = self.ctx.clock.now()
        token = frame["token"]
        if not token_valid(token, now):
            if not self.limiter.new_session(address):
                lang = frame["lang"] or shop.default_language
                await _send_error(ws, FrameError("too_many_sessions", texts(lang).t("limits.too_many_sessions")))
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many new sessions")
                return None
            token = issue_token(now)
        session = _Session(shop_id, external_id_of(token), frame["lang"], address=address)
        lang = session.lang or shop.default_language
        await _send(ws, {"type": "welcome", "token": token, **shop_status(shop, lang, now)})
        messages: list[dict[str, Any]] = []
        if self.ctx.inbox is not None and self.ctx.history is not None:
            # the history below shows whatever was still waiting for them: not pushed again
            await self.ctx.inbox.caught_up(shop_id, CHANNEL, session.external_id)
        if self.ctx.history is not None:
            try:
                lines = await self.ctx.history(shop_id, CHANNEL, session.external_id)
                session.known = bool(lines)
                messages = render_history(lines)
            except Exception:
                log.exception("widget: could not load the history of a %s chat", shop_id)
        if not messages:
            messages = [intro_message(shop, lang, now)]
        await _send(ws, {"type": "history", "messages": messages})
        self.hub.add(shop_id, session.external_id, ws)
        return session

    def incoming(self, session: _Session, frame: dict[str, Any]) -> IncomingMessage:
        pressed = frame["type"] == "press"
        return IncomingMessage(
            shop_id=session.shop_id,
            channel=CHANNEL,
            user_id=session.external_id,
            message_id=f"web:{session.external_id}:{frame['id']}",
            text=frame["label"] if pressed else frame["text"],
            payload=frame["payload"] if pressed else None,
            kind="button" if pressed else "text",
            language_hint=session.lang,
            received_at=self.ctx.clock.now(),
        )

    async def worker(self, ws: web.WebSocketResponse, queue: asyncio.Queue[tuple[str, IncomingMessage] | None]) -> None:
        """Hands one socket's messages to the engine in order. A reply for a socket that closed
        meanwhile is dropped: the client resends the same id and gets the stored reply."""
        while (item := await queue.get()) is not None:
            client_id, msg = item
            await _send(ws, {"type": "typing"})
            if self.ctx.inbox is not None:
                await self._durable_reply(ws, client_id, msg)
                continue
            try:
                replies = await self.ctx.engine.handle(msg)
            except Exception:
                log.exception("widget: the engine failed on a %s message", msg.shop_id)
                await _send_error(ws, FrameError("failed", "something went wrong, please try again", client_id))
                continue
            await _send(ws, _reply_frame(client_id, msg, replies, self.ctx.clock.now()))

    async def _durable_reply(self, ws: web.WebSocketResponse, client_id: str, msg: IncomingMessage) -> None:
        """The turn's replies as the reply frame (their outbox rows then count as sent); when the
        turn is slow, or the socket is gone, the outbox pushes them instead."""
        inbox = self.ctx.inbox
        assert inbox is not None
        answer = await inbox.result(msg, REPLY_WAIT_SECONDS, replay=True)
        if answer is None:
            return
        if await _send(ws, _reply_frame(client_id, msg, answer.replies, self.ctx.clock.now())):
            await inbox.delivered(answer)
        else:
            await inbox.undelivered(answer)

    async def close_all(self, app: web.Application) -> None:
        for ws in self.hub.all():
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def _reply_frame(
    client_id: str, msg: IncomingMessage, replies: Iterable[OutgoingMessage], now: datetime
) -> dict[str, Any]:
    """The reply frame answering the client's ``client_id`` with the turn's messages."""
    return {
        "type": "reply",
        "in_reply_to": client_id,
        "received_at": _iso(msg.received_at or now),
        "messages": [render_message(m, now) for m in replies],
    }


async def _send_error(ws: web.WebSocketResponse, exc: FrameError) -> None:
    frame: dict[str, Any] = {"type": "error", "code": exc.code, "message": exc.message}
    if exc.in_reply_to is not None:
        frame["in_reply_to"] = exc.in_reply_to
    await _send(ws, frame)


async def _put_sentinel(queue: asyncio.Queue[Any]) -> None:
    while True:
        try:
            queue.put_nowait(None)
            return
        except asyncio.QueueFull:
            queue.get_nowait()  # the socket is gone: drop waiting work, its client resends it


def register(app: web.Application, ctx: ChannelContext, *, limiter: Limiter | None = None) -> None:
    """Add the widget's routes to ``app``; sockets are closed on shutdown."""
    routes = WidgetRoutes(ctx, limiter)
    app.router.add_get("/widget/{shop}.js", routes.script_route)
    app.router.add_get("/widget/{shop}.css", routes.styles_route)
    app.router.add_get("/widget/{shop}/ws", routes.socket_route)
    app.router.add_get("/widget/{shop}/demo.css", routes.demo_styles_route)
    app.router.add_get("/widget/{shop}", routes.demo_route)
    app.on_shutdown.append(routes.close_all)
