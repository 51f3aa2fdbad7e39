"""From WeCom to the engine: ``kf/sync_msg`` pages to IncomingMessages, stored in the inbox.

A callback only says "there is something new" (``kf_msg_or_event`` with a Token valid 10
minutes); the messages are fetched with ``kf/sync_msg`` from the account's cursor. For each
page: the reply windows are updated (a customer message opens 48 h / 5 messages, an
``enter_session`` stores its welcome code), every message is accepted into the durable inbox
under ``wecom:<msgid>`` (a message read twice is stored once), and only then the cursor is moved
(compare and set). Acknowledging the callback before the fetch loses nothing: the messages stay
at WeCom, after our cursor, until they are stored. One sync runs per account in a process at a
time (a callback during a sync makes it run once more); at start-up each account catches up.

Mapping: customer text -> text, a tapped msgmenu option (``text.menu_id``) -> a button press
with that payload; image -> kind "image"; voice, video, file, location, link, mini-program,
business card -> kind "sticker" (the engine asks for text); ``enter_session`` -> kind "event"
with "你好"/"hello" in the shop's language (the engine greets and shows its menu; the greeting
goes out with the welcome code). Messages of servicers (origin 5) and other events are skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from channels.base import ChannelContext, InboxBusy
from channels.wecom.api import WeComError, client_for
from channels.wecom.sender import WeComSender, wecom_config
from channels.wecom.store import CHANNEL, WeComStore
from core.config import ShopConfig
from core.messages import MAX_PAYLOAD_BYTES, IncomingMessage, MessageKind, OutgoingMessage

log = logging.getLogger(__name__)

CUSTOMER, SYSTEM, SERVICER = 3, 4, 5  # a message's origin
WELCOME_SECONDS = 20
MAX_PAGES = 100  # per sync run; the next callback (or run) goes on
SEEN_IN_PROCESS = 10_000


def _sent_at(m: Mapping[str, Any]) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(m.get("send_time", 0)), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def to_incoming(shop_id: str, shop: ShopConfig, m: Mapping[str, Any]) -> IncomingMessage | None:
    """The engine's message for one sync_msg item, or None when nothing is to be answered."""
    msgid = m.get("msgid")
    msgtype = str(m.get("msgtype", ""))
    origin = m.get("origin")
    if not isinstance(msgid, str) or not msgid or len(msgid) > 100:
        return None
    event = m.get("event") if isinstance(m.get("event"), Mapping) else {}
    user = m.get("external_userid") or (event or {}).get("external_userid")
    if not isinstance(user, str) or not user:
        return None
    kind: MessageKind
    text, payload, kind, hint = "", None, "text", None
    if msgtype == "event":
        if (event or {}).get("event_type") != "enter_session":
            log.debug("WeCom %s: event %r acknowledged", shop_id, (event or {}).get("event_type"))
            return None
        kind, hint = "event", shop.default_language
        text = "你好" if hint == "zh" else "hello"
    elif origin != CUSTOMER:
        return None  # a servicer's own message, or a system notice
    elif msgtype == "text":
        body = m.get("text") if isinstance(m.get("text"), Mapping) else {}
        text = str((body or {}).get("content", ""))
        menu_id = (body or {}).get("menu_id")
        if isinstance(menu_id, str) and menu_id and len(menu_id.encode()) <= MAX_PAYLOAD_BYTES:
            payload, kind = menu_id, "button"
    elif msgtype == "image":
        kind = "image"
    else:
        kind = "sticker"
    return IncomingMessage(
        shop_id=shop_id,
        channel=CHANNEL,
        user_id=user,
        message_id=f"wecom:{msgid}",
        text=text,
        payload=payload,
        kind=kind,
        language_hint=hint,
        received_at=_sent_at(m),
        raw=dict(m),
    )


class AccountSync:
    """Fetches one account's messages; one run at a time per process."""

    def __init__(self, ctx: ChannelContext, store: WeComStore, sender: WeComSender, shop_id: str) -> None:
        self.ctx = ctx
        self.store = store
        self.sender = sender
        self.shop_id = shop_id
        self.token: str | None = None
        self.token_until: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._seen: OrderedDict[str, None] = OrderedDict()  # only without the durable inbox

    def trigger(self, token: str | None = None) -> asyncio.Task[None]:
        if token:
            self.token, self.token_until = token, self.ctx.clock.now() + timedelta(minutes=10)
        if self._task is not None and not self._task.done():
            self._again = True
            return self._task
        self._task = self.ctx.spawn(self._run())
        return self._task

    async def idle(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self.sync()
            except Exception:
                log.exception("WeCom %s: sync failed", self.shop_id)
            if not self._again:
                return

    async def sync(self) -> int:
        """Fetch and store everything after the cursor; returns how many messages were new."""
        cfg = wecom_config(self.ctx, self.shop_id)
        shop = self.ctx.config.shop(self.shop_id)
        if cfg is None or shop is None:
            return 0
        api = client_for(cfg)
        fresh = 0
        for _ in range(MAX_PAGES):
            cursor = await self.store.cursor(self.shop_id, cfg.open_kfid)
            token = self.token if self.token_until and self.ctx.clock.now() < self.token_until else None
            try:
                page = await api.sync_msg(cursor, token)
            except WeComError as exc:
                if exc.errcode == 95007 and token:  # the callback's token expired: go on without it
                    self.token = None
                    continue
                log.warning("WeCom %s: sync_msg failed: %s", self.shop_id, exc)
                return fresh
            items = [m for m in page.get("msg_list") or [] if isinstance(m, Mapping)]
            messages = []
            for m in items:
                if m.get("open_kfid") not in (None, cfg.open_kfid):
                    continue
                await self._session_change(cfg.open_kfid, m)
                msg = to_incoming(self.shop_id, shop, m)
                if msg is None:
                    continue
                await self._windows(cfg.open_kfid, m, msg)
                messages.append(msg)
            for msg in messages:
                try:
                    fresh += await self._accept(msg)
                except InboxBusy:
                    return fresh  # the cursor stays: the next run reads these again
            next_cursor = str(page.get("next_cursor") or cursor)
            if next_cursor != cursor and not await self.store.advance(self.shop_id, cfg.open_kfid, cursor, next_cursor):
                log.info("WeCom %s: another process moved the cursor; reading on from there", self.shop_id)
            if not page.get("has_more"):
                return fresh
        return fresh

    async def _session_change(self, open_kfid: str, m: Mapping[str, Any]) -> None:
        """A servicer took the chat from the pool (3) or ended it (back to the API): follow WeCom's state."""
        event = m.get("event")
        if m.get("msgtype") != "event" or not isinstance(event, Mapping):
            return
        user = event.get("external_userid")
        if event.get("event_type") != "session_status_change" or not isinstance(user, str):
            return
        change = event.get("change_type")
        state = {1: 3, 2: 3, 3: 1}.get(change) if isinstance(change, int) else None  # 接入 / 转接 / 结束会话
        if state is not None:
            await self.store.set_servicer_state(self.shop_id, open_kfid, user, state)

    async def _windows(self, open_kfid: str, m: Mapping[str, Any], msg: IncomingMessage) -> None:
        at = msg.received_at or self.ctx.clock.now()
        if msg.kind == "event":
            code = (m.get("event") or {}).get("welcome_code")
            if isinstance(code, str) and code:
                until = min(at, self.ctx.clock.now()) + timedelta(seconds=WELCOME_SECONDS)
                await self.store.entered(self.shop_id, open_kfid, msg.user_id, code, until)
            return
        await self.store.customer_wrote(self.shop_id, open_kfid, msg.user_id, at, msg.message_id)

    async def _accept(self, msg: IncomingMessage) -> int:
        if self.ctx.inbox is not None:
            return 1 if await self.ctx.inbox.accept(msg) else 0
        if msg.message_id in self._seen:  # no durable inbox (tools, tests): the engine's own claim still dedupes
            return 0
        self._seen[msg.message_id] = None
        while len(self._seen) > SEEN_IN_PROCESS:
            self._seen.popitem(last=False)
        self.ctx.spawn(self._answer(msg))
        return 1

    async def _answer(self, msg: IncomingMessage) -> None:
        replies: list[OutgoingMessage] = await self.ctx.engine.handle(msg, replay=False)
        for reply in replies:
            try:
                await self.sender.send(msg.shop_id, msg.user_id, reply)
            except Exception as exc:
                log.warning("WeCom %s: reply not sent: %s", msg.shop_id, exc)
                return
