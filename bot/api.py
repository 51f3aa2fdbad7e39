"""The public JSON API: shops with their services, and free slots in the shop's time zone.

Errors are JSON too: ``{"error": <code>, "message": <text>, "field": <name>}`` with 400 for bad
parameters (``field`` names the one at fault) and 404 for an unknown shop, service or staff member.
The edge checks used here and by the console API (dates in range, integer ids, text lengths)
live in this module too, so no odd input reaches the domain and turns into a 500.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
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


def json_error(status: int, code: str, message: str, field: str | None = None) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": code, "message": message}`` (plus ``field`` if given)."""
    body = _dumps({"error": code, "message": message, **({"field": field} if field else {})})
    if status == 405:
        return web.HTTPMethodNotAllowed("", [], text=body, content_type="application/json")
    if status == 413:
        return web.HTTPRequestEntityTooLarge(0, text=body, content_type="application/json")
    return _ERRORS.get(status, web.HTTPInternalServerError)(text=body, content_type="application/json")


# ----------------------------------------------------------------------------- edge checks

MAX_ID = 2**31 - 1  # ids are INTEGER columns: anything larger names nothing
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, newline and CR are text
SANE_DAYS = 731  # staff look up to two years back or ahead; nothing else is meaningful


def bad(field: str, message: str, code: str = "bad_parameter") -> web.HTTPException:
    """400 naming the field at fault."""
    return json_error(400, code, f"{field}: {message}", field=field)


def int_id(value: Any, field: str = "id") -> int:
    """A positive integer id that fits the database (else 400 naming the field)."""
    text = str(value).strip() if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= MAX_ID:
        raise bad(field, f"must be a whole number from 1 to {MAX_ID}", "bad_id")
    return int(text)


def text_field(data: dict[str, Any], field: str, *, max_len: int, required: bool = False, default: str = "") -> str:
    """A string field of a JSON body: missing -> default; wrong type or too long -> 400."""
    value = data.get(field)
    if value is None or (value == "" and not required):
        if required:
            raise bad(field, "is required", "missing_parameter")
        return default
    if not isinstance(value, str):
        raise bad(field, "must be text")
    if CONTROL.search(value):  # NUL and friends: PostgreSQL refuses them, no person types them
        raise bad(field, "control characters are not allowed", "bad_text")
    value = value.strip()
    if required and not value:
        raise bad(field, "is required", "missing_parameter")
    if len(value) > max_len:
        raise bad(field, f"at most {max_len} characters", "too_long")
    return value


def parse_date(value: Any, field: str, *, today: date, before: int = SANE_DAYS, after: int = SANE_DAYS) -> date:
    """YYYY-MM-DD within ``before`` days back and ``after`` days ahead of ``today``."""
    if not isinstance(value, str) or len(value) != 10:
        raise bad(field, "must be a date YYYY-MM-DD", "bad_date")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise bad(field, "must be a date YYYY-MM-DD", "bad_date") from None
    first, last = today - timedelta(days=before), today + timedelta(days=after)
    if not first <= day <= last:
        raise bad(field, f"must be between {first.isoformat()} and {last.isoformat()}", "date_out_of_range")
    return day


def parse_time(value: Any, field: str = "time") -> int:
    """HH:MM -> minutes after midnight."""
    if not isinstance(value, str) or len(value) > 5 or value.count(":") != 1:
        raise bad(field, "must be a time HH:MM", "bad_time")
    hh, mm = value.split(":")
    if not (hh.isascii() and hh.isdigit() and mm.isascii() and mm.isdigit()) or int(hh) > 23 or int(mm) > 59:
        raise bad(field, "must be a time HH:MM", "bad_time")
    return int(hh) * 60 + int(mm)


def parse_moment(value: Any, field: str, *, today: date) -> tuple[date, int]:
    """'YYYY-MM-DD HH:MM' within the sane range: (local date, minute of day)."""
    if not isinstance(value, str) or len(value) != 16:
        raise bad(field, "use 'YYYY-MM-DD HH:MM'", "bad_time")
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d %H:%M")
    except ValueError:
        raise bad(field, "use 'YYYY-MM-DD HH:MM'", "bad_time") from None
    day = parse_date(parsed.date().isoformat(), field, today=today)
    return day, parsed.hour * 60 + parsed.minute


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
    query = dict(request.query)
    service_id = text_field(query, "service", max_len=60, required=True)
    today = services.clock.now().astimezone(shop.tz).date()
    # nothing is bookable before today or beyond the shop's horizon: asking is a mistake
    day = parse_date(query.get("date", "").strip(), "date", today=today, before=1, after=shop.booking.horizon_days + 1)
    staff_id = text_field(query, "staff", max_len=60) or None
    addons = [a.strip() for a in text_field(query, "addons", max_len=500).split(",") if a.strip()]
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
