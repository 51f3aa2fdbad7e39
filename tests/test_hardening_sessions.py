"""Sessions end when they should (password change, logout, log out everywhere), open console
sockets included; behind a TLS proxy listed in server.trusted_proxies the cookie is Secure and
HSTS is sent, while the same headers from anyone else are ignored."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestServer

from bot.bootstrap import Services, bootstrap
from bot.console.auth import COOKIE, LOGIN_CSRF_COOKIE
from bot.console.ws import RECHECK_SECONDS
from bot.web import build_app
from core.clock import FixedClock
from core.config import AppConfig, ServerConfig
from core.staff_accounts import MAX_FAILURES

PASSWORD = "correct horse battery"
Served = Callable[[AppConfig], Awaitable[tuple[Services, str]]]


@pytest.fixture
async def serve(clock: FixedClock, sqlite_url: str) -> AsyncIterator[Served]:
    opened: list[tuple[Services, TestServer]] = []

    async def start(config: AppConfig) -> tuple[Services, str]:
        services = await bootstrap(config, clock=clock, database_url=sqlite_url)
        await services.accounts.add("mei", PASSWORD, shops=["pawspa"], language="en")
        server = TestServer(build_app(services), host="127.0.0.1")
        await server.start_server()
        opened.append((services, server))
        return services, str(server.make_url("")).rstrip("/")

    yield start
    for services, server in opened:
        await server.close()
        await services.close()


def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def _login(
    http: aiohttp.ClientSession,
    base: str,
    headers: dict[str, str] | None = None,
    password: str = PASSWORD,
    username: str = "mei",
) -> aiohttp.ClientResponse:
    async with http.get(f"{base}/console/login", headers=headers) as resp:
        match = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        login_cookie = resp.cookies[LOGIN_CSRF_COOKIE].value
    assert match
    form = {"csrf": match.group(1), "username": username, "password": password}
    # sent by hand: a Secure cookie (behind the HTTPS proxy) is not sent back over this test's plain HTTP
    sent = {**(headers or {}), "Cookie": f"{LOGIN_CSRF_COOKIE}={login_cookie}"}
    async with http.post(f"{base}/console/login", data=form, headers=sent, allow_redirects=False) as resp:
        await resp.read()
        return resp


async def _me(http: aiohttp.ClientSession, base: str) -> int:
    async with http.get(f"{base}/api/console/me") as resp:
        return resp.status


async def _closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes the socket; the close code."""
    while True:
        message = await ws.receive(timeout=10)
        if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code


async def test_a_password_change_ends_every_old_session_and_socket(demo_config: AppConfig, serve: Served) -> None:
    services, base = await serve(demo_config)
    async with _client() as laptop, _client() as phone:
        assert (await _login(laptop, base)).status == 302
        assert (await _login(phone, base)).status == 302
        ws = await phone.ws_connect(base.replace("http", "ws") + "/console/ws", headers={"Origin": base})
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
        await services.accounts.add("mei", "a new long password", shops=["pawspa"])  # `chatbook staff add` resets it
        assert await _closed(ws) == 4401
        assert await _me(laptop, base) == 401 and await _me(phone, base) == 401
        assert await services.accounts.change_password("mei", "a new long password", "another one!!") is True
        assert await services.accounts.login("mei", "a new long password", "10.0.0.1") is None


async def test_logout_closes_the_open_socket_and_everywhere_ends_all(demo_config: AppConfig, serve: Served) -> None:
    _, base = await serve(demo_config)
    async with _client() as laptop, _client() as phone:
        await _login(laptop, base)
        await _login(phone, base)
        ws = await laptop.ws_connect(base.replace("http", "ws") + "/console/ws", headers={"Origin": base})
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
        async with laptop.get(f"{base}/api/console/me") as resp:
            csrf = (await resp.json())["csrf"]
        async with laptop.post(f"{base}/console/logout", data={"csrf": csrf}, allow_redirects=False) as resp:
            assert resp.status == 302
        assert await _closed(ws) == 4401  # this console stops receiving events at once
        assert await _me(phone, base) == 200  # a plain logout ends this browser only

        ws = await phone.ws_connect(base.replace("http", "ws") + "/console/ws", headers={"Origin": base})
        assert (await ws.receive_json(timeout=10))["type"] == "hello"
        await _login(laptop, base)
        async with laptop.get(f"{base}/api/console/me") as resp:
            csrf = (await resp.json())["csrf"]
        form = {"csrf": csrf, "everywhere": "1"}
        async with laptop.post(f"{base}/console/logout", data=form, allow_redirects=False) as resp:
            assert resp.status == 302
        assert await _closed(ws) == 4401
        assert await _me(phone, base) == 401 and await _me(laptop, base) == 401


HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


async def test_behind_a_trusted_tls_proxy_the_cookie_is_secure_and_hsts_is_sent(
    demo_config: AppConfig, serve: Served
) -> None:
    trusting = demo_config.model_copy(update={"server": ServerConfig(trusted_proxies=["127.0.0.1"])})
    _, base = await serve(trusting)
    async with _client() as http:
        resp = await _login(http, base, headers=HTTPS)
        assert resp.status == 302
        set_cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(COOKIE))
        assert "Secure" in set_cookie
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        async with http.get(f"{base}/healthz", headers=HTTPS) as health:
            assert "Strict-Transport-Security" in health.headers
        async with http.get(f"{base}/healthz") as health:  # plain HTTP through the proxy: no HSTS
            assert "Strict-Transport-Security" not in health.headers


async def test_forwarded_headers_from_anyone_else_are_ignored(demo_config: AppConfig, serve: Served) -> None:
    _, base = await serve(demo_config)  # trusted_proxies is empty by default
    async with _client() as http:
        resp = await _login(http, base, headers=HTTPS)
        set_cookie = next(c for c in resp.headers.getall("Set-Cookie") if c.startswith(COOKIE))
        assert "Secure" not in set_cookie and "Strict-Transport-Security" not in resp.headers
    # a spoofed X-Forwarded-For does not buy fresh addresses for guessing
    statuses = []
    for i in range(MAX_FAILURES + 2):
        async with _client() as http:
            spoofed = {"X-Forwarded-For": f"198.51.100.{i}"}
            statuses.append((await _login(http, base, spoofed, f"wrong {i}", f"user{i}")).status)
    assert statuses.count(401) == MAX_FAILURES and statuses[-1] == 429  # all from one address: 127.0.0.1


async def test_the_trusted_proxy_passes_the_real_client_address(demo_config: AppConfig, serve: Served) -> None:
    trusting = demo_config.model_copy(update={"server": ServerConfig(trusted_proxies=["127.0.0.0/8"])})
    services, base = await serve(trusting)
    for i in range(MAX_FAILURES + 2):  # different real clients (and usernames): nobody is throttled
        async with _client() as http:
            headers = {"X-Forwarded-For": f"198.51.100.{i}, 127.0.0.1"}
            resp = await _login(http, base, headers, f"wrong {i}", f"user{i}")
            assert resp.status == 401
    assert services.config.server.trusted_proxies == ["127.0.0.0/8"]


async def test_logout_on_one_server_process_closes_the_socket_on_another(
    services: Services, demo_config: AppConfig, clock: FixedClock
) -> None:
    await services.accounts.add("mei", PASSWORD, shops=["pawspa"], language="en")
    url = services.db.url.render_as_string(hide_password=False)
    other = await bootstrap(demo_config, clock=clock, database_url=url, migrate=False)
    first, second = TestServer(build_app(services), host="127.0.0.1"), TestServer(build_app(other), host="127.0.0.1")
    await first.start_server()
    await second.start_server()
    base_a, base_b = (str(s.make_url("")).rstrip("/") for s in (first, second))
    try:
        async with _client() as laptop, _client() as phone:
            await _login(phone, base_a)
            ws = await phone.ws_connect(base_a.replace("http", "ws") + "/console/ws", headers={"Origin": base_a})
            assert (await ws.receive_json(timeout=10))["type"] == "hello"
            await _login(laptop, base_b)
            async with laptop.get(f"{base_b}/api/console/me") as resp:
                csrf = (await resp.json())["csrf"]
            started = time.perf_counter()
            form = {"csrf": csrf, "everywhere": "1"}
            async with laptop.post(f"{base_b}/console/logout", data=form, allow_redirects=False) as resp:
                assert resp.status == 302
            assert await _closed(ws) == 4401
            took = time.perf_counter() - started
            print(f"\n{services.db.dialect}: socket on process A closed {took:.2f}s after logout on process B")
            # PostgreSQL: NOTIFY reaches the other process at once; SQLite (one process in production):
            # the socket's periodic re-check
            assert took < (2.0 if services.db.dialect == "postgresql" else RECHECK_SECONDS + 2)
    finally:
        await first.close()
        await second.close()
        await other.close()
