"""The console's WebSocket (/console/ws): pushes live events to a logged-in staff member.

Only events for shops the staff member may see are sent (the session is checked when the
socket opens; the Origin must be this server). Events are small ({type, shop, conversation});
the page fetches the details through the JSON API, which checks access again.

A socket lives only as long as its session: logout, "log out everywhere" and a password change
publish ``sessions_ended`` (across processes on PostgreSQL) and the socket re-checks its session
then, and every RECHECK_SECONDS in any case (a `chatbook staff logout` from another process on
SQLite); a session that is gone closes it with code 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from bot.api import SERVICES_KEY
from bot.bootstrap import Services
from bot.console.auth import current_session
from core.staff_accounts import Session

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 25
RECHECK_SECONDS = 5.0
SESSION_ENDED = 4401  # close code: log in again


async def _alive(services: Services, session: Session) -> bool:
    try:
        return await services.accounts.session(session.token) is not None
    except Exception as exc:  # the database is away: keep the socket; events carry no details
        log.warning("console socket: session re-check failed (%s)", type(exc).__name__)
        return True


async def _forward(
    ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]], services: Services, session: Session
) -> None:
    """Events for this staff member's shops, while the session lives."""
    loop = asyncio.get_running_loop()
    shops = set(session.account.shops)
    checked = loop.time()
    while True:
        try:
            event: dict[str, Any] | None = await asyncio.wait_for(queue.get(), RECHECK_SECONDS)
        except TimeoutError:
            event = None
        ended = event is not None and event.get("type") == "sessions_ended"
        due = loop.time() - checked >= RECHECK_SECONDS  # also when events keep the queue busy
        if due or (ended and event is not None and event.get("account") == session.account.id):
            checked = loop.time()
            if not await _alive(services, session):
                await ws.close(code=SESSION_ENDED, message=b"session ended")
                return
        if event is not None and not ended and (event.get("shop") in shops or event.get("type") == "resync"):
            await ws.send_str(json.dumps(event))


async def console_ws(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is None:
        raise web.HTTPUnauthorized(text="log in first")
    origin = request.headers.get("Origin")
    if origin is not None and origin.split("://", 1)[-1].rstrip("/") != request.host:
        raise web.HTTPForbidden(text="cross-site WebSocket refused")
    services = request.app[SERVICES_KEY]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=4096)
    await ws.prepare(request)
    queue = services.events.subscribe()
    sender = asyncio.create_task(_forward(ws, queue, services, session))
    try:
        await ws.send_str(json.dumps({"type": "hello", "shops": sorted(session.account.shops)}))
        async for message in ws:  # the client only pings; anything else is ignored
            if message.type == WSMsgType.ERROR:
                break
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await sender  # a console that went away mid-send is not an error of this request
        services.events.unsubscribe(queue)
    return ws
