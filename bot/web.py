"""The aiohttp application: routes, body limits, JSON errors and the health check."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from bot import api, console
from bot import calendar as calendar_routes
from bot.api import SERVICES_KEY, json_error
from bot.bootstrap import Services
from bot.usecases.late_replies import push_late_replies
from bot.wiring import channel_modules
from core.calendar import CalendarService
from core.messages import OutgoingMessage

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # webhooks and chat messages are small; bigger bodies get 413


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown API routes answer JSON 404; unexpected failures answer 500 without details."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.status in (404, 405) and exc.content_type != "application/json":
            code = "not_found" if exc.status == 404 else "method_not_allowed"
            raise json_error(exc.status, code, exc.reason) from None
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        raise json_error(500, "internal_error", "something went wrong on our side") from None


async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    try:
        await services.db.ping()
    except Exception as exc:  # the point of a health check is to report, not to raise
        log.warning("health check: database unreachable: %s", type(exc).__name__)
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok", "shops": sorted(services.config.shops)})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format: backlogs (from the database), this process's counters and latencies."""
    from bot.metrics import CONTENT_TYPE

    body = await request.app[SERVICES_KEY].metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


# The site icon (a chat bubble), so browsers' automatic /favicon.ico request is not a 404 in
# every page's console. SVG: one small file, sharp at every size.
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<rect width="32" height="32" rx="7" fill="#2f6f5e"/>'
    b'<path d="M8 9h16a2 2 0 0 1 2 2v9a2 2 0 0 1-2 2H14l-6 5v-5a2 2 0 0 1-2-2v-9a2 2 0 0 1 2-2z" fill="#fff"/>'
    b"</svg>"
)


async def favicon(request: web.Request) -> web.Response:
    return web.Response(body=FAVICON, content_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def build_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors, console.security_headers])
    app[SERVICES_KEY] = services
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/favicon.ico", favicon)
    api.register(app)
    console.register(app)
    calendar_routes.register(app, CalendarService(services.db, services.config, services.clock))
    for name, module, _sender in channel_modules():
        if name == "wechat":  # replies that miss WeChat's 5-second window go through the outbox
            module.register(app, services.channels, push=_outbox_push(services, name))
        else:
            module.register(app, services.channels)
    return app


def _outbox_push(services: Services, channel: str) -> Callable[[str, str, list[OutgoingMessage]], Awaitable[None]]:
    """Late replies are stored in the outbox first, then delivered (retries, fallback, staff flag)."""

    async def push(shop_id: str, external_id: str, replies: list[OutgoingMessage]) -> None:
        await push_late_replies(services, channel, shop_id, external_id, replies)

    return push
