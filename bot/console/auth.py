"""Console authentication: session cookie, CSRF, login/logout, and per-shop access checks.

- The session cookie is HttpOnly and SameSite=Strict (Secure behind HTTPS) and is replaced at
  every login. Pages without a session redirect to the login page; the JSON API answers 401.
- Every state-changing request carries the session's CSRF token (form field ``csrf`` or header
  ``X-CSRF-Token``), compared in constant time: missing or wrong -> 403. The login form uses a
  double-submit cookie because there is no session yet.
- A staff member may only see and act on their own shops (403 otherwise), in pages, the JSON API
  and the WebSocket alike.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from bot.api import SERVICES_KEY, json_error
from core.staff_accounts import MAX_PASSWORD, MAX_USERNAME, LoginThrottled, Session

COOKIE = "chatbook_session"
LOGIN_CSRF_COOKIE = "chatbook_login_csrf"
SESSION_KEY: web.RequestKey[Session | None] = web.RequestKey("console_session")  # (a union is no type object to pass)


async def current_session(request: web.Request) -> Session | None:
    if SESSION_KEY in request:
        return request[SESSION_KEY]
    session = await request.app[SERVICES_KEY].accounts.session(request.cookies.get(COOKIE))
    request[SESSION_KEY] = session
    return session


async def require_session(request: web.Request, *, page: bool = False) -> Session:
    session = await current_session(request)
    if session is None:
        if page:
            raise web.HTTPFound(f"/console/login?next={request.rel_url.path}")
        raise json_error(401, "login_required", "log in to the console first")
    return session


def check_csrf(request: web.Request, session: Session, form: Any = None) -> None:
    sent = request.headers.get("X-CSRF-Token") or (form.get("csrf") if form is not None else None)
    if not sent or not secrets.compare_digest(str(sent), session.csrf):
        raise json_error(403, "csrf", "missing or wrong CSRF token; reload the page")


def check_shop(session: Session, shop_id: str) -> None:
    if not session.account.can_see(shop_id):
        raise json_error(403, "forbidden", "you do not have access to this shop")


def set_session_cookie(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.token,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
        max_age=int((session.expires_at - request.app[SERVICES_KEY].clock.now()).total_seconds()),
    )


class Throttled(web.HTTPTooManyRequests):
    """429 with how long to wait (also as a Retry-After header)."""

    def __init__(self, minutes: int) -> None:
        unit = "minute" if minutes == 1 else "minutes"
        super().__init__(
            text=f"Too many failed logins: try again in {minutes} {unit}.",
            headers={"Retry-After": str(minutes * 60)},
        )
        self.minutes = minutes


async def login(request: web.Request, form: Any) -> Session:
    """Check the login form; raises HTTP errors (403 CSRF, 401 wrong, 429 throttled with the wait)."""
    sent, cookie = form.get("csrf"), request.cookies.get(LOGIN_CSRF_COOKIE)
    if not sent or not cookie or not secrets.compare_digest(str(sent), cookie):
        raise web.HTTPForbidden(text="The login form expired; reload the page and try again.")
    accounts = request.app[SERVICES_KEY].accounts
    address = request.remote or "unknown"
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    if (
        len(username) > MAX_USERNAME
        or len(password) > MAX_PASSWORD
        or any(ord(c) < 32 for c in username)
        or "\x00" in password
    ):  # no account has such a name or password (and PostgreSQL refuses NUL): nothing to check
        raise web.HTTPUnauthorized(text="Wrong username or password.")
    try:
        session = await accounts.login(username, password, address)
    except LoginThrottled as exc:
        raise Throttled(exc.retry_after_min) from None
    if session is None:
        raise web.HTTPUnauthorized(text="Wrong username or password.")
    return session
