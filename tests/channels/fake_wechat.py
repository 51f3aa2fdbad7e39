"""A local stand-in for WeChat, both sides of it, for the channel tests.

``FakeWeChatApi``: a small aiohttp server on 127.0.0.1 (a free port) with the two endpoints the
channel uses, ``GET /cgi-bin/token`` (counts fetches; ``expire_tokens()`` makes the current tokens
answer 40001) and ``POST /cgi-bin/message/custom/send`` (records text and msgmenu messages;
``fail_next(45015)`` answers an error code once). Every call is recorded in ``calls``.

``WeChatUser``: one follower's WeChat client, pushing XML to ``/wechat/{shop}`` as WeChat's servers
do: signed with the account token (plain mode) or encrypted and signed with wechatpy's real
``WeChatCrypto`` (AES mode); passive replies are decrypted and their signature checked.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import xmltodict
from aiohttp import web
from aiohttp.test_utils import TestClient
from wechatpy.crypto import WeChatCrypto

from channels.wechat import signature
from core.clock import Clock
from core.config import WeChatConfig

APP_ID = "wx1234567890abcdef"
APP_SECRET = "s3cr3t-app-secret-value"
TOKEN = "chatbook-push-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters
ACCOUNT = "gh_0123456789ab"  # the Official Account's original id


@dataclass
class ApiCall:
    path: str
    params: dict[str, str]
    body: dict[str, Any] | None
    answer: dict[str, Any]


@dataclass
class FakeWeChatApi:
    app_id: str = APP_ID
    app_secret: str = APP_SECRET
    calls: list[ApiCall] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # accepted customer service messages
    templates: list[dict[str, Any]] = field(default_factory=list)  # accepted template messages
    token_fetches: int = 0
    valid_tokens: set[str] = field(default_factory=set)
    errors: list[int] = field(default_factory=list)  # error codes for the next sends, in order
    url: str = ""
    port: int = 0  # a fixed port: the API "down, then back" at the same address
    _runner: web.AppRunner | None = None
    _tokens: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> FakeWeChatApi:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token)
        app.router.add_post("/cgi-bin/message/custom/send", self._send)
        app.router.add_post("/cgi-bin/message/template/send", self._template)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # set by start() above
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def expire_tokens(self) -> None:
        """Every token issued so far answers 40001 from now on."""
        self.valid_tokens.clear()

    def fail_next(self, errcode: int) -> None:
        self.errors.append(errcode)

    def _record(self, request: web.Request, body: dict[str, Any] | None, answer: dict[str, Any]) -> web.Response:
        self.calls.append(ApiCall(request.path, dict(request.query), body, answer))
        return web.json_response(answer)

    async def _token(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("grant_type") != "client_credential" or q.get("appid") != self.app_id:
            return self._record(request, None, {"errcode": 40013, "errmsg": "invalid appid"})
        if q.get("secret") != self.app_secret:
            return self._record(request, None, {"errcode": 40125, "errmsg": "invalid appsecret"})
        self.token_fetches += 1
        token = f"tok-{next(self._tokens)}"
        self.valid_tokens.add(token)
        return self._record(request, None, {"access_token": token, "expires_in": 7200})

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        if request.query.get("access_token") not in self.valid_tokens:
            return self._record(request, body, {"errcode": 40001, "errmsg": "invalid credential"})
        if self.errors:
            code = self.errors.pop(0)
            return self._record(request, body, {"errcode": code, "errmsg": f"error {code}"})
        if body.get("msgtype") not in ("text", "msgmenu") or not body.get("touser"):
            return self._record(request, body, {"errcode": 40008, "errmsg": "invalid message type"})
        self.messages.append(body)
        return self._record(request, body, {"errcode": 0, "errmsg": "ok"})

    async def _template(self, request: web.Request) -> web.Response:
        body = await request.json()
        if request.query.get("access_token") not in self.valid_tokens:
            return self._record(request, body, {"errcode": 40001, "errmsg": "invalid credential"})
        if not body.get("template_id") or not body.get("touser") or not isinstance(body.get("data"), dict):
            return self._record(request, body, {"errcode": 40037, "errmsg": "invalid template_id"})
        self.templates.append(body)
        return self._record(request, body, {"errcode": 0, "errmsg": "ok", "msgid": 200000 + len(self.templates)})

    def texts(self) -> list[str]:
        """What the customer saw, one string per message (a menu as its head and options)."""
        out = []
        for m in self.messages:
            if m["msgtype"] == "text":
                out.append(m["text"]["content"])
            else:
                menu = m["msgmenu"]
                out.append("\n".join([menu["head_content"], *(o["content"] for o in menu["list"])]))
        return out


def wechat_config(api_url: str, *, aes: bool) -> WeChatConfig:
    return WeChatConfig(
        app_id=APP_ID,
        app_secret=APP_SECRET,
        token=TOKEN,
        encoding_aes_key=AES_KEY if aes else None,
        api_base_url=api_url,
    )


def _cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>"


def message_xml(openid: str, create_time: int, msg_type: str, **fields: str | int) -> str:
    """A push as WeChat writes it: <xml> with ToUserName, FromUserName, CreateTime, MsgType, ..."""
    parts = [
        f"<ToUserName>{_cdata(ACCOUNT)}</ToUserName>",
        f"<FromUserName>{_cdata(openid)}</FromUserName>",
        f"<CreateTime>{create_time}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    for name, value in fields.items():
        parts.append(f"<{name}>{value if isinstance(value, int) else _cdata(value)}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class Push:
    """One signed HTTP request as WeChat would send it."""

    params: dict[str, str]
    body: bytes


@dataclass
class WeChatUser:
    client: TestClient[Any, Any]
    shop_id: str
    clock: Clock
    aes: bool
    openid: str = "oUser_0001"
    token: str = TOKEN
    msg_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7_000_000_001))

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, AES_KEY, APP_ID)

    @property
    def path(self) -> str:
        return f"/wechat/{self.shop_id}"

    def now(self) -> int:
        return int(self.clock.now().timestamp())

    def text_xml(self, content: str, *, msg_id: int | None = None, menu_id: str | None = None) -> str:
        extra: dict[str, str | int] = {"Content": content, "MsgId": msg_id or next(self.msg_ids)}
        if menu_id is not None:
            extra["bizmsgmenuid"] = menu_id
        return message_xml(self.openid, self.now(), "text", **extra)

    def event_xml(self, event: str, create_time: int | None = None) -> str:
        return message_xml(self.openid, create_time or self.now(), "event", Event=event, EventKey="")

    def sign(self, xml: str | bytes, *, timestamp: int | None = None, nonce: str | None = None) -> Push:
        """The query and body WeChat sends for this inner XML (encrypted in AES mode)."""
        ts = str(timestamp if timestamp is not None else self.now())
        nonce = nonce or str(secrets.randbelow(10**9))
        params = {"signature": signature(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}
        params["openid"] = self.openid
        if not self.aes:
            return Push(params, xml.encode() if isinstance(xml, str) else xml)
        sealed = xmltodict.parse(self.crypto.encrypt_message(xml, nonce, ts))["xml"]
        params["encrypt_type"] = "aes"
        params["msg_signature"] = sealed["MsgSignature"]
        body = f"<xml><ToUserName>{_cdata(ACCOUNT)}</ToUserName><Encrypt>{_cdata(sealed['Encrypt'])}</Encrypt></xml>"
        return Push(params, body.encode())

    async def post(self, push: Push) -> tuple[int, str]:
        resp = await self.client.post(self.path, params=push.params, data=push.body)
        return resp.status, await resp.text()

    def open_reply(self, body: str) -> str:
        """The text of a passive reply ("" for "success"), decrypted and verified in AES mode."""
        if body in ("success", ""):
            return ""
        if self.aes:
            outer = xmltodict.parse(body)["xml"]
            body = self.crypto.decrypt_message(body, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
        reply = xmltodict.parse(body)["xml"]
        assert reply["MsgType"] == "text", reply
        assert reply["ToUserName"] == self.openid and reply["FromUserName"] == ACCOUNT, reply
        return str(reply["Content"])

    async def send_xml(self, xml: str) -> str:
        status, body = await self.post(self.sign(xml))
        assert status == 200, (status, body)
        return self.open_reply(body)

    async def say(self, text: str) -> str:
        return await self.send_xml(self.text_xml(text))
