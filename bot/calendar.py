"""The calendar routes: ``GET /cal/...`` serves .ics files and feeds behind unguessable tokens.

- ``/cal/{shop}/booking/{code}/{token}.ics``: one booking (see core/calendar.py for the tokens)
- ``/cal/{shop}/feed/{token}.ics``: the shop's next 60 days
- ``/cal/{shop}/staff/{staff}/{token}.ics``: one staff member's next 60 days

Anything else under /cal, a wrong or rotated token, an unknown shop, booking or staff member:
404 with no hint of which part was wrong. Calendar apps poll feeds; answers are never cached
by shared caches (``private``) and carry no cookies.
"""

from __future__ import annotations

import logging

from aiohttp import web

from core.calendar import CalendarService

log = logging.getLogger(__name__)

CALENDAR_KEY = web.AppKey("calendar", CalendarService)
ICS_TYPE = "text/calendar"
_MAX_PART = 64


def _part(request: web.Request, name: str) -> str:
    value = request.match_info.get(name, "")
    if not value or len(value) > _MAX_PART:
        raise web.HTTPNotFound(text="not found")
    return value


def _ics(body: bytes | None, filename: str) -> web.Response:
    if body is None:
        raise web.HTTPNotFound(text="not found")
    return web.Response(
        body=body,
        content_type=ICS_TYPE,
        charset="utf-8",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": f'inline; filename="{filename}.ics"',
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


async def booking_ics(request: web.Request) -> web.Response:
    service = request.app[CALENDAR_KEY]
    shop, code, token = _part(request, "shop"), _part(request, "code"), _part(request, "token")
    return _ics(await service.booking_ics(shop, code, token), f"booking-{code}")


async def shop_feed(request: web.Request) -> web.Response:
    service = request.app[CALENDAR_KEY]
    shop, token = _part(request, "shop"), _part(request, "token")
    return _ics(await service.feed_ics(shop, "", token), shop)


async def staff_feed(request: web.Request) -> web.Response:
    service = request.app[CALENDAR_KEY]
    shop, staff, token = _part(request, "shop"), _part(request, "staff"), _part(request, "token")
    return _ics(await service.feed_ics(shop, staff, token), f"{shop}-{staff}")


def register(app: web.Application, service: CalendarService) -> None:
    """Add the ``GET /cal/...`` routes, served by ``service``."""
    app[CALENDAR_KEY] = service
    app.router.add_get("/cal/{shop}/booking/{code}/{token}.ics", booking_ics)
    app.router.add_get("/cal/{shop}/feed/{token}.ics", shop_feed)
    app.router.add_get("/cal/{shop}/staff/{staff}/{token}.ics", staff_feed)
