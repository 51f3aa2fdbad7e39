"""WeCom customer service (微信客服) channel: WeChat users reach the shop from a link, a QR code,
a mini-program or a video channel, and get the same engine.

Inbound (``register(app, ctx)``):

- ``GET /wecom/{shop}`` answers WeCom's URL check: ``msg_signature`` over (token, timestamp,
  nonce, echostr) is verified, ``echostr`` decrypted with the corp id and echoed as text/plain.
- ``POST /wecom/{shop}``: unknown shop (or one without an enabled WeCom account) -> 404; a body
  over ``client_max_size`` -> 413; malformed XML or XML with a DOCTYPE -> 400; a wrong
  ``msg_signature`` or a timestamp more than 300 s from ``ctx.clock.now()`` -> 403; a (timestamp,
  nonce) already processed by this process -> 403; undecryptable (another corp id) -> 400. See
  channels/wecom/security.py. A ``kf_msg_or_event`` for this shop's ``open_kfid`` starts a
  ``kf/sync_msg`` run (channels/wecom/inbound.py) and is acknowledged with "success" at once;
  anything else is acknowledged and ignored.

Outbound (``WeComSender(ctx)``, the delivery loop's send function): channels/wecom/sender.py
(text and msgmenu, the welcome with its code, the 48-hour / 5-message window, handoff to a
servicer). ``check(shop_id, cfg)`` (``chatbook channels check``): a token can be fetched and the
account exists, never printing secrets.

State shared by all processes lives in the database (channels/wecom/store.py): the sync cursor
per account and the reply windows per customer.
"""

from __future__ import annotations

import logging

from aiohttp import web

from channels.base import ChannelContext
from channels.wecom.api import WeComApi, WeComError, client_for
from channels.wecom.inbound import AccountSync, to_incoming
from channels.wecom.security import (
    Refused,
    SeenPairs,
    check_query,
    decrypt,
    encrypt_for_test,
    inner_fields,
    outer_encrypt,
)
from channels.wecom.sender import WeComSender, database, render, wecom_config
from channels.wecom.store import CHANNEL, WeComStore
from core.config import WeComConfig

log = logging.getLogger(__name__)
ACK = "success"


class WeComWebhook:
    """The routes' state: the replay memory and one sync per account."""

    def __init__(self, ctx: ChannelContext) -> None:
        self.ctx = ctx
        self.sender = WeComSender(ctx)
        self.pairs = SeenPairs()
        self.syncs: dict[str, AccountSync] = {}
        self._store: WeComStore | None = None

    @property
    def store(self) -> WeComStore:
        if self._store is None:  # only shops with a WeCom account need the database
            self._store = WeComStore(database(self.ctx), self.ctx.clock)
        return self._store

    def sync_for(self, shop_id: str) -> AccountSync:
        sync = self.syncs.get(shop_id)
        if sync is None:
            sync = self.syncs[shop_id] = AccountSync(self.ctx, self.store, self.sender, shop_id)
        return sync

    def _config(self, request: web.Request) -> tuple[str, WeComConfig]:
        shop_id = request.match_info["shop"]
        cfg = wecom_config(self.ctx, shop_id)
        if cfg is None:
            raise web.HTTPNotFound(text="unknown shop")
        return shop_id, cfg

    def _now(self) -> int:
        return int(self.ctx.clock.now().timestamp())

    async def verify(self, request: web.Request) -> web.Response:
        _shop_id, cfg = self._config(request)
        q = request.query
        echostr, timestamp, nonce = q.get("echostr", ""), q.get("timestamp", ""), q.get("nonce", "")
        if " " in echostr and "+" not in echostr:  # a base64 '+' sent unescaped reads as a space
            echostr = echostr.replace(" ", "+")
        try:
            check_query(cfg, q.get("msg_signature", ""), timestamp, nonce, echostr, self._now())
            plain = decrypt(cfg, echostr)
        except Refused as exc:
            raise _refusal(exc) from None
        return web.Response(text=plain, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.Response:
        shop_id, cfg = self._config(request)
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        body = await request.read()  # over client_max_size: 413
        try:
            encrypted = outer_encrypt(body)
            check_query(cfg, q.get("msg_signature", ""), timestamp, nonce, encrypted, self._now())
            key = (shop_id, timestamp, nonce)
            if self.pairs.seen(key):
                raise Refused(403, "replayed request")
            fields = inner_fields(decrypt(cfg, encrypted))
        except Refused as exc:
            log.info("WeCom %s: callback refused: %s", shop_id, exc.reason)
            raise _refusal(exc) from None
        self.pairs.add(key, int(timestamp), self._now())
        if fields.get("ToUserName") not in (None, "", cfg.corp_id):
            raise web.HTTPBadRequest(text="not for this corp")
        if fields.get("Event") == "kf_msg_or_event" and fields.get("OpenKfId", cfg.open_kfid) == cfg.open_kfid:
            self.sync_for(shop_id).trigger(fields.get("Token") or None)
        else:
            log.debug("WeCom %s: callback %r acknowledged", shop_id, fields.get("Event") or fields.get("MsgType"))
        return web.Response(text=ACK)

    async def catch_up(self) -> None:
        """At start: read what arrived while no process was running (no callback comes for it)."""
        for shop_id, shop in self.ctx.config.shops.items():
            if shop.channels.wecom is not None and shop.channels.wecom.enabled:
                self.sync_for(shop_id).trigger()

    async def idle(self) -> None:
        for sync in list(self.syncs.values()):
            await sync.idle()


def _refusal(exc: Refused) -> web.HTTPException:
    return web.HTTPForbidden(text=exc.reason) if exc.status == 403 else web.HTTPBadRequest(text=exc.reason)


WEBHOOK_KEY = web.AppKey("wecom_webhook", WeComWebhook)


def register(app: web.Application, ctx: ChannelContext, *, catch_up: bool = True) -> WeComWebhook:
    """Add ``GET|POST /wecom/{shop}``; at start-up every account catches up (``catch_up``)."""
    hook = WeComWebhook(ctx)
    app[WEBHOOK_KEY] = hook
    app.router.add_get("/wecom/{shop}", hook.verify)
    app.router.add_post("/wecom/{shop}", hook.receive)

    async def _start(_app: web.Application) -> None:
        if catch_up:
            await hook.catch_up()

    async def _stop(_app: web.Application) -> None:
        await hook.idle()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return hook


async def check(shop_id: str, cfg: WeComConfig) -> tuple[bool, str]:
    """Can this account fetch a token, and does its open_kfid exist? (``chatbook channels check``)"""
    api = client_for(cfg)
    try:
        return await _check(shop_id, cfg, api)
    finally:
        await api.close()


async def _check(shop_id: str, cfg: WeComConfig, api: WeComApi) -> tuple[bool, str]:
    try:
        await api.token()
    except WeComError as exc:
        hints = {40013: "invalid corp_id", 40001: "invalid secret", 41004: "secret missing", 60020: "IP not allowed"}
        if exc.errcode is None:
            return False, f"token fetch from {api.root} failed: {exc.errmsg}"
        return False, f"token fetch refused: errcode {exc.errcode} ({hints.get(exc.errcode, exc.errmsg)})"
    try:
        accounts = await api.account_list()
    except WeComError as exc:
        hint = "is the secret the customer service (微信客服) one?"
        return False, f"token fetched, but kf/account/list failed: errcode {exc.errcode} ({hint})"
    ids = [a.get("open_kfid") for a in accounts.get("account_list") or [] if isinstance(a, dict)]
    if cfg.open_kfid not in ids:
        return False, f"token fetched, but account {cfg.open_kfid} is not among this corp's customer service accounts"
    return True, f"access token fetched for corp {cfg.corp_id}; account {cfg.open_kfid} found ({shop_id})"


__all__ = [
    "CHANNEL",
    "WEBHOOK_KEY",
    "AccountSync",
    "WeComSender",
    "WeComWebhook",
    "check",
    "encrypt_for_test",
    "register",
    "render",
    "to_incoming",
]
