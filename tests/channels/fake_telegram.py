"""A small fake Telegram Bot API for tests: python-telegram-bot's real HTTP client talks to it.

    fake = FakeTelegram(TOKEN)
    await fake.start()                       # http://127.0.0.1:<port>, use as api_base_url
    ...
    await fake.wait_for(lambda: fake.sent_to(42))
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    fake.block(42)                           # 403 "bot was blocked by the user" for that chat

It serves ``/bot<TOKEN>/<method>`` for getMe, setWebhook, deleteWebhook, sendMessage, sendPhoto,
answerCallbackQuery, editMessageReplyMarkup and getUpdates (long polling over ``push_update``),
records every call as ``Call(method, params)`` and answers like Telegram does
(``{"ok": true, "result": ...}``, message ids counting up, errors with ``error_code``,
``description`` and ``parameters.retry_after``). A wrong token gets 401, an unknown method 404.

Updates for tests are built with ``text_update`` and ``callback_update``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

# PTB form-encodes parameters and JSON-encodes every non-string value; these are the ones we read back.
_JSON_PARAMS = {
    "chat_id",
    "message_id",
    "reply_markup",
    "allowed_updates",
    "offset",
    "limit",
    "timeout",
    "drop_pending_updates",
    "max_connections",
    "show_alert",
    "cache_time",
}


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None
    times: int


class FakeTelegram:
    def __init__(
        self, token: str, *, username: str = "pawspa_bot", first_name: str = "PawSpa", port: int = 0
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":")[0]),
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": False,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}  # every message the bot sent, as Telegram keeps it
        self.webhook_url = ""
        self._ids = itertools.count(1001)
        self._failures: dict[str, list[_Failure]] = {}
        self._blocked: set[int] = set()
        self._missing: set[int] = set()
        self._updates: list[dict[str, Any]] = []
        self._updates_changed = asyncio.Event()
        self._closing = False
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=port)  # a fixed port: "down, then back"

    # ------------------------------------------------------------------ control

    async def start(self) -> str:
        await self._server.start_server(access_log=None)  # request URLs hold the token
        return self.url

    async def close(self) -> None:
        self._closing = True
        self._updates_changed.set()
        await self._server.close()

    @property
    def url(self) -> str:
        return str(self._server.make_url("")).rstrip("/")

    def fail_next(self, method: str, status: int, description: str, *, retry_after: int | None = None, times: int = 1):
        """The next ``times`` calls of ``method`` fail with this status."""
        self._failures.setdefault(method, []).append(_Failure(status, description, retry_after, times))

    def block(self, chat_id: int) -> None:
        """The user blocked the bot: sends to this chat get 403."""
        self._blocked.add(chat_id)

    def forget_chat(self, chat_id: int) -> None:
        """Sends to this chat get 400 "chat not found"."""
        self._missing.add(chat_id)

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (polling mode)."""
        self._updates.append(update)
        self._updates_changed.set()

    # ------------------------------------------------------------------ inspection

    def of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def sent_to(self, chat_id: int) -> list[Call]:
        """sendMessage/sendPhoto calls to a chat that succeeded (have a message in ``messages``)."""
        return [
            c
            for c in self.calls
            if c.method in ("sendMessage", "sendPhoto") and c.params.get("chat_id") == chat_id and "result" in c.params
        ]

    async def wait_for(self, condition: Callable[[], Any], within: float = 10.0) -> None:
        """Poll until ``condition()`` is true (bounded): handling runs in background tasks."""
        deadline = asyncio.get_running_loop().time() + within
        while not condition():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out; calls so far: {[c.method for c in self.calls]}")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------------ the API

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params)
        self.calls.append(call)
        failure = self._take_failure(method)
        if failure is not None:
            return _error(failure.status, failure.description, failure.retry_after)
        handler: Callable[[dict[str, Any]], Awaitable[web.Response]] | None = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        return await handler(params)

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    async def _api_getMe(self, params: dict[str, Any]) -> web.Response:
        return _ok(self.bot_user)

    async def _api_setWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = params.get("url", "")
        return _ok(True)

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook_url = ""
        return _ok(True)

    async def _api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        if not params.get("text"):
            return _error(400, "Bad Request: message text is empty")
        return self._deliver(params, {"text": params["text"]})

    async def _api_sendPhoto(self, params: dict[str, Any]) -> web.Response:
        body: dict[str, Any] = {
            "photo": [
                {"file_id": f"AgACAgIAAxkBAAI{n}", "file_unique_id": f"AQAD{n}", "width": w, "height": h}
                for n, (w, h) in enumerate(((90, 67), (320, 240), (800, 600)))
            ]
        }
        if params.get("caption"):
            body["caption"] = params["caption"]
        return self._deliver(params, body)

    def _deliver(self, params: dict[str, Any], body: dict[str, Any]) -> web.Response:
        chat_id = params.get("chat_id")
        if chat_id in self._blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        if chat_id in self._missing or not isinstance(chat_id, int):
            return _error(400, "Bad Request: chat not found")
        message = {
            "message_id": next(self._ids),
            "from": self.bot_user,
            "chat": {"id": chat_id, "type": "private", "first_name": "Customer"},
            "date": int(time.time()),
            **body,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[message["message_id"]] = message
        params["result"] = message
        return _ok(message)

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> web.Response:
        if not params.get("callback_query_id"):
            return _error(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return _ok(True)

    async def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> web.Response:
        message = self.messages.get(params.get("message_id"))  # type: ignore[arg-type]  # None or a bad id: no match
        if message is None or message["chat"]["id"] != params.get("chat_id"):
            return _error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if not markup and "reply_markup" not in message:
            return _error(400, "Bad Request: message is not modified")
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return _ok(message)

    async def _api_getUpdates(self, params: dict[str, Any]) -> web.Response:
        if self.webhook_url:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = asyncio.get_running_loop().time() + float(params.get("timeout") or 0)
        while not self._updates and not self._closing:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._updates_changed.clear()
            try:
                await asyncio.wait_for(self._updates_changed.wait(), remaining)
            except TimeoutError:
                break
        return _ok(list(self._updates[: int(params.get("limit") or 100)]))


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str):
            params[key] = "<file>"
        elif key in _JSON_PARAMS:
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        else:
            params[key] = value
    return params


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


# ----------------------------------------------------------------------------- updates


def user(chat_id: int, first_name: str = "王女士", language_code: str | None = "zh-hans") -> dict[str, Any]:
    person: dict[str, Any] = {"id": chat_id, "is_bot": False, "first_name": first_name}
    if language_code:
        person["language_code"] = language_code
    return person


def text_update(update_id: int, chat_id: int, text: str, **who: Any) -> dict[str, Any]:
    sender = user(chat_id, **who)
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": sender,
            "chat": {"id": chat_id, "type": "private", "first_name": sender["first_name"]},
            "date": int(time.time()),
            "text": text,
        },
    }


def callback_update(update_id: int, chat_id: int, message: dict[str, Any], data: str, **who: Any) -> dict[str, Any]:
    """A tap on a button of ``message`` (a message the bot sent, as the fake recorded it)."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq{update_id}",
            "from": user(chat_id, **who),
            "message": message,
            "chat_instance": f"ci{chat_id}",
            "data": data,
        },
    }
