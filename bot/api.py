"""The public JSON API: shops with their services, and free slots in the shop's time zone.

Errors are JSON too: ``{"error": <code>, "message": <text>}`` with 400 for bad parameters and
404 for an unknown shop, service or staff member.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from aiohttp import web

from bot.bootstrap import Services
from core.bookings import UnknownItem
from core.config import ShopConfig

SERVICES_KEY: web.AppKey[Services] = web.AppKey("services", Services)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    401: web.HTTPUnauthorized,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    409: web.HTTPConflict,
    422: web.HTTPUnprocessableEntity,
    429: web.HTTPTooManyRequests,
    500: web.HTTPInternalServerError,
    503: web.HTTPServiceUnavailable,
}


def json_error(status: int, code: str, message: str) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": code, "message": message}``."""
    body = _dumps({"error": code, "message": message})
    if status == 405:
        return web.HTTPMethodNotAllowed("", [], text=body, content_type="application/json")
    return _ERRORS.get(status, web.HTTPInternalServerError)(text=body, content_type="application/json")


def _shop_json(shop_id: str, shop: ShopConfig) -> dict[str, Any]:
    return {
        "id": shop_id,
        "name": {"zh": shop.name.zh, "en": shop.name.en},
        "kind": shop.kind,
        "timezone": shop.timezone,
        "currency": shop.currency,
        "address": {"zh": shop.address.zh, "en": shop.address.en},
        "services": [
            {
                "id": sid,
                "name": {"zh": svc.name.zh, "en": svc.name.en},
                "duration_min": svc.duration_min,
                "price": float(svc.price),
                "confirmation": svc.confirmation,
                "addons": svc.addons,
            }
            for sid, svc in shop.services.items()
        ],
        "addons": [
            {
                "id": aid,
                "name": {"zh": a.name.zh, "en": a.name.en},
                "duration_min": a.duration_min,
                "price": float(a.price),
            }
            for aid, a in shop.addons.items()
        ],
    }


async def list_shops(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    return web.json_response(
        {"shops": [_shop_json(sid, shop) for sid, shop in services.config.shops.items()]},
        dumps=_dumps,
    )


async def availability(request: web.Request) -> web.Response:
    services = request.app[SERVICES_KEY]
    shop_id = request.match_info["shop"]
    shop = services.config.shop(shop_id)
    if shop is None:
        raise json_error(404, "unknown_shop", f"no shop '{shop_id}'")
    service_id = request.query.get("service", "").strip()
    if not service_id:
        raise json_error(400, "missing_parameter", "the 'service' parameter is required")
    raw_day = request.query.get("date", "").strip()
    try:
        day = date.fromisoformat(raw_day)
    except ValueError:
        raise json_error(400, "bad_date", "the 'date' parameter must be YYYY-MM-DD") from None
    staff_id = request.query.get("staff") or None
    addons = [a for a in request.query.get("addons", "").split(",") if a.strip()]
    try:
        slots = await services.bookings.free_slots(shop_id, service_id, day, staff_id=staff_id, addons=addons)
        duration = services.bookings.duration_min(shop, service_id, addons)
    except UnknownItem as exc:
        status = 400 if exc.reason.value in ("staff_not_qualified", "addon_not_offered") else 404
        raise json_error(status, exc.reason.value, exc.detail) from None
    tz = shop.tz
    return web.json_response(
        {
            "shop": shop_id,
            "service": service_id,
            "date": day.isoformat(),
            "timezone": shop.timezone,
            "duration_min": duration,
            "slots": [
                {
                    "start": slot.start.astimezone(tz).isoformat(),
                    "end": slot.end.astimezone(tz).isoformat(),
                    "time": slot.start.astimezone(tz).strftime("%H:%M"),
                    "staff": list(slot.staff_ids),
                }
                for slot in slots
            ],
        },
        dumps=_dumps,
    )


def register(app: web.Application) -> None:
    app.router.add_get("/api/shops", list_shops)
    app.router.add_get("/api/shops/{shop}/availability", availability)
