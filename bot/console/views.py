"""The console's pages: server-rendered shells (jinja2, autoescape on) around console.js.

    GET  /console/login    the login form (double-submit CSRF cookie);  POST logs in
    POST /console/logout   ends the session (CSRF form field); everywhere=1: all of the account's
    GET  /console          inbox: waiting and recent conversations, transcript, profile (live)
    GET  /console/day      calendar per staff member, approvals, manual bookings, time off
    GET  /console/faq      FAQ status per shop, unanswered questions, admin upload
    GET  /console/calendar private calendar feed URLs (your own, the shop's, each staff member's)
    POST /console/calendar/rotate   a feed gets a new URL; the old one answers 404 (CSRF form field)
    GET  /console/static/  console.js and console.css

The pages hold no customer data except the FAQ page (rendered here, escaped by jinja2); the
rest is fetched by console.js from the JSON API (bot/console/api.py) and written with
textContent. UI strings come from bot/console/locales/{zh,en}.yaml: ?lang= or the account's.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import yaml
from aiohttp import web

from bot.api import SERVICES_KEY, bad
from bot.calendar import CALENDAR_KEY
from bot.console import auth
from core import faq_log
from core.calendar import CalendarService
from core.i18n import language_tag
from core.staff_accounts import Session
from faq import group_unanswered

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
LANGS = ("zh", "en")
ERROR_KEYS = {401: "login.err_401", 403: "login.err_403", 429: "login.err_429"}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every template, whatever its name: customer text is hostile input
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = str(value)
    return out


@cache
def strings(lang: str) -> dict[str, str]:
    with open(HERE / "locales" / f"{lang}.yaml", encoding="utf-8") as f:
        return _flatten(yaml.safe_load(f))


def _static_version() -> str:
    stamps = [int(p.stat().st_mtime) for p in STATIC.glob("*") if p.is_file()]
    return str(max(stamps, default=0))


def _lang(request: web.Request, session: Session | None) -> str:
    asked = request.query.get("lang")
    if asked in LANGS:
        return asked
    if session is not None and session.account.language in LANGS:
        return session.account.language
    return language_tag(request.headers.get("Accept-Language")) or "zh"


def _render(request: web.Request, template: str, lang: str, *, status: int = 200, **context: Any) -> web.Response:
    words = strings(lang)

    def t(key: str, **values: Any) -> str:
        text = words[key]
        return text.format(**values) if values else text

    explicit = request.query.get("lang") in LANGS

    def link(path: str, **query: str) -> str:
        """A console URL keeping an explicitly chosen language."""
        params = {k: v for k, v in query.items() if v}
        if explicit:
            params.setdefault("lang", lang)
        if not params:
            return path
        return path + "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in params.items())

    html = _env.get_template(template).render(
        lang=lang, t=t, link=link, strings=words, version=_static_version(), **context
    )
    response = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def _safe_next(value: str | None) -> str:
    """Only a same-site console path: no scheme, no host, no backslashes."""
    if not value or "\\" in value or any(ord(c) < 32 for c in value):
        return "/console"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/console"):
        return "/console"
    if parts.path not in ("/console", "/console/") and not parts.path.startswith("/console/"):
        return "/console"
    if parts.path.startswith("/console/login"):
        return "/console"
    return value


# ----------------------------------------------------------------------------- login


def _login_page(
    request: web.Request, *, status: int = 200, error: str | None = None, minutes: int | None = None
) -> web.Response:
    token = secrets.token_urlsafe(32)
    lang = _lang(request, None)
    if error == "login.err_429" and minutes == 1:
        error = "login.err_429_1"
    response = _render(
        request,
        "login.html",
        lang,
        status=status,
        csrf=token,
        error=error,
        minutes=minutes or 15,
        next=_safe_next(request.query.get("next")),
    )
    if minutes is not None:
        response.headers["Retry-After"] = str(minutes * 60)
    response.set_cookie(
        auth.LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/console/login",
        max_age=3600,
    )
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_page(request)  # also when logged in: logging in again replaces the session


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        session = await auth.login(request, form)
    except auth.Throttled as exc:
        return _login_page(request, status=exc.status, error=ERROR_KEYS[exc.status], minutes=exc.minutes)
    except (web.HTTPForbidden, web.HTTPUnauthorized) as exc:
        return _login_page(request, status=exc.status, error=ERROR_KEYS[exc.status])
    services = request.app[SERVICES_KEY]
    old = request.cookies.get(auth.COOKIE)
    if old:  # this browser's previous session ends here: one live session per login
        await services.accounts.logout(old)
    target = _safe_next(str(form.get("next") or request.query.get("next") or ""))
    response = web.HTTPFound(target)
    auth.set_session_cookie(request, response, session)
    response.del_cookie(auth.LOGIN_CSRF_COOKIE, path="/console/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session = await auth.require_session(request, page=True)
    form = await request.post()
    auth.check_csrf(request, session, form)
    accounts = request.app[SERVICES_KEY].accounts
    if form.get("everywhere"):  # every browser and open console of this account
        await accounts.logout_everywhere(session.account.id)
    else:
        await accounts.logout(session.token)
    response = web.HTTPFound("/console/login")
    response.del_cookie(auth.COOKIE, path="/")
    raise response


# ----------------------------------------------------------------------------- pages


def _forbidden(request: web.Request, session: Session) -> web.Response:
    return _render(
        request,
        "forbidden.html",
        _lang(request, session),
        status=403,
        page="forbidden",
        **_chrome(request, session, ""),
    )


def _chrome(request: web.Request, session: Session, shop_id: str) -> dict[str, Any]:
    services = request.app[SERVICES_KEY]
    lang = _lang(request, session)
    shops = [
        {"id": sid, "name": services.config.shops[sid].name.model_dump().get(lang) or sid}
        for sid in session.account.shops
        if sid in services.config.shops
    ]
    return {"account": session.account, "shops": shops, "shop": shop_id, "csrf": session.csrf}


ShopPage = Callable[[web.Request, Session, str], Awaitable[web.StreamResponse]]


def shop_page(handler: ShopPage) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The route of a page about one shop: a session (else the login page), the shop from
    ``?shop=`` (default: the account's first) and the 403 page when the account may not see it;
    ``handler`` gets the session and the shop id."""

    async def route(request: web.Request) -> web.StreamResponse:
        session = await auth.require_session(request, page=True)
        services = request.app[SERVICES_KEY]
        visible = [s for s in session.account.shops if s in services.config.shops]
        shop_id = request.query.get("shop") or (visible[0] if visible else "")
        if not shop_id or not session.account.can_see(shop_id) or shop_id not in services.config.shops:
            return _forbidden(request, session)
        return await handler(request, session, shop_id)

    return route


def shell(
    request: web.Request, session: Session, shop_id: str, template: str, page: str, **context: Any
) -> web.Response:
    """A console page: ``template`` in the account's language with the chrome (account, shops, CSRF)."""
    chrome = _chrome(request, session, shop_id)
    return _render(request, template, _lang(request, session), page=page, **context, **chrome)


@shop_page
async def inbox_page(request: web.Request, session: Session, shop_id: str) -> web.StreamResponse:
    return shell(request, session, shop_id, "inbox.html", "inbox")


@shop_page
async def day_page(request: web.Request, session: Session, shop_id: str) -> web.StreamResponse:
    services = request.app[SERVICES_KEY]
    today = services.clock.now().astimezone(services.config.shops[shop_id].tz).date().isoformat()
    return shell(request, session, shop_id, "day.html", "day", today=today)


@shop_page
async def faq_page(request: web.Request, session: Session, shop_id: str) -> web.StreamResponse:
    services = request.app[SERVICES_KEY]
    lang = _lang(request, session)
    cards = []
    for sid in session.account.shops:
        if sid not in services.config.shops:
            continue
        shop = services.config.shops[sid]
        status = services.faq.status(sid) if services.faq else None
        loaded = status.loaded_at.astimezone(shop.tz).strftime("%Y-%m-%d %H:%M") if status and status.loaded_at else ""
        cards.append(
            {
                "id": sid,
                "name": shop.name.model_dump().get(lang) or sid,
                "present": status is not None,
                "ok": bool(status and status.ok),
                "file": relative_name(status.file) if status else "",
                "errors": [str(e) for e in status.errors] if status else [],
                "entries": status.entries if status else 0,
                "loaded": loaded,
                # near-duplicates ("几点开门", "几点开门啊？") as one row with their total count
                "unanswered": [(g.text, g.count) for g in
                               group_unanswered(await faq_log.unanswered(services.db, sid, limit=200))][:30],
            }
        )
    return shell(request, session, shop_id, "faq.html", "faq", cards=cards, can_upload=session.account.is_admin)


def relative_name(path: str | Path) -> str:
    """A file as admins know it (faq/pawspa.yaml), not the server's absolute path (the FAQ page,
    the upload's answer and the learn-from-chats list all name files this way)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return path.name if path.is_absolute() else str(path)


async def root_redirect(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console" + (f"?{request.query_string}" if request.query_string else ""))


# ----------------------------------------------------------------------------- calendar feeds


def _calendars(request: web.Request) -> CalendarService:
    """The service behind the /cal routes (bot/calendar.py), so the URLs shown are the ones served."""
    service = request.app.get(CALENDAR_KEY)
    if service is None:
        services = request.app[SERVICES_KEY]
        service = CalendarService(services.db, services.config, services.clock)
    return service


def _origin(request: web.Request) -> str:
    """``server.public_url``, else where this browser reached the console (the proxy's view of it)."""
    public = request.app[SERVICES_KEY].config.server.public_url
    return (public or f"{request.scheme}://{request.host}").rstrip("/")


def _is_mine(session: Session, staff_id: str, names: dict[str, str]) -> bool:
    """The account is this staff member's: same id as in config.yaml, or the same display name."""
    account = session.account
    return staff_id == account.username.lower() or account.display_name in names.values()


async def _feeds(request: web.Request, session: Session, shop_id: str, lang: str) -> list[dict[str, Any]]:
    shop = request.app[SERVICES_KEY].config.shops[shop_id]
    origin = _origin(request)
    rows = []
    for link in await _calendars(request).feeds(shop_id):
        member = shop.staff.get(link.staff_id)
        names = member.name.model_dump() if member is not None else {}
        url = origin + link.path
        rows.append(
            {
                "staff": link.staff_id,
                "name": (names.get(lang) or link.staff_id) if member is not None else "",
                "mine": member is not None and _is_mine(session, link.staff_id, names),
                "url": url,
                "webcal": "webcal://" + url.split("://", 1)[-1],
                "rotated": link.generation > 0,
            }
        )
    shop_feed, people = rows[:1], rows[1:]  # your own feed first, then the shop's, then the others
    return [r for r in people if r["mine"]] + shop_feed + [r for r in people if not r["mine"]]


@shop_page
async def calendar_page(request: web.Request, session: Session, shop_id: str) -> web.StreamResponse:
    rotated = request.query.get("rotated")
    return shell(
        request,
        session,
        shop_id,
        "calendar.html",
        "calendar",
        feeds=await _feeds(request, session, shop_id, _lang(request, session)),
        rotated=rotated if rotated is not None and len(rotated) <= 64 else None,
    )


async def calendar_rotate(request: web.Request) -> web.StreamResponse:
    """A new URL for one feed of a shop the account may see (any of its staff: revoking is a safety
    action, e.g. a lost phone); the phone calendars on the old URL get 404 from now on."""
    session = await auth.require_session(request, page=True)
    form = await request.post()
    auth.check_csrf(request, session, form)
    shop_id = str(form.get("shop") or "")
    staff_id = str(form.get("staff") or "")
    services = request.app[SERVICES_KEY]
    if shop_id not in services.config.shops or not session.account.can_see(shop_id):
        return _forbidden(request, session)
    if staff_id and staff_id not in services.config.shops[shop_id].staff:
        raise bad("staff", "no such staff member in this shop", "unknown_staff")
    await _calendars(request).rotate(shop_id, staff_id or None)
    query = {"shop": shop_id, "rotated": staff_id or "shop"}
    if request.query.get("lang") in LANGS:
        query["lang"] = request.query["lang"]
    raise web.HTTPFound("/console/calendar?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items()))


def register(app: web.Application) -> None:
    r = app.router
    r.add_get("/console/login", login_form)
    r.add_post("/console/login", login_submit)
    r.add_post("/console/logout", logout)
    r.add_get("/console", inbox_page)
    r.add_get("/console/", root_redirect)
    r.add_get("/console/day", day_page)
    r.add_get("/console/faq", faq_page)
    r.add_get("/console/calendar", calendar_page)
    r.add_post("/console/calendar/rotate", calendar_rotate)
    r.add_static("/console/static/", STATIC, show_index=False, append_version=False)
