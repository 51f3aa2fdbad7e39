"""The console's Reports page and its data: figures per shop, side by side for several shops, CSV.

    GET /console/reports              the page shell (charts drawn by static/reports.js with uPlot)
    GET /api/console/reports          JSON: ?shop=<id>|all &grain=day|week|month &from= &to= (local dates)
    GET /api/console/reports.csv      the same figures as a CSV download

Every figure is computed in core/reports.py; this module checks the request (session, the shops
the account may see: 403; grain, dates, range: 400 naming the field) and renders. ``shop=all``
means every configured shop of the account, side by side. Comments in the recent-ratings list
are customer text: they go out as JSON data and are written with textContent.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from aiohttp import web

from bot.api import SERVICES_KEY, bad, parse_date
from bot.bootstrap import Services
from bot.console import views  # the shared page helpers: chrome, language, rendering
from bot.console.auth import check_shop, require_session
from bot.usecases import Refused
from bot.usecases.reports import check_range
from core import reports
from core.ratings import RatingService
from core.staff_accounts import Session

ALL = "all"
# Without from/to: the last 30 days, 12 weeks or 12 months up to today.
DEFAULT_SPAN = {"day": timedelta(days=29), "week": timedelta(days=83), "month": timedelta(days=364)}
RECENT_RATINGS = 10


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))


def visible_shops(services: Services, session: Session) -> list[str]:
    return [sid for sid in session.account.shops if sid in services.config.shops]


def _shops(services: Services, session: Session, asked: str | None) -> list[str]:
    visible = visible_shops(services, session)
    if asked == ALL:
        if not visible:
            raise bad("shop", "no shop on this account")
        return visible
    shop_id = asked or (visible[0] if visible else "")
    if not shop_id or len(shop_id) > 40:
        raise bad("shop", "name a shop, or 'all'")
    check_shop(session, shop_id)
    if shop_id not in services.config.shops:
        raise bad("shop", f"no shop '{shop_id}'", "unknown_shop")
    return [shop_id]


def _grain(value: str | None) -> reports.Grain:
    grain = value or "day"
    for known in reports.GRAINS:
        if grain == known:
            return known
    raise bad("grain", "must be day, week or month", "bad_grain")


def _range(services: Services, shop_id: str, grain: reports.Grain, query: Any) -> tuple[date, date]:
    today = services.clock.now().astimezone(services.config.shops[shop_id].tz).date()
    last = parse_date(query["to"], "to", today=today) if query.get("to") else today
    first = parse_date(query["from"], "from", today=today) if query.get("from") else last - DEFAULT_SPAN[grain]
    try:
        check_range(grain, first, last)  # the CLI's rules too (bot/usecases/reports.py)
    except Refused as exc:
        raise bad(exc.field, exc.message, exc.code) from None
    return first, last


async def _reports(request: web.Request) -> tuple[Services, list[reports.Report]]:
    session = await require_session(request)
    services = request.app[SERVICES_KEY]
    shop_ids = _shops(services, session, request.query.get("shop"))
    grain = _grain(request.query.get("grain"))
    first, last = _range(services, shop_ids[0], grain, request.query)
    chosen = {sid: services.config.shops[sid] for sid in shop_ids}
    return services, await reports.compare(services.db, chosen, grain, first, last)


async def reports_json(request: web.Request) -> web.Response:
    services, found = await _reports(request)
    ratings = RatingService(services.db, services.config, services.clock)
    shops = []
    for report in found:
        shop = services.config.shops[report.shop_id]
        recent = await ratings.recent(report.shop_id, RECENT_RATINGS)
        shops.append(
            {
                "id": report.shop_id,
                "name": shop.name.model_dump(),
                "report": report.as_dict(),
                "recent_ratings": [
                    {"stars": r.stars, "comment": r.comment, "at": r.at.astimezone(shop.tz).isoformat()} for r in recent
                ],
            }
        )
    head = found[0]
    return _json(
        {
            "grain": head.grain,
            "first": head.first.isoformat(),
            "last": head.last.isoformat(),
            "columns": {"counts": list(reports.COUNTS), "rates": list(reports.RATES)},
            "shops": shops,
        }
    )


async def reports_csv(request: web.Request) -> web.Response:
    _, found = await _reports(request)
    head = found[0]
    who = found[0].shop_id if len(found) == 1 else ALL
    name = f"chatbook-{who}-{head.grain}-{head.first.isoformat()}-{head.last.isoformat()}.csv"
    response = web.Response(
        body=("\ufeff" + reports.to_csv(found)).encode("utf-8"),  # the BOM: spreadsheets then read 中文 as UTF-8
        content_type="text/csv",
        charset="utf-8",
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


async def reports_page(request: web.Request) -> web.StreamResponse:
    session = await require_session(request, page=True)
    services = request.app[SERVICES_KEY]
    visible = visible_shops(services, session)
    asked = request.query.get("shop") or (visible[0] if visible else "")
    if asked == ALL and visible:
        shop_id, side_by_side = visible[0], len(visible) > 1
    elif asked in visible:
        shop_id, side_by_side = asked, False
    else:
        return views._forbidden(request, session)
    today = services.clock.now().astimezone(services.config.shops[shop_id].tz).date().isoformat()
    return views.shell(
        request,
        session,
        shop_id,
        "reports.html",
        "reports",
        today=today,
        view=ALL if side_by_side else shop_id,
        can_compare=len(visible) > 1,
        lang_param=request.query.get("lang") if request.query.get("lang") in views.LANGS else "",
    )


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/reports", reports_page)
    r.add_get("/api/console/reports", reports_json)
    r.add_get("/api/console/reports.csv", reports_csv)
