"""The WeCom customer service API (kf/*) over aiohttp, with one cached access token per account.

``gettoken`` is called when no token is held or when WeCom answers 40014 (invalid) or 42001
(expired): then the token is fetched again ONCE (unless another task already replaced it) and the
call retried once. ``api_base_url`` replaces ``https://qyapi.weixin.qq.com`` (``/cgi-bin/`` is
appended unless given). Tokens and secrets never appear in logs or exception texts.

The same client, built from a shop's ``staff_alerts.wecom`` (a self-built app's Secret), sends the
staff alerts to a WeCom group chat (``appchat_send``; channels/wecom/sender.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import aiohttp

from core.config import WeComConfig, WeComStaffAlerts

log = logging.getLogger(__name__)

DEFAULT_API_ROOT = "https://qyapi.weixin.qq.com"
HTTP_TIMEOUT = 10.0
TOKEN_ERRORS = frozenset({40014, 42001})
# kf errors worth a name (WeCom's global error codes)
SEND_COUNT_LIMIT = 95001  # 5 messages after the customer's last message
SEND_TIME_LIMIT = 95002  # 48 hours after the customer's last message
BAD_MSG_TOKEN = 95007
STATE_FORBIDS_SENDING = 95018  # the session is with a servicer or ended


class WeComError(Exception):
    """An answer with a non-zero errcode (``errcode`` None: HTTP or network failure)."""

    def __init__(self, errcode: int | None, errmsg: str) -> None:
        super().__init__(f"WeCom error {errcode}: {errmsg}" if errcode is not None else errmsg)
        self.errcode = errcode
        self.errmsg = errmsg


def api_root(api_base_url: str | None) -> str:
    base = (api_base_url or DEFAULT_API_ROOT).rstrip("/")
    return base + "/" if base.endswith("/cgi-bin") else base + "/cgi-bin/"


class WeComApi:
    """One account's client; share it (``client_for``) so the process holds one token per account."""

    def __init__(self, cfg: WeComConfig | WeComStaffAlerts) -> None:
        self.corp_id = cfg.corp_id
        self._secret = cfg.secret
        self.open_kfid = cfg.open_kfid if isinstance(cfg, WeComConfig) else ""  # "" for an app (staff alerts)
        self.root = api_root(cfg.api_base_url)
        self._token: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self.token_fetches = 0

    def _bind(self) -> None:
        """The HTTP session and the lock belong to one event loop (tests run several)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._lock, self._session = loop, asyncio.Lock(), None

    def _http(self) -> aiohttp.ClientSession:
        self._bind()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT))
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None

    async def _json(self, method: str, path: str, *, params: dict[str, str], body: Any = None) -> dict[str, Any]:
        try:
            async with self._http().request(method, self.root + path, params=params, json=body) as resp:
                if resp.status != 200:
                    raise WeComError(None, f"HTTP {resp.status} from {path}")
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WeComError(None, f"{path}: {type(exc).__name__}") from None
        if not isinstance(data, dict):
            raise WeComError(None, f"{path}: not a JSON object")
        code = data.get("errcode", 0)
        if code not in (0, None):
            raise WeComError(int(code), str(data.get("errmsg", ""))[:200])
        return data

    async def token(self, stale: str | None = None) -> str:
        """The held token, or a fresh one (when none is held, or the held one is ``stale``)."""
        self._bind()
        async with self._lock:
            if self._token is None or self._token == stale:
                data = await self._json("GET", "gettoken", params={"corpid": self.corp_id, "corpsecret": self._secret})
                token = data.get("access_token")
                if not isinstance(token, str) or not token:
                    raise WeComError(None, "gettoken returned no access_token")
                self._token = token
                self.token_fetches += 1
            return self._token

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        used = await self.token()
        try:
            return await self._json("POST", path, params={"access_token": used}, body=body)
        except WeComError as exc:
            if exc.errcode not in TOKEN_ERRORS:
                raise
            log.info("WeCom %s: access token rejected (%s), fetching a new one", self.corp_id, exc.errcode)
            fresh = await self.token(stale=used)
            return await self._json("POST", path, params={"access_token": fresh}, body=body)

    # ------------------------------------------------------------------ kf

    async def sync_msg(self, cursor: str, token: str | None, limit: int = 1000) -> dict[str, Any]:
        body: dict[str, Any] = {"open_kfid": self.open_kfid, "limit": limit, "voice_format": 0}
        if cursor:
            body["cursor"] = cursor
        if token:
            body["token"] = token
        return await self.call("kf/sync_msg", body)

    async def send_msg(self, external_userid: str, content: dict[str, Any]) -> dict[str, Any]:
        return await self.call("kf/send_msg", {"touser": external_userid, "open_kfid": self.open_kfid, **content})

    async def send_msg_on_event(self, code: str, content: dict[str, Any]) -> dict[str, Any]:
        return await self.call("kf/send_msg_on_event", {"code": code, **content})

    async def trans(self, external_userid: str, state: int, servicer: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"open_kfid": self.open_kfid, "external_userid": external_userid, "service_state": state}
        if servicer:
            body["servicer_userid"] = servicer
        return await self.call("kf/service_state/trans", body)

    async def account_list(self) -> dict[str, Any]:
        return await self.call("kf/account/list", {"offset": 0, "limit": 100})

    # ------------------------------------------------------------------ app group chats (staff alerts)

    async def appchat_send(self, chatid: str, content: dict[str, Any]) -> dict[str, Any]:
        return await self.call("appchat/send", {"chatid": chatid, **content, "safe": 0})


_clients: dict[tuple[str, str, str, str], WeComApi] = {}


def client_for(cfg: WeComConfig | WeComStaffAlerts) -> WeComApi:
    """The process's one client (one token holder) for this account (or app)."""
    kfid = cfg.open_kfid if isinstance(cfg, WeComConfig) else ""
    key = (cfg.corp_id, hashlib.sha256(cfg.secret.encode()).hexdigest(), kfid, api_root(cfg.api_base_url))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = WeComApi(cfg)
    return client


async def close_clients() -> None:
    for client in list(_clients.values()):
        await client.close()
    _clients.clear()
