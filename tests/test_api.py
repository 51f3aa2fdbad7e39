"""The HTTP API over a real socket: health, shops, availability and its errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bot.bootstrap import Services
from bot.web import build_app
from core.bookings import BookingRequest
from core.results import Actor, Booked
from tests.helpers import MON, TUE, at


@pytest.fixture
async def http(services: Services) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield session, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_health(http: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = http
    async with session.get(f"{base}/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["database"] == "ok"


async def test_shops_list_services(http: tuple[aiohttp.ClientSession, str]) -> None:
    session, base = http
    async with session.get(f"{base}/api/shops") as resp:
        assert resp.status == 200
        shops = {s["id"]: s for s in (await resp.json())["shops"]}
    assert set(shops) == {"pawspa", "clearsight"}
    exam = next(s for s in shops["clearsight"]["services"] if s["id"] == "adult_exam")
    assert exam == {
        "id": "adult_exam",
        "name": {"zh": "成人验光检查", "en": "Adult eye exam"},
        "duration_min": 30,
        "price": 80.0,
        "confirmation": "auto",
        "addons": [],
    }
    assert shops["pawspa"]["timezone"] == "Asia/Shanghai"


async def test_availability_in_shop_time(http: tuple[aiohttp.ClientSession, str], services: Services) -> None:
    session, base = http
    booked = await services.bookings.book(
        BookingRequest("clearsight", "adult_exam", at(MON, "10:00"), staff_id="dr_wang"), Actor.customer(1)
    )
    assert isinstance(booked, Booked)
    url = f"{base}/api/shops/clearsight/availability?service=adult_exam&date=2026-11-23"
    async with session.get(url) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["timezone"] == "Asia/Shanghai" and body["duration_min"] == 30
    slots = {s["time"]: s for s in body["slots"]}
    assert slots["09:30"]["start"] == "2026-11-23T09:30:00+08:00"
    assert "10:00" not in slots and "10:15" not in slots  # one exam room, already taken
    async with session.get(url + "&staff=dr_chen") as resp:
        chen = await resp.json()
    assert all(s["staff"] == ["dr_chen"] for s in chen["slots"])
    async with session.get(f"{base}/api/shops/pawspa/availability?service=dog_bath_small&date={TUE}") as resp:
        assert (await resp.json())["slots"] == []  # closed on Tuesdays


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/shops/nowhere/availability?service=x&date=2026-11-23", 404, "unknown_shop"),
        ("/api/shops/pawspa/availability?service=car_wash&date=2026-11-23", 404, "unknown_service"),
        ("/api/shops/pawspa/availability?service=grooming&date=2026-11-23&staff=nobody", 404, "unknown_staff"),
        ("/api/shops/pawspa/availability?service=grooming&date=2026-11-23&staff=xiaomei", 400, "staff_not_qualified"),
        ("/api/shops/pawspa/availability?service=grooming&date=23/11/2026", 400, "bad_date"),
        ("/api/shops/pawspa/availability?date=2026-11-23", 400, "missing_parameter"),
        ("/api/nothing-here", 404, "not_found"),
    ],
)
async def test_errors_are_clear_json(
    http: tuple[aiohttp.ClientSession, str], path: str, status: int, code: str
) -> None:
    session, base = http
    async with session.get(base + path) as resp:
        assert resp.status == status
        body = await resp.json()
    assert body["error"] == code and body["message"]
