"""Telegram channel: python-telegram-bot's real client inside our aiohttp server.

Inbound, webhook mode: ``POST /telegram/{shop}`` checks the shop, the
``X-Telegram-Bot-Api-Secret-Token`` header (constant time), the content type and the JSON body,
parses it with ``telegram.Update.de_json``. Durable path (``ctx.inbox`` set, as in `serve`): the
update is committed to the inbox (bot/inbox.py) and only THEN answered 200 (Telegram never
redelivers an update it got a 200 for); a worker hands it to the engine and the replies leave
through the outbox (so a Bot API outage delays them, never drops them); a process that is
stopping answers 503 so Telegram retries elsewhere. Without an inbox (tests with a stand-in
engine) it answers 200 at once and handles the update in a background task. Polling mode
(``mode: polling``) runs PTB's ``Updater`` and feeds the same handler. Each update becomes one
``IncomingMessage`` (``message_id = "tg:<update_id>"``, the engine's dedupe key); updates of one
chat are handled one after another, in arrival order. A tapped inline button is answered
(answerCallbackQuery) and its keyboard edited away, so an old button cannot be pressed twice.
Only private chats reach the engine (a group is not a customer).

The webhook secret is ``secret_token`` from the config, or, when none is set, one derived from
the bot token (HMAC), so the route is never open and every process sharing the config agrees.

Redelivery: the inbox's unique key ``tg:<update_id>`` stores an update once, whichever process
gets it. (Without an inbox: an in-memory LRU per bot drops ids this process accepted, and the
engine's claim of ``message_id`` in the database keeps another process from booking twice.)

Outbound: ``TelegramSender.send`` is the one send function: text with an inline keyboard
(2 buttons a row, callback data = payload, at most 64 bytes), a photo with caption, a link as a
URL button. Telegram errors become ``DeliveryError``s. Webhook and polling replies go through
it too, unless ``register(..., push=...)`` routes them elsewhere (the outbox). All senders built
on one ``ChannelContext`` share one ``ExtBot`` per shop: one getMe, one rate limit per bot.

Why ``ExtBot`` + ``AIORateLimiter`` rather than a PTB ``Application``: the conversation logic is
our engine, so PTB's handler/dispatch machinery, its update queue and job queue would only add a
second dispatcher (and serialise every update behind one queue). ``ExtBot`` is the piece that
carries a rate limiter; ``Updater`` is used on its own for polling (its backoff and offset
handling are proven).

Rate limits: ~30 messages/s per bot and 20/min per group (``AIORateLimiter``); per private chat
a token bucket of ``Limits.chat_burst`` messages refilled at ``Limits.chat_per_second``. A 429
is waited out in-process (``retry_after``, at most ``Limits.max_retries`` times) unless Telegram
asks for more than ``Limits.max_wait`` seconds: then the caller gets
``DeliveryError(retry_after=...)`` and the outbox retries later.

Tokens never reach the logs: PTB and httpx put them into request URLs and error messages, so a
logging filter masks them (``123456:***``) on those loggers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import warnings
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, ExtBot, Updater

from channels.base import ChannelContext, DeliveryError, InboxBusy
from core.config import TelegramConfig
from core.messages import MAX_PAYLOAD_BYTES, IncomingMessage, MessageKind, OutgoingMessage

log = logging.getLogger(__name__)

CHANNEL = "telegram"
ALLOWED_UPDATES = ("message", "callback_query")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_API = "https://api.telegram.org"
MAX_TEXT = 4096  # sendMessage text limit (characters)
MAX_CAPTION = 1024  # sendPhoto caption limit
BUTTONS_PER_ROW = 2
POLL_TIMEOUT = timedelta(seconds=10)  # long-polling wait of getUpdates
SEEN_UPDATES = 10_000  # update ids remembered per bot to drop redeliveries before the engine
DRAIN_SECONDS = 10.0  # at shutdown, how long in-flight updates may finish
MAX_BACKLOG = 256  # updates accepted but not yet handled, per process; beyond it: 503 and Telegram retries
CHECK_SECONDS = 10.0  # `channels check`: how long getMe may take
SEND_ENDPOINTS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "sendSticker", "sendLocation", "copyMessage"}
)
Push = Callable[[str, str, list[OutgoingMessage]], Awaitable[None]]  # (shop, chat id, replies)
CHAT_GONE = ("chat not found", "user is deactivated", "bot was blocked", "bot was kicked", "peer_id_invalid")


# ----------------------------------------------------------------------------- secrets in logs

_TOKEN_RE = re.compile(r"\b(\d{3,}):[A-Za-z0-9_-]{20,}")
_known_secrets: set[str] = set()  # bot tokens and webhook secrets seen by this process


def mask_token(token: str) -> str:
    """``123456:ABC...`` -> ``123456:***`` (the bot id is public, the rest is the secret)."""
    bot_id, colon, _ = token.partition(":")
    return f"{bot_id}:***" if colon and bot_id.isdigit() else "***"


def redact(text: str) -> str:
    """``text`` with every bot token (and webhook secret) in it masked."""
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, mask_token(secret))
    return _TOKEN_RE.sub(r"\1:***", text)


class _RedactTokens(logging.Filter):
    """Masks tokens in records of PTB and httpx (request URLs contain ``/bot<TOKEN>/``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


_REDACTOR = _RedactTokens()
_REDACTED_LOGGERS = (
    "httpx",
    "telegram",
    "telegram.Bot",
    "telegram.ext",
    "telegram.ext.ExtBot",
    "telegram.ext.Updater",
    "telegram.ext.AIORateLimiter",
    "telegram.request.BaseRequest",
    "telegram.request.HTTPXRequest",
    __name__,
)


def _protect(secret: str) -> None:
    """Mask ``secret`` wherever PTB, httpx or this module would log it."""
    _known_secrets.add(secret)
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return redact(str(text))


def webhook_secret(shop_id: str, cfg: TelegramConfig) -> str:
    """The secret Telegram must echo in ``X-Telegram-Bot-Api-Secret-Token``.

    ``secret_token`` from the config when set; otherwise one derived from the bot token, so the
    webhook is never open and every server process sharing the config agrees on it.
    """
    if cfg.secret_token:
        return cfg.secret_token
    return hmac.new(cfg.token.encode(), f"chatbook-webhook:{shop_id}".encode(), hashlib.sha256).hexdigest()


# ----------------------------------------------------------------------------- rate limiting


@dataclass(frozen=True)
class Limits:
    """Outgoing pace per bot. Telegram: ~30 messages/s overall, ~1/s in one chat (short bursts ok)."""

    overall_per_second: float = 30.0
    group_per_minute: float = 20.0
    chat_per_second: float = 1.0
    chat_burst: int = 3
    max_retries: int = 2  # 429s waited out in-process before the caller gets DeliveryError
    max_wait: float = 30.0  # a longer retry_after is handed to the caller at once


@dataclass
class ChatPacer:
    """A token bucket per chat: ``burst`` messages at once, then ``rate`` per second.

    ``reserve(chat)`` books the next send and says how long to wait before it.
    """

    rate: float = 1.0
    burst: int = 3
    now: Callable[[], float] = time.monotonic
    _buckets: dict[Any, tuple[float, float]] = field(default_factory=dict)

    def reserve(self, chat: Any) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.now()
        tokens, last = self._buckets.get(chat, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate) - 1
        self._buckets[chat] = (tokens, now)
        if len(self._buckets) > 10_000:
            self._forget_idle(now)
        return 0.0 if tokens >= 0 else -tokens / self.rate

    def _forget_idle(self, now: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]


class _WaitTooLong(TelegramError):
    """Telegram asked to wait longer than we hold a sender for."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Flood control exceeded. Retry in {seconds:g} seconds")
        self.seconds = seconds


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 deprecates the int form; accept both
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _Limiter(AIORateLimiter):
    """AIORateLimiter plus a per-chat pace, and no in-process wait longer than ``max_wait``."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(
            overall_max_rate=limits.overall_per_second,
            overall_time_period=1,
            group_max_rate=limits.group_per_minute,
            group_time_period=60,
            max_retries=limits.max_retries,
        )
        self._limits = limits
        self._pacer = ChatPacer(rate=limits.chat_per_second, burst=limits.chat_burst)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        chat_id = data.get("chat_id")
        if endpoint in SEND_ENDPOINTS and chat_id is not None:
            delay = self._pacer.reserve(chat_id)
            if delay > 0:
                await asyncio.sleep(delay)

        async def bounded(*a: Any, **kw: Any) -> bool | dict[str, Any] | list[dict[str, Any]]:
            try:
                return await callback(*a, **kw)
            except RetryAfter as exc:
                seconds = _retry_seconds(exc)
                if seconds > self._limits.max_wait:
                    raise _WaitTooLong(seconds) from exc
                raise

        return await super().process_request(bounded, args, kwargs, endpoint, data, rate_limit_args)


def build_bot(cfg: TelegramConfig, limits: Limits | None = None) -> ExtBot[Any]:
    """A PTB bot whose requests go to ``api_base_url`` (a local Bot API server, a proxy, a fake)."""
    _protect(cfg.token)
    base = (cfg.api_base_url or DEFAULT_API).rstrip("/")
    return ExtBot(
        token=cfg.token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        rate_limiter=_Limiter(limits or Limits()),
    )


# ----------------------------------------------------------------------------- rendering


def _url_button_ok(url: str) -> bool:
    return url.startswith(("https://", "http://", "tg://"))


def render(message: OutgoingMessage) -> tuple[str, InlineKeyboardMarkup | None]:
    """Text and inline keyboard for one reply.

    Buttons go 2 a row with the payload as callback data; a payload Telegram cannot carry
    (empty, over 64 bytes of UTF-8) is shown as a numbered line instead (typing the number
    presses it). A link becomes a URL button (or a text line for schemes Telegram refuses).
    """
    text = message.text
    rows: list[list[InlineKeyboardButton]] = []
    row: list[InlineKeyboardButton] = []
    numbered: list[str] = []
    for number, button in enumerate(message.buttons, start=1):
        size = len(button.payload.encode("utf-8"))
        if not 1 <= size <= MAX_PAYLOAD_BYTES:
            numbered.append(f"{number}. {button.label}")
            continue
        row.append(InlineKeyboardButton(button.label, callback_data=button.payload))
        if len(row) == BUTTONS_PER_ROW:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    if message.link:
        label, url = message.link
        if _url_button_ok(url):
            rows.append([InlineKeyboardButton(label, url=url)])
        else:
            text = f"{text}\n{label}: {url}"
    if numbered:
        text = "\n".join([text, *numbered])
    return text, InlineKeyboardMarkup(rows) if rows else None


def _chunks(text: str, size: int) -> list[str]:
    """Split text into pieces of at most ``size`` characters, at line breaks when possible."""
    pieces: list[str] = []
    while len(text) > size:
        cut = text.rfind("\n", 0, size)
        cut = cut if cut > 0 else size
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    pieces.append(text)
    return pieces


def _chat_id(external_id: str) -> int | str:
    try:
        return int(external_id)
    except ValueError:
        return external_id  # "@channelusername"


# ----------------------------------------------------------------------------- outbound


@dataclass
class _Bots:
    """One ``ExtBot`` per Telegram shop, shared by everything built on one ``ChannelContext``."""

    limits: Limits
    configs: dict[str, TelegramConfig]
    bots: dict[str, ExtBot[Any]]
    ready: set[str] = field(default_factory=set)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)


_SHARED: dict[int, _Bots] = {}  # id(ChannelContext) -> its bots, dropped with the context


def _bots_for(ctx: ChannelContext, limits: Limits | None) -> _Bots:
    shared = _SHARED.get(id(ctx))
    if shared is None:
        chosen = limits or Limits()
        configs = {
            shop_id: shop.channels.telegram
            for shop_id, shop in ctx.config.shops.items()
            if shop.channels.telegram is not None and shop.channels.telegram.enabled
        }
        bots = {shop_id: build_bot(cfg, chosen) for shop_id, cfg in configs.items()}
        shared = _Bots(chosen, configs, bots, locks={shop_id: asyncio.Lock() for shop_id in bots})
        _SHARED[id(ctx)] = shared
        weakref.finalize(ctx, _SHARED.pop, id(ctx), None)
    elif limits is not None and limits != shared.limits:
        raise ValueError("this context's Telegram bots already exist with other limits")
    return shared


class TelegramSender:
    """The one way messages reach Telegram (replies, staff messages, reminders).

    Every ``TelegramSender(ctx)`` (and ``register(app, ctx)``) of one context shares one
    ``ExtBot`` per shop, so one process makes one getMe per bot and keeps one rate limit per bot.
    ``start()`` initializes the bots; ``close()`` releases their connections (a later send opens
    them again). Usable on its own as an async context manager.
    """

    channel = CHANNEL

    def __init__(self, ctx: ChannelContext, *, limits: Limits | None = None) -> None:
        self.ctx = ctx
        self._shared = _bots_for(ctx, limits)
        self.limits = self._shared.limits
        self.configs = self._shared.configs
        self.bots = self._shared.bots
        self._ready = self._shared.ready
        self._init_locks = self._shared.locks

    async def __aenter__(self) -> TelegramSender:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Initialize every bot (getMe); a failing shop is logged and retried on first use."""
        await asyncio.gather(*(self._initialize(shop_id) for shop_id in self.bots), return_exceptions=True)

    async def close(self) -> None:
        for shop_id, bot in self.bots.items():
            try:
                await bot.shutdown()
            except Exception as exc:  # closing must go on for the other shops
                log.warning("telegram %s: shutdown failed: %s", shop_id, _describe(exc))
        self._ready.clear()

    async def _initialize(self, shop_id: str) -> None:
        async with self._init_locks[shop_id]:
            if shop_id in self._ready:
                return
            try:
                await self.bots[shop_id].initialize()
            except InvalidToken as exc:
                log.error(
                    "telegram %s: the bot token %s was rejected", shop_id, mask_token(self.configs[shop_id].token)
                )
                raise DeliveryError("telegram: the bot token was rejected") from exc
            except TelegramError as exc:
                log.error("telegram %s: getMe failed: %s", shop_id, _describe(exc))
                raise DeliveryError(f"telegram: getMe failed: {_describe(exc)}") from exc
            self._ready.add(shop_id)
            me = self.bots[shop_id].bot
            log.info("telegram %s: bot @%s ready", shop_id, me.username)

    async def bot(self, shop_id: str) -> ExtBot[Any]:
        """The shop's bot, initialized; DeliveryError when the shop has no Telegram bot."""
        bot = self.bots.get(shop_id)
        if bot is None:
            raise DeliveryError(f"telegram is not configured for shop {shop_id!r}", permanent=True)
        if shop_id not in self._ready:
            await self._initialize(shop_id)
        return bot

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None:
        """Send one message to one chat; returns Telegram's message id (of the last part)."""
        bot = await self.bot(shop_id)
        chat_id = _chat_id(external_id)
        try:
            try:
                sent = await self._send(bot, chat_id, message, rich=True)
            except BadRequest as exc:
                if not (message.image_url or message.link) or _chat_gone(exc):
                    raise
                log.warning("telegram %s: rich message refused (%s); sending it as text", shop_id, _describe(exc))
                sent = await self._send(bot, chat_id, message, rich=False)
        except Forbidden as exc:
            raise DeliveryError(f"telegram: {_describe(exc)}", permanent=True) from exc
        except RetryAfter as exc:
            raise DeliveryError("telegram: flood control", retry_after=_retry_seconds(exc)) from exc
        except _WaitTooLong as exc:
            raise DeliveryError("telegram: flood control", retry_after=exc.seconds) from exc
        except ChatMigrated as exc:
            raise DeliveryError(f"telegram: chat moved to {exc.new_chat_id}", permanent=True) from exc
        except InvalidToken as exc:
            raise DeliveryError("telegram: the bot token was rejected") from exc
        except BadRequest as exc:  # the same request would be refused again
            raise DeliveryError(f"telegram: {_describe(exc)}", permanent=True) from exc
        except NetworkError as exc:  # includes TimedOut
            raise DeliveryError(f"telegram: network error: {_describe(exc)}") from exc
        except TelegramError as exc:
            raise DeliveryError(f"telegram: {_describe(exc)}") from exc
        return str(sent.message_id) if sent is not None else None

    async def _send(
        self, bot: ExtBot[Any], chat_id: int | str, message: OutgoingMessage, *, rich: bool
    ) -> Message | None:
        """``rich``: photo and URL button; otherwise both become text lines (the fallback)."""
        image = message.image_url if rich else None
        if rich:
            text, markup = render(message)
        else:
            text, markup = render(OutgoingMessage(text=message.text, buttons=message.buttons))
            extra = [f"{message.link[0]}: {message.link[1]}"] if message.link else []
            text = "\n".join([text, *extra, *([message.image_url] if message.image_url else [])])
        last: Message | None = None
        if image:
            if len(text) <= MAX_CAPTION:
                return await bot.send_photo(chat_id, image, caption=text or None, reply_markup=markup)
            last = await bot.send_photo(chat_id, image)
        parts = [p for p in _chunks(text, MAX_TEXT) if p.strip()]
        for index, part in enumerate(parts):
            last = await bot.send_message(chat_id, part, reply_markup=markup if index == len(parts) - 1 else None)
        return last

    async def answer_callback(self, shop_id: str, callback_id: str) -> None:
        """Stop the button's spinner. Failures are logged, never raised."""
        try:
            bot = await self.bot(shop_id)
            await bot.answer_callback_query(callback_id)
        except (TelegramError, DeliveryError) as exc:
            log.warning("telegram %s: answerCallbackQuery failed: %s", shop_id, _describe(exc))

    async def remove_keyboard(self, shop_id: str, chat_id: int, message_id: int) -> None:
        """Edit a message's inline keyboard away so its buttons cannot be pressed again."""
        try:
            bot = await self.bot(shop_id)
            await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id, reply_markup=None)
        except (TelegramError, DeliveryError) as exc:  # e.g. "message is not modified", too old
            log.info("telegram %s: could not remove a keyboard: %s", shop_id, _describe(exc))


def _chat_gone(exc: TelegramError) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in CHAT_GONE)


# ----------------------------------------------------------------------------- inbound


@dataclass
class _ChatLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class TelegramChannel:
    """The webhook route, the pollers and the update handler of every Telegram shop."""

    def __init__(self, ctx: ChannelContext, sender: TelegramSender, push: Push | None = None) -> None:
        self.ctx = ctx
        self.sender = sender
        self.push = push or self.send_now
        self.configs = sender.configs
        self.secrets = {shop_id: webhook_secret(shop_id, cfg) for shop_id, cfg in self.configs.items()}
        for secret in self.secrets.values():
            _protect(secret)  # PTB logs setWebhook's parameters at DEBUG
        self._seen: dict[str, OrderedDict[int, None]] = {}
        self._chats: dict[tuple[str, int], _ChatLock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pollers: dict[str, asyncio.Task[None]] = {}
        self._updaters: dict[str, Updater] = {}
        self._polling: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        await self.start()
        yield
        await self.stop()

    async def start(self) -> None:
        await self.sender.start()
        public_url = self.ctx.config.server.public_url
        for shop_id, cfg in self.configs.items():
            if cfg.mode == "polling":
                self._pollers[shop_id] = asyncio.get_running_loop().create_task(
                    self._poll(shop_id), name=f"telegram-poll-{shop_id}"
                )
            elif public_url:
                await self._set_webhook(shop_id, f"{public_url.rstrip('/')}/telegram/{shop_id}")
            else:
                log.warning(
                    "telegram %s: webhook mode but server.public_url is not set: setWebhook skipped "
                    "(set public_url or use mode: polling)",
                    shop_id,
                )

    async def _set_webhook(self, shop_id: str, url: str) -> None:
        try:
            bot = await self.sender.bot(shop_id)
            await bot.set_webhook(url=url, secret_token=self.secrets[shop_id], allowed_updates=list(ALLOWED_UPDATES))
            log.info("telegram %s: webhook set to %s", shop_id, url)
        except (TelegramError, DeliveryError) as exc:
            log.error("telegram %s: setWebhook failed: %s", shop_id, _describe(exc))

    async def stop(self) -> None:
        for shop_id, task in self._pollers.items():
            updater = self._updaters.get(shop_id)
            if shop_id not in self._polling:
                task.cancel()
            if updater is not None and updater.running:
                try:
                    await updater.stop()  # its last getUpdates confirms what was fetched
                except Exception as exc:
                    log.warning("telegram %s: stopping polling failed: %s", shop_id, _describe(exc))
            if updater is not None:
                while not updater.update_queue.empty():
                    update = updater.update_queue.get_nowait()
                    if isinstance(update, Update):
                        if self.ctx.inbox is None:
                            self.accept(shop_id, update, update.to_dict())
                        else:
                            with contextlib.suppress(InboxBusy):
                                await self.store(shop_id, update, update.to_dict())
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pollers.clear()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=DRAIN_SECONDS)
            for task in pending:
                task.cancel()
        await self.sender.close()

    async def _poll(self, shop_id: str) -> None:
        updater = Updater(bot=self.sender.bots[shop_id], update_queue=asyncio.Queue())
        self._updaters[shop_id] = updater
        delay = 1.0
        while True:
            try:
                await updater.initialize()
                queue = await updater.start_polling(
                    timeout=POLL_TIMEOUT, allowed_updates=list(ALLOWED_UPDATES), drop_pending_updates=False
                )
                break
            except TelegramError as exc:
                log.error("telegram %s: cannot start polling (%s); retrying in %.0f s", shop_id, _describe(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300.0)
        self._polling.add(shop_id)
        log.info("telegram %s: polling for updates", shop_id)
        while True:
            update = await queue.get()
            if not isinstance(update, Update):
                continue
            if self.ctx.inbox is None:
                self.accept(shop_id, update, update.to_dict())
                continue
            await self._store_polled(shop_id, update)

    async def _store_polled(self, shop_id: str, update: Update) -> None:
        delay = 0.5
        while True:  # the poller confirms an update with its next getUpdates: store it first
            try:
                await self.store(shop_id, update, update.to_dict())
                return
            except InboxBusy:
                if self.ctx.inbox is None or getattr(self.ctx.inbox, "stopping", False):
                    return  # not confirmed to Telegram either: it comes again to the next process
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    # ------------------------------------------------------------------ webhook

    async def webhook(self, request: web.Request) -> web.Response:
        shop_id = request.match_info["shop"]
        cfg = self.configs.get(shop_id)
        if cfg is None:
            raise web.HTTPNotFound(text="no Telegram bot for this shop")
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not secrets.compare_digest(given, self.secrets[shop_id].encode("utf-8")):
            log.warning("telegram %s: webhook call with a wrong or missing secret token", shop_id)
            raise web.HTTPForbidden(text="wrong secret token")
        if request.content_type != "application/json":
            raise web.HTTPBadRequest(text="expected application/json")
        if self.ctx.inbox is None and len(self._tasks) >= MAX_BACKLOG:
            # Overloaded: let Telegram keep the update and retry it later rather than pile up
            # work we cannot do (a 2xx would make it ours to lose).
            raise web.HTTPServiceUnavailable(text="busy, retry later", headers={"Retry-After": "1"})
        body = await request.read()  # over client_max_size: aiohttp answers 413
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="malformed JSON") from None
        if not isinstance(data, dict) or type(data.get("update_id")) is not int:
            raise web.HTTPBadRequest(text="not a Telegram update")
        try:
            update = Update.de_json(data, self.sender.bots[shop_id])
        except Exception:
            raise web.HTTPBadRequest(text="not a Telegram update") from None
        if self.ctx.inbox is None:
            self.accept(shop_id, update, data)
            return web.Response(status=200)
        try:
            await self.store(shop_id, update, data)
        except InboxBusy:
            raise web.HTTPServiceUnavailable(text="busy, retry later", headers={"Retry-After": "1"}) from None
        return web.Response(status=200)  # only now: the update is in the database

    async def store(self, shop_id: str, update: Update, raw: dict[str, Any]) -> bool:
        """Durable path: the update is committed to the inbox before Telegram gets its 200 (or
        the poller fetches more); the replies leave through the outbox. False: nothing stored."""
        assert self.ctx.inbox is not None
        chat_id = _private_chat_of(update)
        msg = self._message_of(shop_id, chat_id, update, raw) if chat_id is not None else None
        if msg is None:
            if update.callback_query is not None:
                self._background(self.sender.answer_callback(shop_id, update.callback_query.id))
            return False
        fresh = await self.ctx.inbox.accept(msg)
        if fresh and chat_id is not None and update.callback_query is not None:
            self._background(self._answer_tap(shop_id, chat_id, update))
        return fresh

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = self.ctx.spawn(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ handling

    def accept(self, shop_id: str, update: Update, raw: dict[str, Any]) -> bool:
        """Queue an update for handling, unless this process has seen its id already."""
        seen = self._seen.setdefault(shop_id, OrderedDict())
        if update.update_id in seen:
            log.info("telegram %s: update %s delivered again: ignored", shop_id, update.update_id)
            return False
        seen[update.update_id] = None
        if len(seen) > SEEN_UPDATES:
            seen.popitem(last=False)
        task = self.ctx.spawn(self.process(shop_id, update, raw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def process(self, shop_id: str, update: Update, raw: dict[str, Any]) -> None:
        """Handle one update: to the engine, replies back through the sender. Never raises."""
        chat_id = _private_chat_of(update)
        if chat_id is None:
            if update.callback_query is not None:
                await self.sender.answer_callback(shop_id, update.callback_query.id)
            return
        async with self._chat_turn(shop_id, chat_id):  # one chat's updates in arrival order
            try:
                msg = await self._incoming(shop_id, chat_id, update, raw)
                if msg is None:
                    return
                replies = await self.ctx.engine.handle(msg, replay=False)
            except Exception:
                log.exception("telegram %s: update %s could not be handled", shop_id, update.update_id)
                self._seen.get(shop_id, OrderedDict()).pop(update.update_id, None)
                return
            try:
                await self.push(shop_id, str(chat_id), replies)
            except Exception:
                log.exception("telegram %s: replies to chat %s could not be handed on", shop_id, chat_id)

    async def send_now(self, shop_id: str, chat_id: str, replies: list[OutgoingMessage]) -> None:
        """The default ``push``: each reply straight through ``TelegramSender.send``, in order."""
        for reply in replies:
            try:
                await self.sender.send(shop_id, chat_id, reply)
            except DeliveryError as exc:
                log.warning("telegram %s: reply to chat %s not delivered: %s", shop_id, chat_id, exc.reason)
                if exc.permanent:
                    break

    @contextlib.asynccontextmanager
    async def _chat_turn(self, shop_id: str, chat_id: int) -> AsyncIterator[None]:
        key = (shop_id, chat_id)
        entry = self._chats.get(key)
        if entry is None:
            entry = self._chats[key] = _ChatLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                self._chats.pop(key, None)

    async def _incoming(
        self, shop_id: str, chat_id: int, update: Update, raw: dict[str, Any]
    ) -> IncomingMessage | None:
        await self._answer_tap(shop_id, chat_id, update)
        return self._message_of(shop_id, chat_id, update, raw)

    async def _answer_tap(self, shop_id: str, chat_id: int, update: Update) -> None:
        """A tapped button: stop its spinner and edit its keyboard away (best effort)."""
        query = update.callback_query
        if query is None:
            return
        await self.sender.answer_callback(shop_id, query.id)
        pressed = query.message if isinstance(query.message, Message) else None
        if pressed is not None and pressed.reply_markup is not None:
            await self.sender.remove_keyboard(shop_id, chat_id, pressed.message_id)

    def _message_of(self, shop_id: str, chat_id: int, update: Update, raw: dict[str, Any]) -> IncomingMessage | None:
        """The engine's message for an update (no network calls), or None when it has none."""
        text, payload = "", None
        kind: MessageKind = "text"
        user: User | None
        query = update.callback_query
        if query is not None:
            user = query.from_user
            pressed = query.message if isinstance(query.message, Message) else None
            if pressed is not None:
                text = _label_of(pressed, query.data)
            if not query.data:
                return None  # a game button: nothing for the engine
            payload, kind = query.data, "button"
        elif update.message is not None:
            message = update.message
            user = message.from_user
            text = message.text or message.caption or ""
            if message.photo:
                kind = "image"
            elif message.sticker:
                kind = "sticker"
        else:
            return None
        return IncomingMessage(
            shop_id=shop_id,
            channel=CHANNEL,
            user_id=str(chat_id),
            message_id=f"tg:{update.update_id}",
            text=text,
            payload=payload,
            kind=kind,
            language_hint=user.language_code if user else None,
            display_name=user.first_name if user else "",
            received_at=self.ctx.clock.now(),
            raw=raw,
        )


def _private_chat_of(update: Update) -> int | None:
    """The private chat an update belongs to (groups and channels are not customers)."""
    if update.message is not None:
        chat = update.message.chat
        return chat.id if chat.type == "private" else None
    query = update.callback_query
    if query is not None:
        if query.message is not None:
            chat = query.message.chat
            return chat.id if chat.type == "private" else None
        return query.from_user.id  # a button on an inline message: answer the user privately
    return None


def _label_of(message: Message, data: str | None) -> str:
    if message.reply_markup is None or data is None:
        return ""
    for row in message.reply_markup.inline_keyboard:
        for button in row:
            if button.callback_data == data:
                return button.text
    return ""


# ----------------------------------------------------------------------------- wiring

TELEGRAM_KEY = web.AppKey("chatbook.telegram", TelegramChannel)


def register(
    app: web.Application, ctx: ChannelContext, *, push: Push | None = None, limits: Limits | None = None
) -> None:
    """Add ``POST /telegram/{shop}`` and start/stop every Telegram shop with the app.

    On start-up: getMe per bot, setWebhook (webhook mode, when ``server.public_url`` is set) or
    polling. On cleanup: polling stops, in-flight updates finish (bounded), bots are closed.
    ``push(shop, chat_id, replies)`` is how the engine's replies leave (e.g. via the outbox); by
    default each goes straight through ``TelegramSender.send``.
    """
    channel = TelegramChannel(ctx, TelegramSender(ctx, limits=limits), push)
    app[TELEGRAM_KEY] = channel
    app.router.add_post("/telegram/{shop}", channel.webhook)
    app.cleanup_ctx.append(channel.lifecycle)


def sender_of(app: web.Application) -> TelegramSender:
    """The sender ``register`` uses for this app."""
    return app[TELEGRAM_KEY].sender


async def check(shop_id: str, cfg: TelegramConfig | None) -> tuple[bool, str]:
    """For ``chatbook channels check``: does the token work (getMe)? Never shows the token."""
    if cfg is None:
        return False, "not configured (channels.telegram)"
    if not cfg.enabled:
        return False, "disabled (channels.telegram.enabled: false)"
    masked = mask_token(cfg.token)
    bot = build_bot(cfg)
    where = (cfg.api_base_url or DEFAULT_API).rstrip("/")
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            await bot.initialize()
        return True, f"bot @{bot.bot.username} (token {masked}, {cfg.mode} mode)"
    except InvalidToken:
        return False, f"Telegram rejected the token {masked} (check channels.telegram.token for shop {shop_id})"
    except TimeoutError:
        return False, f"no answer from {where} within {CHECK_SECONDS:g} s"
    except NetworkError as exc:
        return False, f"cannot reach {where}: {_describe(exc)}"
    except TelegramError as exc:
        return False, f"getMe failed: {_describe(exc)}"
    finally:
        with contextlib.suppress(Exception):
            await bot.shutdown()
