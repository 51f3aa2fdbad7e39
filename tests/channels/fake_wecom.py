"""A local fake of the WeCom customer service API (aiohttp), and callbacks made with the real crypto.

It keeps what WeCom keeps: the account's message queue read with ``kf/sync_msg`` (an opaque
cursor, pages, ``has_more``), access tokens (one can be made to expire: 42001 once), welcome codes
(single use, 20 s), the reply window per customer (48 hours, 5 messages after their last
message: 95002 / 95001), and the session state per customer (``kf/service_state/trans``; in
states 2 and 3 the API may not send: 95018). Everything sent is recorded for the tests.

Callbacks are encrypted and signed with wechatpy's ``wechatpy.enterprise.crypto.WeChatCrypto``,
exactly as WeCom does, independently of the code under test.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree

from aiohttp import web
from aiohttp.test_utils import TestServer
from wechatpy.enterprise.crypto import WeChatCrypto

from core.clock import Clock
from core.config import WeComConfig

CORP_ID = "ww0123456789abcdef"
SECRET = "kf-app-secret"
TOKEN = "callbacktoken"
AES_KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode().rstrip("=")  # 43 characters
OPEN_KFID = "wkFAKEACCOUNT01"
SERVICER = "zhangsan"
WINDOW_SECONDS = 48 * 3600
WINDOW_MESSAGES = 5


def wecom_config(api_base_url: str, **extra: Any) -> WeComConfig:
    return WeComConfig(
        corp_id=CORP_ID,
        secret=SECRET,
        token=TOKEN,
        encoding_aes_key=AES_KEY,
        open_kfid=OPEN_KFID,
        api_base_url=api_base_url,
        **extra,
    )


@dataclass
class Sent:
    api: str  # "send_msg" | "send_msg_on_event"
    body: dict[str, Any]

    @property
    def text(self) -> str:
        if self.body.get("msgtype") == "msgmenu":
            return str(self.body["msgmenu"]["head_content"])
        return str(self.body.get("text", {}).get("content", ""))

    @property
    def menu(self) -> list[tuple[str, str]]:
        """(id, label) of a msgmenu's options."""
        if self.body.get("msgtype") != "msgmenu":
            return []
        return [(i["click"]["id"], i["click"]["content"]) for i in self.body["msgmenu"]["list"]]


@dataclass
class FakeWeCom:
    clock: Clock
    corp_id: str = CORP_ID
    secret: str = SECRET
    open_kfid: str = OPEN_KFID
    messages: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    sync_calls: list[dict[str, Any]] = field(default_factory=list)
    token_fetches: int = 0
    errors: list[tuple[str, int]] = field(default_factory=list)  # (api, errcode) WeCom answered with
    page_size: int = 1000
    _tokens: set[str] = field(default_factory=set)
    _expire_next: bool = False
    _callback_tokens: set[str] = field(default_factory=set)
    _welcome: dict[str, tuple[str, float]] = field(default_factory=dict)  # code -> (user, until)
    _last_customer: dict[str, float] = field(default_factory=dict)
    _sent_since: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeWeCom:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        for path, handler in {
            "kf/sync_msg": self._sync_msg,
            "kf/send_msg": self._send_msg,
            "kf/send_msg_on_event": self._send_msg_on_event,
            "kf/service_state/trans": self._trans,
            "kf/service_state/get": self._get_state,
            "kf/account/list": self._account_list,
        }.items():
            app.router.add_post(f"/cgi-bin/{path}", handler)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def now(self) -> float:
        return self.clock.now().timestamp()

    # ------------------------------------------------------------------ what customers do

    def _queue(self, item: dict[str, Any]) -> str:
        msgid = item.setdefault("msgid", f"msg{next(self._ids):06d}")
        item.setdefault("open_kfid", self.open_kfid)
        item.setdefault("send_time", int(self.now()))
        self.messages.append(item)
        return str(msgid)

    def customer_says(self, user: str, text: str, *, menu_id: str | None = None) -> str:
        body: dict[str, Any] = {"content": text}
        if menu_id is not None:
            body["menu_id"] = menu_id
        self._last_customer[user] = self.now()
        self._sent_since[user] = 0
        self.states.setdefault(user, 0)
        if self.states[user] == 4:
            self.states[user] = 0
        return self._queue({"external_userid": user, "origin": 3, "msgtype": "text", "text": body})

    def customer_sends_image(self, user: str) -> str:
        self._last_customer[user] = self.now()
        self._sent_since[user] = 0
        return self._queue({"external_userid": user, "origin": 3, "msgtype": "image", "image": {"media_id": "m1"}})

    def customer_enters(self, user: str, scene: str = "qrcode") -> str:
        code = "WELCOME" + secrets.token_hex(8)
        self._welcome[code] = (user, self.now() + 20)
        self.states.setdefault(user, 0)
        self._queue(
            {
                "origin": 4,
                "msgtype": "event",
                "event": {
                    "event_type": "enter_session",
                    "open_kfid": self.open_kfid,
                    "external_userid": user,
                    "scene": scene,
                    "welcome_code": code,
                },
            }
        )
        return code

    def servicer_says(self, user: str, text: str) -> str:
        return self._queue(
            {
                "external_userid": user,
                "origin": 5,
                "servicer_userid": SERVICER,
                "msgtype": "text",
                "text": {"content": text},
            }
        )

    def redeliver(self, msgid: str) -> None:
        """WeCom hands out a message it already handed out (the same msgid again)."""
        original = next(m for m in self.messages if m["msgid"] == msgid)
        self.messages.append(dict(original))

    def expire_token(self) -> None:
        """The next API call with the current token gets 42001 (expired)."""
        self._expire_next = True

    # ------------------------------------------------------------------ callbacks (real crypto)

    def callback(
        self,
        cfg: WeComConfig,
        *,
        token: str | None = None,
        timestamp: int | None = None,
        nonce: str | None = None,
        inner: str | None = None,
        corp_id: str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """(query, body) of a ``kf_msg_or_event`` callback, as WeCom sends it."""
        ts = str(int(self.now()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_hex(6)
        if token is None:
            token = "ENC" + secrets.token_hex(12)
        self._callback_tokens.add(token)
        xml = inner or (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><CreateTime>{ts}</CreateTime>"
            "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{cfg.open_kfid}]]></OpenKfId></xml>"
        )
        crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, corp_id or cfg.corp_id)
        envelope = ElementTree.fromstring(crypto.encrypt_message(xml, nonce, ts))
        encrypted = envelope.findtext("Encrypt") or ""
        signature = envelope.findtext("MsgSignature") or ""
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><AgentID><![CDATA[]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        ).encode()
        return {"msg_signature": signature, "timestamp": ts, "nonce": nonce}, body

    def verification(self, cfg: WeComConfig, echo: str, *, timestamp: int | None = None) -> dict[str, str]:
        """The query of WeCom's URL check (echostr encrypted and signed)."""
        ts = str(int(self.now()) if timestamp is None else timestamp)
        nonce = secrets.token_hex(6)
        crypto = WeChatCrypto(cfg.token, cfg.encoding_aes_key, cfg.corp_id)
        envelope = ElementTree.fromstring(crypto.encrypt_message(echo, nonce, ts))
        return {
            "msg_signature": envelope.findtext("MsgSignature") or "",
            "timestamp": ts,
            "nonce": nonce,
            "echostr": envelope.findtext("Encrypt") or "",
        }

    # ------------------------------------------------------------------ API

    def _fail(self, api: str, code: int, msg: str) -> web.Response:
        self.errors.append((api, code))
        return web.json_response({"errcode": code, "errmsg": msg})

    async def _gettoken(self, request: web.Request) -> web.Response:
        if request.query.get("corpid") != self.corp_id or request.query.get("corpsecret") != self.secret:
            return self._fail("gettoken", 40001, "invalid secret")
        self.token_fetches += 1
        token = f"token-{self.token_fetches}-{secrets.token_hex(4)}"
        self._tokens.add(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _body(self, request: web.Request, api: str) -> tuple[dict[str, Any] | None, web.Response | None]:
        token = request.query.get("access_token", "")
        if token not in self._tokens:
            return None, self._fail(api, 40014, "invalid access_token")
        if self._expire_next:
            self._expire_next = False
            self._tokens.discard(token)
            return None, self._fail(api, 42001, "access_token expired")
        return await request.json(), None

    async def _sync_msg(self, request: web.Request) -> web.Response:
        body, error = await self._body(request, "sync_msg")
        if error is not None:
            return error
        assert body is not None
        self.sync_calls.append(body)
        if body.get("open_kfid") != self.open_kfid:
            return self._fail("sync_msg", 95000, "invalid open_kfid")
        if body.get("token") and body["token"] not in self._callback_tokens:
            return self._fail("sync_msg", 95007, "invalid msg token")
        cursor = str(body.get("cursor") or "")
        start = int(cursor[1:]) if cursor.startswith("c") and cursor[1:].isdigit() else 0
        limit = min(int(body.get("limit") or 1000), self.page_size)
        page = self.messages[start : start + limit]
        end = start + len(page)
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "next_cursor": f"c{end}",
                "has_more": 1 if end < len(self.messages) else 0,
                "msg_list": page,
            }
        )

    def _window(self, user: str) -> int | None:
        last = self._last_customer.get(user)
        if last is None or self.now() - last > WINDOW_SECONDS:
            return 95002
        if self._sent_since.get(user, 0) >= WINDOW_MESSAGES:
            return 95001
        return None

    def _valid_content(self, body: dict[str, Any]) -> bool:
        if body.get("msgtype") == "text":
            content = body.get("text", {}).get("content", "")
            return isinstance(content, str) and 0 < len(content.encode()) <= 2048
        if body.get("msgtype") == "msgmenu":
            items = body.get("msgmenu", {}).get("list", [])
            return 0 < len(items) <= 10 and all(
                i.get("type") == "click" and 0 < len(i["click"]["id"].encode()) <= 128 for i in items
            )
        return False

    async def _send_msg(self, request: web.Request) -> web.Response:
        body, error = await self._body(request, "send_msg")
        if error is not None:
            return error
        assert body is not None
        user = str(body.get("touser", ""))
        if body.get("open_kfid") != self.open_kfid or not self._valid_content(body):
            return self._fail("send_msg", 40008, "invalid message")
        if self.states.get(user, 0) in (2, 3):
            return self._fail("send_msg", 95018, "session state does not allow sending")
        problem = self._window(user)
        if problem is not None:
            return self._fail("send_msg", problem, "send msg limit")
        self._sent_since[user] = self._sent_since.get(user, 0) + 1
        self.sent.append(Sent("send_msg", body))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"out{len(self.sent)}"})

    async def _send_msg_on_event(self, request: web.Request) -> web.Response:
        body, error = await self._body(request, "send_msg_on_event")
        if error is not None:
            return error
        assert body is not None
        welcome = self._welcome.pop(str(body.get("code", "")), None)
        if welcome is None or self.now() > welcome[1]:
            return self._fail("send_msg_on_event", 95007, "invalid or used welcome code")
        if not self._valid_content(body):
            return self._fail("send_msg_on_event", 40008, "invalid message")
        self.sent.append(Sent("send_msg_on_event", {**body, "_user": welcome[0]}))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"out{len(self.sent)}"})

    async def _trans(self, request: web.Request) -> web.Response:
        body, error = await self._body(request, "trans")
        if error is not None:
            return error
        assert body is not None
        user, state = str(body.get("external_userid", "")), int(body.get("service_state", -1))
        current = self.states.get(user, 0)
        allowed = {0: {1, 2, 3, 4}, 1: {2, 3, 4}, 2: {3, 4}, 3: {2, 3, 4}, 4: set()}
        if state not in allowed.get(current, set()):
            return self._fail("trans", 95016, "state change not allowed")
        if state == 3 and not body.get("servicer_userid"):
            return self._fail("trans", 95014, "servicer_userid required")
        self.states[user] = state
        self.transfers.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msg_code": "MSGCODE"})

    async def _get_state(self, request: web.Request) -> web.Response:
        body, error = await self._body(request, "get_state")
        if error is not None:
            return error
        assert body is not None
        user = str(body.get("external_userid", ""))
        return web.json_response({"errcode": 0, "errmsg": "ok", "service_state": self.states.get(user, 0)})

    async def _account_list(self, request: web.Request) -> web.Response:
        _body, error = await self._body(request, "account_list")
        if error is not None:
            return error
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "account_list": [{"open_kfid": self.open_kfid, "name": "PawSpa"}]}
        )


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


__all__ = [
    "AES_KEY",
    "CORP_ID",
    "OPEN_KFID",
    "SECRET",
    "SERVICER",
    "TOKEN",
    "FakeWeCom",
    "Sent",
    "epoch",
    "wecom_config",
]
