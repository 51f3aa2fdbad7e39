"""The WeCom channel's one send function (``WeComSender``), for the delivery loop.

Rendering: text as ``kf/send_msg`` text (link and image URL as lines; over 2048 bytes split into
several messages); buttons (up to 10) as a ``msgmenu`` whose click ids ARE the button payloads
(at most 64 bytes, within WeCom's 128), so a tapped option maps back to its payload in every
process and after restarts, with nothing to remember.

WeCom's rules, counted in ``wecom_sessions`` (shared by all processes):
- the reply to ``enter_session`` goes through ``kf/send_msg_on_event`` with the event's welcome
  code (once, within 20 s) and does not count against the window;
- otherwise a message may go only within 48 hours of the customer's last message and at most 5
  times after it: past that, ``DeliveryError(permanent=True)`` ("window closed ..."), so the
  delivery loop falls back to another channel of the customer or flags the message for staff.
  WeCom's own 95001/95002 are believed too.

Handoff: after the message that hands a chat to staff (conversation mode ``handoff``) is sent,
the chat is transferred with ``kf/service_state/trans`` to the servicer configured for the FAQ
route (``handoff_servicers``), else ``handoff_servicer`` (state 3), else WeCom's waiting pool
(state 2): staff answer in the WeCom app and the bot is silent. While the chat is with a
servicer, messages in handoff mode are not sent (permanent: "with a WeCom servicer"); once the
console takes the chat over or hands it back to the bot, the servicer session is ended (state 4)
and the API answers again.

Staff alerts (outbox kind ``staff_alert``, core/staff_alerts.py) addressed to ``wecom`` go to the
shop's WeCom group chat with ``appchat/send`` through the app of ``staff_alerts.wecom`` (its own
token), not through the customer service account: no reply window applies. WeCom's busy answers
(-1, 45009 rate limit) and network failures are retried; anything else (an unknown chat, a wrong
secret) is permanent, and the delivery loop flags the alert for staff.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.base import ChannelContext, DeliveryError, code_failure, not_configured
from channels.wechat import plain_text
from channels.wecom.api import SEND_COUNT_LIMIT, SEND_TIME_LIMIT, STATE_FORBIDS_SENDING, WeComError, client_for
from channels.wecom.store import CHANNEL, WeComStore
from core.config import WeComConfig, WeComStaffAlerts
from core.db import Database
from core.messages import OutgoingMessage
from core.models import ConversationMode
from core.staff_alerts import KIND as STAFF_ALERT

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 2048
MAX_MENU_ITEMS = 10
API_STATE = 1  # 由智能助手接待: the API answers
POOL_STATE = 2  # 待接入池排队中
SERVICER_STATE = 3  # 由人工接待
ENDED_STATE = 4  # 已结束/未开始
RETRIED_APP_ERRORS = frozenset({-1, 45009})  # system busy, API rate limit: try again later
PERMANENT_ERRORS = {  # send_msg answers that retrying cannot help (the rest are retried)
    SEND_COUNT_LIMIT: f"window closed (WeCom {SEND_COUNT_LIMIT})",
    SEND_TIME_LIMIT: f"window closed (WeCom {SEND_TIME_LIMIT})",
    STATE_FORBIDS_SENDING: f"the WeCom session does not take messages now ({STATE_FORBIDS_SENDING})",
}


def wecom_config(ctx: ChannelContext, shop_id: str) -> WeComConfig | None:
    shop = ctx.config.shop(shop_id)
    cfg = shop.channels.wecom if shop is not None else None
    return cfg if cfg is not None and cfg.enabled else None


def staff_alert_config(ctx: ChannelContext, shop_id: str) -> WeComStaffAlerts | None:
    shop = ctx.config.shop(shop_id)
    alerts = shop.staff_alerts if shop is not None else None
    return alerts.wecom if alerts is not None and alerts.enabled else None


def database(ctx: ChannelContext) -> Database:
    db = getattr(ctx, "db", None) or getattr(ctx.engine, "db", None)
    if not isinstance(db, Database):
        raise RuntimeError("the WeCom channel needs the database (ChannelContext.db)")
    return db


def _short(user: str) -> str:
    return user[:6] + "…" if len(user) > 6 else user


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Pieces of at most ``limit`` UTF-8 bytes, cut between lines where possible, never inside a character."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        current = ""
        while len(line.encode()) > limit:
            cut = len(line.encode()[:limit].decode("utf-8", "ignore"))
            pieces.append(line[:cut])
            line = line[cut:]
        current = line
    if current or not pieces:
        pieces.append(current)
    return pieces


def render(message: OutgoingMessage) -> list[dict[str, Any]]:
    """The send_msg contents for one message (several when a long text is split)."""
    if message.buttons and len(message.buttons) <= MAX_MENU_ITEMS:
        head = plain_text(message, numbered=False)
        if len(head.encode()) <= 1024:
            items = [{"type": "click", "click": {"id": b.payload, "content": b.label[:64]}} for b in message.buttons]
            return [{"msgtype": "msgmenu", "msgmenu": {"head_content": head, "list": items, "tail_content": ""}}]
    return [{"msgtype": "text", "text": {"content": piece}} for piece in split_text(plain_text(message))]


class WeComSender:
    """Sends one message to one WeCom customer (``external_userid``)."""

    channel = CHANNEL

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self._store: WeComStore | None = None

    @property
    def store(self) -> WeComStore:
        if self._store is None:
            self._store = WeComStore(database(self.ctx), self.ctx.clock)
        return self._store

    async def close(self) -> None:
        from channels.wecom.api import close_clients

        await close_clients()

    async def send(
        self,
        shop_id: str,
        external_id: str,
        message: OutgoingMessage,
        *,
        kind: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> str | None:
        if kind == STAFF_ALERT:
            return await self._staff_alert(shop_id, external_id, message)
        cfg = wecom_config(self.ctx, shop_id)
        if cfg is None:
            raise not_configured(shop_id, "WeCom customer service account")
        api = client_for(cfg)
        store = self.store
        conversation = await store.conversation_mode(shop_id, external_id)
        mode, route = conversation if conversation is not None else (ConversationMode.BOT, None)
        state = await store.servicer_state(shop_id, cfg.open_kfid, external_id)
        if state in (POOL_STATE, SERVICER_STATE):
            if mode == ConversationMode.HANDOFF:
                raise DeliveryError("the chat is with a WeCom servicer", permanent=True)
            await self._transfer(cfg, shop_id, external_id, ENDED_STATE, None)  # the console or the bot takes it back

        contents = render(message)
        welcome = await store.take_welcome(shop_id, cfg.open_kfid, external_id)
        msgid: str | None = None
        if welcome is not None:
            try:
                result = await api.send_msg_on_event(welcome, contents[0])
                msgid = str(result.get("msgid") or "") or None
                contents = contents[1:]
            except WeComError as exc:
                log.info("WeCom %s: welcome to %s not sent (%s); trying send_msg", shop_id, _short(external_id), exc)
        for content in contents:
            msgid = await self._send_counted(cfg, shop_id, external_id, content) or msgid
        if mode == ConversationMode.HANDOFF and state == API_STATE:
            servicer = cfg.handoff_servicers.get(route or "") or cfg.handoff_servicer
            await self._transfer(cfg, shop_id, external_id, SERVICER_STATE if servicer else POOL_STATE, servicer)
        return msgid

    async def _staff_alert(self, shop_id: str, chat_id: str, message: OutgoingMessage) -> str | None:
        """An alert to the shop's WeCom staff group chat (text only: staff act in the console)."""
        cfg = staff_alert_config(self.ctx, shop_id)
        if cfg is None:
            raise not_configured(shop_id, "WeCom staff alerts configured")
        api = client_for(cfg)
        for piece in split_text(plain_text(message)):
            try:
                await api.appchat_send(chat_id, {"msgtype": "text", "text": {"content": piece}})
            except WeComError as exc:
                log.warning("WeCom %s: staff alert not sent: %s", shop_id, exc)
                retry = exc.errcode is None or exc.errcode in RETRIED_APP_ERRORS
                raise DeliveryError(f"staff alert: {exc}", permanent=not retry) from None
        return None

    async def _send_counted(self, cfg: WeComConfig, shop_id: str, user: str, content: dict[str, Any]) -> str | None:
        store = self.store
        refused = await store.reserve(shop_id, cfg.open_kfid, user)
        if refused is not None:
            log.info("WeCom %s: not sending to %s: %s", shop_id, _short(user), refused)
            raise DeliveryError(refused, permanent=True)
        try:
            result = await client_for(cfg).send_msg(user, content)
        except WeComError as exc:
            if exc.errcode in (SEND_COUNT_LIMIT, SEND_TIME_LIMIT):
                await store.exhaust(shop_id, cfg.open_kfid, user)
            else:
                await store.release(shop_id, cfg.open_kfid, user)
            error = code_failure(exc.errcode, PERMANENT_ERRORS, str(exc))
            if not error.permanent:
                log.warning("WeCom %s: send to %s failed: %s", shop_id, _short(user), exc)
            raise error from None
        return str(result.get("msgid") or "") or None

    async def _transfer(self, cfg: WeComConfig, shop_id: str, user: str, state: int, servicer: str | None) -> None:
        try:
            await client_for(cfg).trans(user, state, servicer)
        except WeComError as exc:
            log.warning("WeCom %s: transfer of %s to state %s failed: %s", shop_id, _short(user), state, exc)
            if state != ENDED_STATE:
                return
        await self.store.set_servicer_state(shop_id, cfg.open_kfid, user, API_STATE if state == ENDED_STATE else state)
