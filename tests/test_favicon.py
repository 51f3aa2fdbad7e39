"""Newcomer friction (issue 13): a browser's automatic /favicon.ico request gets an icon, not a 404."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import Services
from bot.web import build_app


async def test_the_favicon_is_an_svg_icon(sqlite_services: Services) -> None:
    async with TestClient(TestServer(build_app(sqlite_services))) as client:
        resp = await client.get("/favicon.ico")
        assert resp.status == 200
        assert resp.content_type == "image/svg+xml"
        assert (await resp.read()).startswith(b"<svg ")
