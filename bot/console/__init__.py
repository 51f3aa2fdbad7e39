"""The staff console: pages, JSON API and live WebSocket under /console and /api/console."""

from __future__ import annotations

import importlib.util

from aiohttp import web

from bot.api import SERVICES_KEY
from bot.console import api
from bot.console.ws import console_ws

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@web.middleware
async def security_headers(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.path.startswith("/console"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def register(app: web.Application) -> None:
    api.register(app)
    app.router.add_get("/console/ws", console_ws)
    if importlib.util.find_spec("bot.console.views") is not None:
        from bot.console import views

        views.register(app)

    async def start_events(app: web.Application) -> None:
        await app[SERVICES_KEY].events.start()

    app.on_startup.append(start_events)
