"""The aiohttp application: routes, body limits, JSON errors and the health check."""

from __future__ import annotations

import logging

from aiohttp import web

from bot import api
from bot.api import SERVICES_KEY, json_error
from bot.bootstrap import Services
from bot.wiring import channel_modules

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # webhooks and chat messages are small; bigger bodies get 413


@web.middleware
async def json_errors(request: web.Request, handler: web.Handler) -> web.StreamResponse:
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


def build_app(services: Services) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[json_errors])
    app[SERVICES_KEY] = services
    app.router.add_get("/healthz", healthz)
    api.register(app)
    for _name, module, _sender in channel_modules():
        module.register(app, services.channels)
    return app
