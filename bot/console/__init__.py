"""The staff console: pages, JSON API and live WebSocket under /console and /api/console.

Also owns what the server believes about the original request behind a reverse proxy
(``server.trusted_proxies``, see bot/console/proxy.py) and the security headers: CSP and
friends on console pages, HSTS on every answer served over HTTPS.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.api import SERVICES_KEY
from bot.console import api, faq_api, records_api
from bot.console.proxy import behind_proxy
from bot.console.ws import console_ws

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; "
    "connect-src 'self'; media-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


HSTS = "max-age=31536000; includeSubDomains"


def _headers(request: web.Request, headers: Any) -> None:
    if request.secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if request.path.startswith("/console"):
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Content-Type-Options", "nosniff")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    request = behind_proxy(request)  # scheme and client address as the trusted proxy saw them
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects and errors carry the headers too
        _headers(request, exc.headers)
        raise
    if not response.prepared:  # a WebSocket has already sent its headers
        _headers(request, response.headers)
    return response


def register(app: web.Application) -> None:
    api.register(app)
    records_api.register(app)
    faq_api.register(app)  # "add this phrasing to entry X" (issue 11)
    app.router.add_get("/console/ws", console_ws)
    if importlib.util.find_spec("bot.console.views") is not None:
        from bot.console import views

        views.register(app)
        from bot.console import reports  # the Reports page (issue 15), beside the other pages

        reports.register(app)
        from bot.console import records_views  # customers' records (issue 15)

        records_views.register(app)

    async def start_events(app: web.Application) -> None:
        services = app[SERVICES_KEY]
        await services.events.start()

        async def sessions_ended(account_id: int) -> None:  # open sockets of that account re-check
            await services.events.publish({"type": "sessions_ended", "account": account_id})

        services.accounts.on_sessions_ended.append(sessions_ended)

    app.on_startup.append(start_events)
