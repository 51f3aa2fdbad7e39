"""WeChat Official Account channel: message push in (plain and safe/AES mode), customer service API out.

Inbound (``register(app, ctx)``):

- ``GET /wechat/{shop}`` answers WeChat's server check: the signature over (token, timestamp,
  nonce) is verified and ``echostr`` is echoed as text/plain.
- ``POST /wechat/{shop}`` receives messages and events. Order of checks: unknown shop (or a shop
  without an enabled WeChat account) -> 404; missing or wrong ``signature`` (compared in constant
  time with ``hmac.compare_digest``; wechatpy compares with ``==``) or a timestamp more than 300 s
  from ``ctx.clock.now()`` -> 403, before the body is read; a body over the app's
  ``client_max_size`` -> 413 (aiohttp); a replayed (timestamp, nonce) pair -> 403; malformed XML,
  or XML with a DOCTYPE -> 400; in AES mode the ``msg_signature`` over the Encrypt element is
  checked (403), then the payload is decrypted with wechatpy's ``PrpCrypto`` (the real crypto).
  A shop with ``encoding_aes_key`` only accepts ``encrypt_type=aes`` pushes.

XML safety: wechatpy parses with xmltodict (expat) and merely ignores entities; we never hand
unauthenticated XML to it. ``parse_xml`` drives expat directly and rejects any DOCTYPE (hence any
entity declaration, internal or external: no billion laughs, no XXE), sets parameter-entity
parsing to NEVER, bounds depth and element count, and keeps only the flat ``<xml><Tag>`` fields
WeChat sends.

Replay cache: (shop, timestamp, nonce) pairs seen in the last 300 s are kept in a bounded
in-memory map (``ReplayGuard``), PER PROCESS. In plain mode the signature does not cover the body,
so without it a captured query string could carry any body for 5 minutes; a second request with
a seen pair and a DIFFERENT body is rejected (403). A byte-identical repeat is let through: it
is what a WeChat retry looks like if WeChat reuses the query, and it is harmless, because every
message is processed once anyway: the engine claims ``IncomingMessage.message_id`` in the
database BEFORE processing (shared by all processes, so a replay sent to another process, or
after this map forgot the pair, still gets the stored reply and no second booking).

Dedupe key: ``MsgId`` for messages, ``FromUserName:CreateTime`` for events ->
``message_id = "wx:<key>"``; ``user_id`` is the openid. Text -> text; a click on a msgmenu option
comes back as text with ``bizmsgmenuid``, mapped back to the button's payload (``MenuMemory``
remembers the ids we put in each ``send_msg_menu``, per openid, per process; an unknown id falls
back to the option's text). Voice with WeChat's speech recognition -> its text; image -> kind
"image", voice/video/location/link -> kind "sticker" (no text: the engine asks for text). A
menu CLICK event with a short EventKey -> a button press with that payload. Subscribe -> the
text "你好"/"hello" (shop's default language) as kind "event": the engine greets and shows its
menu. Unsubscribe is logged and acknowledged; the engine is not called. Other events: ack only.

Durable path (``ctx.inbox`` set, as in `serve`): the push is committed to the inbox before any
answer; the request then waits (in this process) for its own turn up to ``passive_deadline``:
the replies go back passively and their outbox rows are marked sent (the outbox holds them for
a few seconds meanwhile, so they are never sent twice), else the request answers "success" and
the outbox sends them through the customer service API. A redelivery stores nothing new and
joins the first attempt if it is still running here. The rest of this paragraph is the path
without an inbox (tests with a stand-in engine).

Answers: WeChat waits 5 s, then retries (3 tries). The engine runs in a task of its own
(``ctx.spawn``); when it answers within ``passive_deadline`` (4 s) the replies go back passively
in the HTTP response (encrypted in AES mode), joined with blank lines into one text, buttons as
numbered lines (typing the number presses the button). Otherwise (or when that text would be
over 2048 bytes) the request answers "success" and the replies are pushed through the customer
service API when ready (buttons as a msgmenu). A redelivery that arrives while the first
attempt still runs joins it (one engine call, in this process): it gets the passive reply too
(WeChat reads only the latest connection), or "success" once the replies are being pushed, so
the customer never gets them twice.

Outbound (``WeChatSender(ctx)``, the channel's one send function): wechatpy's ``WeChatClient`` is
synchronous, so every call runs in a thread (``asyncio.to_thread``). One client (one access-token
holder) per app, shared by the process; 40001/40014/42001 fetch a new token once and retry once;
45015 (48-hour window closed) -> ``DeliveryError(permanent=True, reason="window closed")``; 45047
(too many messages) -> ``DeliveryError(permanent=False)``. ``api_base_url`` replaces
``https://api.weixin.qq.com`` for the API and the token fetch (``.../cgi-bin/`` is appended unless
given). ``check(shop_id, cfg)`` reports whether a token can be fetched, never printing secrets.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from xml.parsers import expat

import requests
from aiohttp import web
from wechatpy import WeChatClient
from wechatpy.client.base import BaseWeChatClient
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import WeChatClientException

from channels.base import ChannelContext, DeliveryError, InboxBusy, MessageHandler, code_failure, not_configured
from channels.wechat_templates import template_message
from core.config import ShopConfig, WeChatConfig
from core.messages import MAX_PAYLOAD_BYTES, IncomingMessage, MessageKind, OutgoingMessage

log = logging.getLogger(__name__)

CHANNEL = "wechat"
DEFAULT_API_ROOT = "https://api.weixin.qq.com"
TIMESTAMP_WINDOW = 300  # seconds a push's timestamp may be away from our clock
PASSIVE_DEADLINE = 4.0  # WeChat gives up on a response after 5 s
PASSIVE_MAX_BYTES = 2048  # WeChat refuses longer passive texts: longer answers are pushed instead
INFLIGHT_KEEP = 60.0  # seconds a finished delivery is remembered for redeliveries (WeChat retries for ~15 s)
HTTP_TIMEOUT = 10.0
TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid / expired access token
PERMANENT_ERRORS = {
    45015: "window closed",  # the 48 h customer service window is closed
    43004: "not a follower",  # the customer unsubscribed
    40003: "unknown openid",
    43019: "customer blocked the account",
}
ACK = "success"

T = TypeVar("T")
Push = Callable[[str, str, list[OutgoingMessage]], Coroutine[Any, Any, None]]  # (shop, openid, replies)

_SECRET_IN_URL = re.compile(r"((?:secret|access_token)=)[^&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide secrets and access tokens that requests puts into exception texts (they carry the URL)."""
    return _SECRET_IN_URL.sub(r"\1***", text)


def _short(openid: str) -> str:
    return openid[:6] + "…" if len(openid) > 6 else openid


# ---------------------------------------------------------------------------------------------- signatures


def signature(*parts: str) -> str:
    """WeChat's signature: sha1 of the sorted parts, concatenated (wechatpy's WeChatSigner)."""
    return hashlib.sha1(b"".join(sorted(p.encode("utf-8") for p in parts))).hexdigest()


def signature_ok(given: str, *parts: str) -> bool:
    """Constant-time comparison of a received signature with the expected one."""
    return hmac.compare_digest(signature(*parts).encode("ascii"), given.encode("utf-8", "replace"))


# ---------------------------------------------------------------------------------------------- XML


class BadXml(ValueError):
    pass


MAX_XML_DEPTH = 6
MAX_XML_ELEMENTS = 256


def parse_xml(body: bytes | str) -> dict[str, str]:
    """The ``<xml><Tag>value</Tag>...</xml>`` fields of a WeChat push; ``BadXml`` on anything else.

    expat driven directly: a DOCTYPE (and so every entity declaration) is refused, parameter
    entities are never parsed, nesting and element count are bounded. Nested elements (e.g. an
    event's ``ScanCodeInfo``) are skipped; the first occurrence of a field wins.
    """
    fields: dict[str, str] = {}
    stack: list[str] = []
    text: list[str] = []
    count = 0

    def refuse(*_: Any) -> NoReturn:
        raise BadXml("DOCTYPE and entity declarations are not accepted")

    def start(name: str, _attrs: Any) -> None:
        nonlocal count
        count += 1
        if count > MAX_XML_ELEMENTS or len(stack) >= MAX_XML_DEPTH:
            raise BadXml("XML too large or too deep")
        if not stack and name != "xml":
            raise BadXml("the root element must be <xml>")
        stack.append(name)
        text.clear()

    def end(name: str) -> None:
        if len(stack) == 2:
            fields.setdefault(name, "".join(text))
        stack.pop()
        text.clear()

    def chars(data: str) -> None:
        if len(stack) == 2:
            text.append(data)

    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise BadXml(f"malformed XML: {exc}") from None
    if not count:
        raise BadXml("empty XML")
    return fields


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(to_user: str, from_user: str, create_time: int, content: str) -> str:
    """A passive text reply (the only kind we send passively)."""
    return (
        f"<xml><ToUserName>{_cdata(to_user)}</ToUserName><FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(content)}</Content></xml>"
    )


_ENCRYPTED_REPLY = """<xml>
<Encrypt><![CDATA[{encrypt}]]></Encrypt>
<MsgSignature><![CDATA[{signature}]]></MsgSignature>
<TimeStamp>{timestamp}</TimeStamp>
<Nonce><![CDATA[{nonce}]]></Nonce>
</xml>"""


@functools.lru_cache(maxsize=256)
def prp_crypto(encoding_aes_key: str) -> PrpCrypto:
    """wechatpy's AES-CBC crypto for an account's key, built once per key (the key's base64
    decoding and the cipher set-up are per account, not per push; each call makes its own
    encryptor/decryptor, so one object serves every request)."""
    return PrpCrypto(WeChatCrypto("", encoding_aes_key, "").key)


def encrypted_reply_xml(cfg: WeChatConfig, xml: str, nonce: str, timestamp: str) -> str:
    """A passive reply in safe mode: what wechatpy's ``WeChatCrypto.encrypt_message`` returns
    (same envelope, same msg_signature), with the account's crypto built once."""
    assert cfg.encoding_aes_key is not None
    encrypted = prp_crypto(cfg.encoding_aes_key).encrypt(xml, cfg.app_id)
    encrypt = encrypted.decode() if isinstance(encrypted, bytes) else str(encrypted)
    return _ENCRYPTED_REPLY.format(
        encrypt=encrypt, signature=signature(cfg.token, timestamp, nonce, encrypt), timestamp=timestamp, nonce=nonce
    )


# ---------------------------------------------------------------------------------------------- rendering


def plain_text(message: OutgoingMessage, *, numbered: bool = True) -> str:
    """One message as WeChat text: link and image URL as lines, buttons as numbered lines."""
    lines = [message.numbered_text() if numbered else message.text]
    if not numbered and message.link:
        lines.append(f"{message.link[0]}: {message.link[1]}")
    if message.image_url:
        lines.append(message.image_url)
    return "\n".join(line for line in lines if line)


def passive_text(replies: Sequence[OutgoingMessage]) -> str:
    """Several replies as the one text a passive reply can carry.

    Only the last message with buttons is numbered: typed numbers press that message's buttons
    (the engine remembers the buttons of the last reply that had any).
    """
    last = max((i for i, r in enumerate(replies) if r.buttons), default=-1)
    return "\n\n".join(plain_text(r, numbered=i == last) for i, r in enumerate(replies))


# ---------------------------------------------------------------------------------------------- memories


class ReplayGuard:
    """Signed (shop, timestamp, nonce) pairs seen recently, with the digest of the body they came with.

    Per process and bounded (``max_entries``, the oldest forgotten first); a pair is kept until its
    timestamp leaves the acceptance window, after which the timestamp check rejects it anyway.
    """

    def __init__(self, window: int = TIMESTAMP_WINDOW, max_entries: int = 100_000) -> None:
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str, str], tuple[int, bytes]] = OrderedDict()

    def admit(self, key: tuple[str, str, str], timestamp: int, digest: bytes, now: int) -> bool:
        """False when the pair was already used with another body."""
        while self._seen:
            first = next(iter(self._seen.values()))
            if first[0] + self.window >= now and len(self._seen) < self.max_entries:
                break
            self._seen.popitem(last=False)
        seen = self._seen.get(key)
        if seen is not None:
            return hmac.compare_digest(seen[1], digest)
        self._seen[key] = (timestamp, digest)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class MenuMemory:
    """The msgmenu option ids we sent, per (shop, openid): id -> button payload. Per process, bounded."""

    def __init__(self, max_users: int = 10_000, max_ids: int = 64) -> None:
        self.max_users = max_users
        self.max_ids = max_ids
        self._menus: OrderedDict[tuple[str, str], OrderedDict[str, str]] = OrderedDict()
        self._ids = itertools.count(secrets.randbelow(10**9) * 1000 + 1)  # distinct across restarts
        self._lock = threading.Lock()

    def new_ids(self, shop_id: str, openid: str, payloads: Sequence[str]) -> list[str]:
        with self._lock:
            ids = [str(next(self._ids)) for _ in payloads]
            menu = self._menus.pop((shop_id, openid), None) or OrderedDict()
            menu.update(zip(ids, payloads, strict=True))
            while len(menu) > self.max_ids:
                menu.popitem(last=False)
            self._menus[(shop_id, openid)] = menu
            while len(self._menus) > self.max_users:
                self._menus.popitem(last=False)
            return ids

    def payload(self, shop_id: str, openid: str, menu_id: str) -> str | None:
        with self._lock:
            menu = self._menus.get((shop_id, openid))
            return None if menu is None else menu.get(menu_id)

    def forget(self, shop_id: str, openid: str) -> None:
        with self._lock:
            self._menus.pop((shop_id, openid), None)


MENUS = MenuMemory()


# ---------------------------------------------------------------------------------------------- API client


class _TimeoutSession(requests.Session):
    """requests has no session-wide timeout; wechatpy's token fetch passes none."""

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = HTTP_TIMEOUT
        return super().request(method, url, *args, **kwargs)


def api_root(api_base_url: str | None) -> str:
    """``https://host[/prefix]/cgi-bin/`` for a configured gateway (or WeChat's own API)."""
    base = (api_base_url or DEFAULT_API_ROOT).rstrip("/")
    return base + "/" if base.endswith("/cgi-bin") else base + "/cgi-bin/"


class WeChatApiClient(WeChatClient):
    """wechatpy's client with a configurable API root (also for the token fetch) and a token lock.

    wechatpy's own retry on an invalid token (``auto_retry``) recurses without bound; it is off,
    and ``call`` refreshes once instead.
    """

    _http: requests.Session

    def __init__(self, app_id: str, secret: str, api_base_url: str | None = None) -> None:
        super().__init__(app_id, secret, timeout=HTTP_TIMEOUT, auto_retry=False)
        self.API_BASE_URL = api_root(api_base_url)
        self._http.close()
        self._http = _TimeoutSession()
        self._token_lock = threading.Lock()

    def fetch_access_token(self) -> dict[str, Any]:
        params = {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret}
        result: dict[str, Any] = self._fetch_access_token(url=self.API_BASE_URL + "token", params=params)
        return result

    @property
    def access_token(self) -> str:
        with self._token_lock:  # one fetch at a time, whatever the number of sending threads
            token: str = BaseWeChatClient.access_token.fget(self)
            return token

    def refresh_token(self, stale: str | None) -> None:
        """Fetch a new token unless another thread already replaced ``stale``."""
        with self._token_lock:
            if self.session.get(self.access_token_key) in (stale, None):
                self.fetch_access_token()

    def call(self, fn: Callable[[], T]) -> T:
        """Run one API call (in a worker thread); on an invalid/expired token refresh once and retry once."""
        used = self.access_token
        try:
            return fn()
        except WeChatClientException as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("WeChat app %s: access token rejected (%s), fetching a new one", self.appid, exc.errcode)
            self.refresh_token(used)
            return fn()


_clients: dict[tuple[str, str, str], WeChatApiClient] = {}
_clients_lock = threading.Lock()


def client_for(cfg: WeChatConfig) -> WeChatApiClient:
    """The process's one client (one access-token holder) for this app."""
    key = (cfg.app_id, hashlib.sha256(cfg.app_secret.encode()).hexdigest(), api_root(cfg.api_base_url))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = WeChatApiClient(cfg.app_id, cfg.app_secret, cfg.api_base_url)
        return client


def _wechat_config(shop: ShopConfig | None) -> WeChatConfig | None:
    cfg = shop.channels.wechat if shop else None
    return cfg if cfg is not None and cfg.enabled else None


def _delivery_error(exc: Exception) -> DeliveryError:
    if isinstance(exc, WeChatClientException) and exc.errcode is not None:
        code = int(exc.errcode)
        if code == 45047:
            return DeliveryError("too many messages (45047)", permanent=False)
        return code_failure(code, PERMANENT_ERRORS, f"WeChat error {code}: {redact(str(exc.errmsg))}")
    if isinstance(exc, WeChatClientException):
        status = exc.response.status_code if exc.response is not None else "no response"
        return DeliveryError(f"WeChat API HTTP error ({status})", permanent=False)
    return DeliveryError(f"WeChat API unreachable ({type(exc).__name__})", permanent=False)


class WeChatSender:
    """The WeChat channel's one send function (customer service messages)."""

    channel = CHANNEL

    def __init__(self, ctx: ChannelContext, menus: MenuMemory | None = None) -> None:
        self.ctx = ctx
        self.menus = menus or MENUS

    async def send(
        self,
        shop_id: str,
        external_id: str,
        message: OutgoingMessage,
        *,
        kind: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> str | None:
        """``kind``/``details``: the outbox row's kind and body. When given, a closed window (45015) is
        bridged only for service notices, with WeChat's template rules (channels/wechat_templates.py);
        staff replies and marketing never go as templates. Without them: the legacy reminder template."""
        cfg = _wechat_config(self.ctx.config.shop(shop_id))
        if cfg is None:
            raise not_configured(shop_id, "WeChat account")
        client = client_for(cfg)
        if message.buttons:
            ids = self.menus.new_ids(shop_id, external_id, [b.payload for b in message.buttons])
            menu = {
                "head_content": plain_text(message, numbered=False),
                "list": [{"id": i, "content": b.label} for i, b in zip(ids, message.buttons, strict=True)],
                "tail_content": "",
            }
            call: Callable[[], Any] = lambda: client.message.send_msg_menu(external_id, menu)  # noqa: E731
        else:
            content = plain_text(message)
            call = lambda: client.message.send_text(external_id, content)  # noqa: E731
        try:
            await asyncio.to_thread(client.call, call)
        except (WeChatClientException, requests.RequestException) as exc:
            error = _delivery_error(exc)
            if error.reason == PERMANENT_ERRORS[45015] and kind is not None:
                notice = template_message(cfg, kind, details, plain_text(message))
                if notice is not None:
                    return await self._send_template_data(client, shop_id, external_id, notice.template_id, notice.data)
            elif error.reason == PERMANENT_ERRORS[45015] and cfg.reminder_template_id:
                return await self._send_template(cfg, client, shop_id, external_id, message)
            log.warning("WeChat send to %s/%s failed: %s", shop_id, _short(external_id), error.reason)
            raise error from None
        return None  # the customer service API returns no message id

    async def _send_template(
        self, cfg: WeChatConfig, client: WeChatApiClient, shop_id: str, external_id: str, message: OutgoingMessage
    ) -> str | None:
        """Outside the 48-hour window: the same text as a template message (the shop's template)."""
        text = plain_text(message)
        title, _, body = text.partition("\n")
        parts = {"title": title, "body": body.strip() or title, "text": text}
        data = {field: {"value": parts.get(source, source)} for field, source in cfg.template_fields.items()}
        return await self._send_template_data(client, shop_id, external_id, cfg.reminder_template_id or "", data)

    async def _send_template_data(
        self, client: WeChatApiClient, shop_id: str, external_id: str, template_id: str, data: dict[str, Any]
    ) -> str | None:
        try:
            result = await asyncio.to_thread(
                client.call, lambda: client.message.send_template(external_id, template_id, data)
            )
        except (WeChatClientException, requests.RequestException) as exc:
            error = _delivery_error(exc)
            log.warning("WeChat template to %s/%s failed: %s", shop_id, _short(external_id), error.reason)
            raise error from None
        msgid = result.get("msgid") if isinstance(result, dict) else None
        return str(msgid) if msgid is not None else None


async def check(shop_id: str, cfg: WeChatConfig) -> tuple[bool, str]:
    """Can this shop's app fetch an access token? (``chatbook channels check``)

    A token already held by this process counts; otherwise one is fetched (a new token leaves the
    old one valid for 5 minutes, and a server holding it refreshes once on 40001).
    """
    client = client_for(cfg)
    where = api_root(cfg.api_base_url)
    try:
        await asyncio.to_thread(lambda: client.access_token)
    except WeChatClientException as exc:
        if exc.errcode is None:
            status = exc.response.status_code if exc.response is not None else "no response"
            return False, f"token fetch from {where} failed with HTTP {status}"
        hints = {
            40013: "invalid app_id",
            40125: "invalid app_secret",
            40001: "invalid app_secret",
            40164: "this server's IP address is not on the account's IP whitelist",
            41004: "app_secret missing",
        }
        hint = hints.get(int(exc.errcode), redact(str(exc.errmsg)))
        return False, f"token fetch refused: errcode {exc.errcode} ({hint})"
    except requests.RequestException as exc:
        return False, f"cannot reach {where}: {type(exc).__name__}"
    return True, f"access token fetched for app {cfg.app_id} ({shop_id})"


# ---------------------------------------------------------------------------------------------- inbound


@dataclass
class _Delivery:
    """One inbound message being answered in this process (the first attempt and its redeliveries)."""

    task: asyncio.Task[list[OutgoingMessage]]
    pushing: bool = False
    waiters: int = 0  # requests waiting on it now (the first attempt and redeliveries)
    expiry: asyncio.TimerHandle | None = field(default=None, repr=False)


def to_incoming(shop_id: str, shop: ShopConfig, fields: Mapping[str, str], menus: MenuMemory) -> IncomingMessage | None:
    """The engine's message for a WeChat push, or None when nothing is to be answered."""
    openid = fields["FromUserName"]
    create_time = fields["CreateTime"]
    msg_type = fields["MsgType"].lower()
    event = fields.get("Event", "").lower() if msg_type == "event" else ""
    key = f"{openid}:{create_time}" if msg_type == "event" or not fields.get("MsgId") else fields["MsgId"]
    text = ""
    payload: str | None = None
    kind: MessageKind = "text"
    hint: str | None = None
    if msg_type == "text":
        text = fields.get("Content", "")
        menu_id = fields.get("bizmsgmenuid")
        if menu_id:
            payload = menus.payload(shop_id, openid, menu_id)
            kind = "button" if payload is not None else "text"
    elif msg_type == "voice" and fields.get("Recognition"):
        text = fields["Recognition"]
    elif msg_type == "image":
        kind = "image"
    elif msg_type != "event":
        kind = "sticker"  # voice without recognition, video, location, link: nothing to read
    elif event == "subscribe":
        kind, hint = "event", shop.default_language
        text = "你好" if hint == "zh" else "hello"
    elif event == "click" and fields.get("EventKey") and len(fields["EventKey"].encode()) <= MAX_PAYLOAD_BYTES:
        kind, payload = "button", fields["EventKey"]
    else:
        if event == "unsubscribe":
            log.info("WeChat %s: %s unsubscribed", shop_id, _short(openid))
            menus.forget(shop_id, openid)
        else:
            log.debug("WeChat %s: event %r acknowledged", shop_id, event)
        return None
    try:
        received = datetime.fromtimestamp(int(create_time), UTC)
    except (ValueError, OverflowError, OSError):
        received = None
    return IncomingMessage(
        shop_id=shop_id,
        channel=CHANNEL,
        user_id=openid,
        message_id=f"wx:{key}",
        text=text,
        payload=payload,
        kind=kind,
        language_hint=hint,
        received_at=received,
        raw=dict(fields),
    )


def _failed(task: asyncio.Task[list[OutgoingMessage]], msg: IncomingMessage) -> bool:
    """True (and logged) when the engine task ended without replies to send."""
    if task.cancelled():
        log.warning("WeChat %s: handling of %s was cancelled", msg.shop_id, msg.message_id)
        return True
    exc = task.exception()
    if exc is not None:
        log.error("WeChat %s: the engine failed on %s", msg.shop_id, msg.message_id, exc_info=exc)
        return True
    return False


class WeChatWebhook:
    """The routes' state: replay cache and the deliveries in flight in this process."""

    def __init__(
        self,
        ctx: ChannelContext,
        *,
        engine: MessageHandler | None = None,
        push: Push | None = None,
        passive_deadline: float = PASSIVE_DEADLINE,
        menus: MenuMemory | None = None,
    ) -> None:
        self.ctx = ctx
        self.engine = engine or ctx.engine
        self.menus = menus or MENUS
        self.sender = WeChatSender(ctx, self.menus)
        self.push = push or self._push
        self.passive_deadline = passive_deadline
        self.replays = ReplayGuard()
        self.deliveries: dict[tuple[str, str], _Delivery] = {}

    # ------------------------------------------------------------------ checks

    def _config(self, request: web.Request) -> tuple[str, ShopConfig, WeChatConfig]:
        shop_id = request.match_info["shop"]
        shop = self.ctx.config.shop(shop_id)
        cfg = _wechat_config(shop)
        if shop is None or cfg is None:
            raise web.HTTPNotFound(text="unknown shop")
        return shop_id, shop, cfg

    def _authenticate(self, request: web.Request, cfg: WeChatConfig) -> tuple[str, str]:
        """Signature and timestamp of the query; returns (timestamp, nonce)."""
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if not signature_ok(q.get("signature", ""), cfg.token, timestamp, nonce):
            raise web.HTTPForbidden(text="bad signature")
        try:
            sent_at = int(timestamp)
        except ValueError:
            raise web.HTTPForbidden(text="bad timestamp") from None
        if abs(self.ctx.clock.now().timestamp() - sent_at) > TIMESTAMP_WINDOW:
            raise web.HTTPForbidden(text="timestamp out of window")
        return timestamp, nonce

    # ------------------------------------------------------------------ routes

    async def verify(self, request: web.Request) -> web.Response:
        _shop_id, _shop, cfg = self._config(request)
        self._authenticate(request, cfg)
        echostr = request.query.get("echostr")
        if echostr is None:
            raise web.HTTPBadRequest(text="echostr missing")
        return web.Response(text=echostr, content_type="text/plain")

    async def receive(self, request: web.Request) -> web.StreamResponse:
        started = asyncio.get_running_loop().time()
        shop_id, shop, cfg = self._config(request)
        timestamp, nonce = self._authenticate(request, cfg)
        aes = request.query.get("encrypt_type", "raw").lower() == "aes"
        if cfg.encoding_aes_key and not aes:
            raise web.HTTPForbidden(text="this account is in safe mode: encrypted pushes only")
        if aes and not cfg.encoding_aes_key:
            raise web.HTTPBadRequest(text="AES mode is not configured for this account")
        body = await request.read()  # over client_max_size: 413
        now = int(self.ctx.clock.now().timestamp())
        if not self.replays.admit((shop_id, timestamp, nonce), int(timestamp), hashlib.sha256(body).digest(), now):
            raise web.HTTPForbidden(text="replayed request")
        fields = self._fields(body, cfg, timestamp, nonce, aes, request.query.get("msg_signature", ""))
        msg = to_incoming(shop_id, shop, fields, self.menus)
        if msg is None:
            return web.Response(text=ACK)
        deadline = started + self.passive_deadline
        if self.ctx.inbox is not None:
            return await self._durable(request, msg, fields, cfg, aes, nonce, now, deadline)
        replies = await self._answer(msg, deadline)
        if not replies:
            return web.Response(text=ACK)
        xml = self._reply_xml(msg, fields, cfg, aes, nonce, now, replies)
        return web.Response(text=xml, content_type="application/xml")

    def _reply_xml(
        self,
        msg: IncomingMessage,
        fields: Mapping[str, str],
        cfg: WeChatConfig,
        aes: bool,
        nonce: str,
        now: int,
        replies: Sequence[OutgoingMessage],
    ) -> str:
        xml = text_reply_xml(msg.user_id, fields["ToUserName"], now, passive_text(replies))
        if aes:
            assert cfg.encoding_aes_key is not None
            xml = encrypted_reply_xml(cfg, xml, nonce, str(now))
        return xml

    async def _durable(
        self,
        request: web.Request,
        msg: IncomingMessage,
        fields: Mapping[str, str],
        cfg: WeChatConfig,
        aes: bool,
        nonce: str,
        now: int,
        deadline: float,
    ) -> web.StreamResponse:
        """Stored in the inbox before any answer; the passive reply when the turn finishes in time
        (its outbox rows are then marked sent: never sent twice), else "success" and the outbox
        sends the replies through the customer service API."""
        inbox = self.ctx.inbox
        assert inbox is not None
        try:
            await inbox.accept(msg, wait=True)
        except InboxBusy:
            raise web.HTTPServiceUnavailable(text="busy, retry later") from None
        answer = await inbox.result(msg, deadline - asyncio.get_running_loop().time())
        if answer is None:
            return web.Response(text=ACK)
        if not answer.replies or len(passive_text(answer.replies).encode()) > PASSIVE_MAX_BYTES:
            await inbox.undelivered(answer)
            return web.Response(text=ACK)
        response = web.Response(
            text=self._reply_xml(msg, fields, cfg, aes, nonce, now, answer.replies), content_type="application/xml"
        )
        try:
            await response.prepare(request)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            # WeChat hung up before the passive reply left: nothing is lost, the API sends it
            log.debug("wechat %s: passive reply not written (connection closed)", msg.shop_id)
            await inbox.undelivered(answer)
            return response
        await inbox.delivered(answer)
        return response

    def _fields(
        self, body: bytes, cfg: WeChatConfig, timestamp: str, nonce: str, aes: bool, msg_signature: str
    ) -> dict[str, str]:
        try:
            fields = parse_xml(body)
        except BadXml as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        if aes:
            assert cfg.encoding_aes_key is not None
            encrypted = fields.get("Encrypt", "")
            if not encrypted:
                raise web.HTTPBadRequest(text="Encrypt missing")
            if not signature_ok(msg_signature, cfg.token, timestamp, nonce, encrypted):
                raise web.HTTPForbidden(text="bad msg_signature")
            try:
                plain = prp_crypto(cfg.encoding_aes_key).decrypt(encrypted, cfg.app_id)
            except Exception:  # wrong app id, bad padding, not base64: signed but undecryptable
                raise web.HTTPBadRequest(text="cannot decrypt") from None
            try:
                fields = parse_xml(plain)
            except BadXml as exc:
                raise web.HTTPBadRequest(text=str(exc)) from None
        for name in ("ToUserName", "FromUserName", "CreateTime", "MsgType"):
            if not fields.get(name):
                raise web.HTTPBadRequest(text=f"{name} missing")
        return fields

    # ------------------------------------------------------------------ answering

    async def _answer(self, msg: IncomingMessage, deadline: float) -> list[OutgoingMessage]:
        """The replies to send passively, or [] when they are (or will be) pushed instead."""
        key = (msg.shop_id, msg.message_id)
        delivery = self.deliveries.get(key)
        if delivery is None:
            task: asyncio.Task[list[OutgoingMessage]] = self.ctx.spawn(self.engine.handle(msg))
            delivery = self.deliveries[key] = _Delivery(task)
            task.add_done_callback(lambda _t: self._finished(key))
        elif delivery.pushing:
            return []
        loop = asyncio.get_running_loop()
        delivery.waiters += 1
        try:
            await asyncio.wait({delivery.task}, timeout=max(deadline - loop.time(), 0.0))
        finally:
            delivery.waiters -= 1
        if not delivery.task.done():
            if not delivery.pushing:
                delivery.pushing = True
                delivery.task.add_done_callback(lambda t: self._push_when_done(msg, t))
            return []
        if delivery.pushing:
            return []
        if _failed(delivery.task, msg):
            return []
        replies = delivery.task.result()
        if len(passive_text(replies).encode()) > PASSIVE_MAX_BYTES:
            delivery.pushing = True
            self.ctx.spawn(self.push(msg.shop_id, msg.user_id, replies))
            return []
        return replies

    def _finished(self, key: tuple[str, str]) -> None:
        delivery = self.deliveries.get(key)
        if delivery is not None:
            loop = asyncio.get_running_loop()
            delivery.expiry = loop.call_later(INFLIGHT_KEEP, self.deliveries.pop, key, None)

    def _push_when_done(self, msg: IncomingMessage, task: asyncio.Task[list[OutgoingMessage]]) -> None:
        if _failed(task, msg):
            return
        replies = task.result()
        if replies:
            self.ctx.spawn(self.push(msg.shop_id, msg.user_id, replies))

    async def _push(self, shop_id: str, openid: str, replies: list[OutgoingMessage]) -> None:
        """Default push: the customer service API, each reply in order, a transient failure retried twice."""
        for reply in replies:
            for attempt in range(3):
                try:
                    await self.sender.send(shop_id, openid, reply)
                    break
                except DeliveryError as exc:
                    if exc.permanent or attempt == 2:
                        log.warning("WeChat %s: reply to %s not delivered: %s", shop_id, _short(openid), exc.reason)
                        return
                    await asyncio.sleep(exc.retry_after or 0.5 * 2**attempt)

    def close(self) -> None:
        for delivery in self.deliveries.values():
            if delivery.expiry is not None:
                delivery.expiry.cancel()
        self.deliveries.clear()


WEBHOOK_KEY = web.AppKey("wechat_webhook", WeChatWebhook)


def register(
    app: web.Application,
    ctx: ChannelContext,
    *,
    engine: MessageHandler | None = None,
    push: Push | None = None,
    passive_deadline: float = PASSIVE_DEADLINE,
) -> WeChatWebhook:
    """Add ``GET|POST /wechat/{shop}``. ``engine`` defaults to ``ctx.engine``; ``push`` (how replies
    that missed the passive deadline are sent) defaults to ``WeChatSender`` directly."""
    hook = WeChatWebhook(ctx, engine=engine, push=push, passive_deadline=passive_deadline)
    app[WEBHOOK_KEY] = hook
    app.router.add_get("/wechat/{shop}", hook.verify)
    app.router.add_post("/wechat/{shop}", hook.receive)

    async def _close(_app: web.Application) -> None:
        hook.close()

    app.on_cleanup.append(_close)
    return hook


__all__ = [
    "CHANNEL",
    "MENUS",
    "BadXml",
    "MenuMemory",
    "ReplayGuard",
    "WeChatApiClient",
    "WeChatSender",
    "WeChatWebhook",
    "check",
    "client_for",
    "parse_xml",
    "register",
    "signature",
    "signature_ok",
]
