"""The console's pages over a real socket: login (CSRF, rotation, throttling), redirects, per-shop
403s, CSRF on the JSON API, escaping of customer text, the CSP and the static files."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import Services
from bot.console.auth import COOKIE, LOGIN_CSRF_COOKIE
from bot.console.views import STATIC, strings
from bot.web import build_app
from core import faq_log
from tests.support.collecting import CollectingChannel

PASSWORD = "correct horse battery"
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture
async def base(services: Services) -> AsyncIterator[str]:
    await services.accounts.add("mei", PASSWORD, shops=["pawspa"], display_name="Mei", language="en")
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin", language="zh")
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # cookies for 127.0.0.1


def cookie(http: aiohttp.ClientSession, name: str) -> str | None:
    found = [c.value for c in http.cookie_jar if c.key == name]
    return found[0] if found else None


async def login_form(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/console/login") as resp:
        assert resp.status == 200
        html = await resp.text()
        raw = resp.headers.getall("Set-Cookie")
    login_cookie = next(c for c in raw if c.startswith(LOGIN_CSRF_COOKIE))
    assert "HttpOnly" in login_cookie and "SameSite=Strict" in login_cookie
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


async def login(
    http: aiohttp.ClientSession, base: str, username: str = "mei", password: str = PASSWORD, next_: str = ""
) -> aiohttp.ClientResponse:
    csrf = await login_form(http, base)
    form = {"csrf": csrf, "username": username, "password": password, "next": next_}
    async with http.post(f"{base}/console/login", data=form, allow_redirects=False) as resp:
        await resp.read()
        return resp


def read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


async def csrf_of(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/api/console/me") as resp:
        assert resp.status == 200
        return str((await resp.json())["csrf"])


async def test_no_session_redirects_to_login(base: str) -> None:
    async with client() as http:
        for path in ("/console", "/console/day", "/console/faq"):
            async with http.get(f"{base}{path}", allow_redirects=False) as resp:
                assert resp.status == 302
                assert resp.headers["Location"] == f"/console/login?next={path}"
        async with http.get(f"{base}/api/console/inbox?shop=pawspa") as resp:
            assert resp.status == 401
        async with http.get(f"{base}/console") as resp:  # followed: the login form
            assert resp.status == 200
            assert 'name="password"' in await resp.text()


async def test_login_rotates_the_session_and_logout_ends_it(base: str) -> None:
    async with client() as http:
        resp = await login(http, base)
        assert resp.status == 302 and resp.headers["Location"] == "/console"
        set_cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(COOKIE))
        assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
        first = cookie(http, COOKIE)
        async with http.get(f"{base}/console", allow_redirects=False) as page:
            assert page.status == 200
        resp = await login(http, base)
        second = cookie(http, COOKIE)
        assert first and second and first != second  # a new token at every login
        csrf = await csrf_of(http, base)

        async with client() as other:  # the replaced token no longer works
            other.cookie_jar.update_cookies({COOKIE: first})
            async with other.get(f"{base}/api/console/me") as me:
                assert me.status == 401

        async with http.post(f"{base}/console/logout", data={}, allow_redirects=False) as out:
            assert out.status == 403  # logout needs the CSRF token too
        async with http.post(f"{base}/console/logout", data={"csrf": csrf}, allow_redirects=False) as out:
            assert out.status == 302 and out.headers["Location"] == "/console/login"
        async with client() as other:
            other.cookie_jar.update_cookies({COOKIE: second})
            async with other.get(f"{base}/api/console/me") as me:
                assert me.status == 401
            async with other.get(f"{base}/console", allow_redirects=False) as page:
                assert page.status == 302


async def test_login_next_stays_on_the_console(base: str) -> None:
    async with client() as http:
        resp = await login(http, base, next_="/console/day?shop=pawspa")
        assert resp.headers["Location"] == "/console/day?shop=pawspa"
    for evil in ("//evil.example/console", "https://evil.example/console", "/\\evil.example", "/api/console/me"):
        async with client() as http:
            resp = await login(http, base, next_=evil)
            assert resp.status == 302 and resp.headers["Location"] == "/console", evil


async def test_login_form_without_csrf_is_refused(base: str) -> None:
    async with client() as http:
        form = {"username": "mei", "password": PASSWORD}
        async with http.post(f"{base}/console/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 403
            assert 'name="password"' in await resp.text()  # the form again, with a fresh token
        await login_form(http, base)
        form = {"username": "mei", "password": PASSWORD, "csrf": "not-the-cookie"}
        async with http.post(f"{base}/console/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 403
        assert cookie(http, COOKIE) is None


async def test_wrong_passwords_are_throttled(base: str) -> None:
    async with client() as http:
        statuses = []
        for _ in range(20):
            resp = await login(http, base, password="wrong password!")
            statuses.append(resp.status)
        assert statuses[0] == 401 and statuses[-1] == 429
        assert set(statuses) == {401, 429}
        resp = await login(http, base)  # even the right password waits now
        assert resp.status == 429
        assert cookie(http, COOKIE) is None
    async with client() as http:
        csrf = await login_form(http, base)
        form = {"csrf": csrf, "username": "mei", "password": "nope nope"}
        async with http.post(f"{base}/console/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 429
            assert "15" in await resp.text()  # the reason is shown


async def test_wrong_password_shows_the_form_again(base: str) -> None:
    async with client() as http:
        csrf = await login_form(http, base)
        form = {"csrf": csrf, "username": "mei", "password": "wrong password!"}
        async with http.post(f"{base}/console/login", data=form, allow_redirects=False) as resp:
            assert resp.status == 401
            html = await resp.text()
        assert 'role="alert"' in html and 'name="password"' in html


async def test_the_api_needs_the_csrf_header(base: str, services: Services) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user="ann")
    await chat.push("人工")
    [waiting] = await services.store.handoffs("pawspa")
    async with client() as http:
        await login(http, base)
        url = f"{base}/api/console/conversations/{waiting.conversation_id}/take"
        async with http.post(url) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"] == "csrf"
        async with http.post(url, headers={"X-CSRF-Token": "wrong"}) as resp:
            assert resp.status == 403
        async with http.post(url, headers={"X-CSRF-Token": await csrf_of(http, base)}) as resp:
            assert resp.status == 200


async def test_other_shops_are_forbidden(base: str, services: Services) -> None:
    chat = CollectingChannel(services.engine, "clearsight", user="bob")
    await chat.push("人工")
    [theirs] = await services.store.handoffs("clearsight")
    async with client() as http:
        await login(http, base)  # mei: pawspa only
        for path in (
            "/api/console/inbox?shop=clearsight",
            "/api/console/day?shop=clearsight&date=2026-11-21",
            f"/api/console/conversations/{theirs.conversation_id}",
        ):
            async with http.get(f"{base}{path}") as resp:
                assert resp.status == 403, path
        csrf = await csrf_of(http, base)
        async with http.post(
            f"{base}/api/console/conversations/{theirs.conversation_id}/take", headers={"X-CSRF-Token": csrf}
        ) as resp:
            assert resp.status == 403
        for path in ("/console?shop=clearsight", "/console/day?shop=clearsight", "/console/faq?shop=clearsight"):
            async with http.get(f"{base}{path}", allow_redirects=False) as resp:
                assert resp.status == 403, path
                assert "clearsight" not in (await resp.text()).split("<main", 1)[1]
        async with http.get(f"{base}/console/faq") as resp:  # the FAQ page lists only their shops
            html = await resp.text()
        assert 'id="faq-pawspa"' in html and 'id="faq-clearsight"' not in html
    async with client() as http:
        await login(http, base, username="boss")
        async with http.get(f"{base}/console?shop=clearsight") as resp:
            assert resp.status == 200


async def test_customer_text_is_escaped(base: str, services: Services) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user="mallory", display_name=XSS)
    await chat.push(XSS)
    await chat.push("人工")
    await chat.push(XSS)  # while waiting for staff
    [item] = await services.store.handoffs("pawspa")
    async with client() as http:
        await login(http, base, username="boss")
        async with http.get(f"{base}/api/console/inbox?shop=pawspa") as resp:
            inbox = await resp.json()
        assert inbox["waiting"][0]["last_text"] == XSS
        async with http.get(f"{base}/api/console/conversations/{item.conversation_id}") as resp:
            assert resp.content_type == "application/json"
            data = await resp.json()
        assert [e["text"] for e in data["transcript"] if e["direction"] == "in"].count(XSS) == 2
        for path in ("/console?shop=pawspa", "/console/day?shop=pawspa", "/console/faq"):
            async with http.get(f"{base}{path}") as resp:
                html = await resp.text()
            assert "<script>alert" not in html and "<img src=x" not in html, path
        # the FAQ page renders the unanswered questions on the server: escaped
        assert XSS in [text for text, _ in await faq_log.unanswered(services.db, "pawspa")]
        async with http.get(f"{base}/console/faq") as resp:
            assert "&lt;script&gt;alert(2)&lt;/script&gt;" in await resp.text()


async def test_pages_have_a_strict_csp_and_no_inline_code(base: str) -> None:
    async with client() as http:
        async with http.get(f"{base}/console/login") as resp:
            pages = [(resp.headers, await resp.text())]
        await login(http, base, username="boss")
        for path in ("/console", "/console/day", "/console/faq", "/console?shop=clearsight&lang=en"):
            async with http.get(f"{base}{path}") as resp:
                assert resp.status == 200, path
                pages.append((resp.headers, await resp.text()))
    for headers, html in pages:
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert headers["X-Frame-Options"] == "DENY"
        scripts = re.findall(r"<script([^>]*)>", html)
        assert all('src="/console/static/' in s or 'type="application/json"' in s for s in scripts)
        assert "<style" not in html and " style=" not in html and " on" + "click=" not in html
        assert "http://" not in html and "https://" not in html  # no CDN


async def test_language_from_account_or_query(base: str) -> None:
    async with client() as http:
        await login(http, base)  # mei: English
        async with http.get(f"{base}/console") as resp:
            assert strings("en")["conv.take"] in await resp.text()
        async with http.get(f"{base}/console?lang=zh") as resp:
            html = await resp.text()
        assert strings("zh")["conv.take"] in html and '<html lang="zh">' in html
    async with client() as http:
        await login(http, base, username="boss")  # Chinese
        async with http.get(f"{base}/console/day") as resp:
            assert strings("zh")["day.new_booking"] in await resp.text()


# Pictographs (U+1F000...) and dingbats (U+2700-27BF) show as empty boxes on a machine without an
# emoji font; console icons are inline SVG instead.
EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2700-\u27BF\uFE0F]")


def _scripts_with_emoji() -> list[str]:
    return [p.name for p in STATIC.glob("*.js") if EMOJI.search(p.read_text(encoding="utf-8"))]


async def test_console_pages_and_strings_draw_icons_without_an_emoji_font(base: str) -> None:
    for lang in ("zh", "en"):
        assert not [v for v in strings(lang).values() if EMOJI.search(v)]
    assert _scripts_with_emoji() == []
    async with client() as http:
        await login(http, base, username="boss")
        for page in ("/console", "/console/day", "/console/faq", "/console/calendar"):
            async with http.get(f"{base}{page}") as resp:
                html = await resp.text()
            assert resp.status == 200 and not EMOJI.search(html), page


async def test_static_files(base: str) -> None:
    async with client() as http:
        async with http.get(f"{base}/console/static/console.js") as resp:
            assert resp.status == 200
            assert "javascript" in resp.content_type
            assert "textContent" in await resp.text()
        async with http.get(f"{base}/console/static/console.css") as resp:
            assert resp.status == 200 and resp.content_type == "text/css"
        async with http.get(f"{base}/console/static/../views.py") as resp:
            assert resp.status in (403, 404)
        async with http.get(f"{base}/console/static/%2e%2e/views.py") as resp:
            assert resp.status in (403, 404)


async def test_faq_upload_is_validated_first(base: str, services: Services) -> None:
    assert services.faq is not None
    status = services.faq.status("pawspa")
    assert status is not None
    before = read(status.file)
    async with client() as http:
        await login(http, base)  # staff, not admin
        csrf = await csrf_of(http, base)
        async with http.post(
            f"{base}/api/console/faq/pawspa", data="shop: pawspa\n", headers={"X-CSRF-Token": csrf}
        ) as r:
            assert r.status == 403
        async with http.get(f"{base}/console/faq") as resp:
            assert 'class="upload"' not in await resp.text()
    async with client() as http:
        await login(http, base, username="boss")
        async with http.get(f"{base}/console/faq") as resp:
            html = await resp.text()
        assert 'class="upload"' in html and "pawspa.yaml" in html
        csrf = await csrf_of(http, base)
        broken = "shop: pawspa\nentries:\n  - id: x\n    questions: []\n"
        async with http.post(f"{base}/api/console/faq/pawspa", data=broken, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 400
            assert (await r.json())["errors"]
    assert read(status.file) == before  # nothing was replaced
