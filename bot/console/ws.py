"""The console's WebSocket (/console/ws): pushes live events to a logged-in staff member.

Only events for shops the staff member may see are sent (the session is checked when the
socket opens; the Origin must be this server). Events are small ({type, shop, conversation});
the page fetches the details through the JSON API, which checks access again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import WSMsgType, web

from bot.api import SERVICES_KEY
from bot.console.auth import current_session

HEARTBEAT_SECONDS = 25


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
    shops = set(session.account.shops)

    async def forward() -> None:
        while True:
            event = await queue.get()
            if event.get("shop") in shops:
                await ws.send_str(json.dumps(event))

    sender = asyncio.create_task(forward())
    try:
        await ws.send_str(json.dumps({"type": "hello", "shops": sorted(shops)}))
        async for message in ws:  # the client only pings; anything else is ignored
            if message.type == WSMsgType.ERROR:
                break
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await sender  # a console that went away mid-send is not an error of this request
        services.events.unsubscribe(queue)
    return ws
