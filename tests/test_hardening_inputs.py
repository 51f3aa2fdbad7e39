"""Every HTTP input is checked at the edge: odd dates, huge ids, wrong types and long texts are a
400 naming the field, never a 500 (a hypothesis fuzz over every /api route), and a manual booking
that fails leaves no customer behind."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.bootstrap import Services, bootstrap
from bot.web import build_app
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import AppConfig
from core.models import Customer
from core.results import Actor, Booked
from tests.helpers import MON, at

PASSWORD = "correct horse battery"
HUGE = "99999999999999999999"


@dataclass
class Admin:
    base: str
    http: aiohttp.ClientSession
    csrf: str
    booking_id: int

    async def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf}
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else ({"json": body} if body is not None else {})
        async with self.http.request(method, self.base + path, headers=headers, **kwargs) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text


@pytest.fixture
async def local(demo_config: AppConfig, clock: FixedClock, db_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    """The demo shops with a private copy of the FAQ files (the fuzz may upload one)."""
    shutil.copytree(demo_config.faq_dir, tmp_path / "faq")
    config = demo_config.model_copy(update={"faq_dir": str(tmp_path / "faq")})
    services = await bootstrap(config, clock=clock, database_url=db_url)
    try:
        yield services
    finally:
        await services.close()


@pytest.fixture
async def admin(local: Services) -> AsyncIterator[Admin]:
    services = local
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin")
    session = await services.accounts.login("boss", PASSWORD, "127.0.0.1")
    assert session is not None
    booked = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "11:00")), Actor.staff("boss")
    )
    assert isinstance(booked, Booked)
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    http.cookie_jar.update_cookies({"chatbook_session": session.token})
    try:
        yield Admin(str(server.make_url("")).rstrip("/"), http, session.csrf, booked.booking.id)
    finally:
        await http.close()
        await server.close()


def _booking(date: str, **extra: Any) -> dict[str, Any]:
    return {
        "shop": "pawspa",
        "service": "dog_bath_small",
        "date": date,
        "time": "11:00",
        "customer_name": "Ann",
        **extra,
    }


ODD = [  # the twelve requests that answered 500 (10 of 12) in the review, and the field each must name
    ("GET", "/api/shops/pawspa/availability?service=dog_bath_small&date=0001-01-01", None, "date"),
    ("GET", "/api/shops/pawspa/availability?service=dog_bath_small&date=9999-12-31", None, "date"),
    ("GET", "/api/console/day?shop=pawspa&date=0001-01-01", None, "date"),
    ("GET", "/api/console/day?shop=pawspa&date=9999-12-31&week=1", None, "date"),
    ("POST", "/api/console/bookings", _booking("0001-01-01"), "date"),
    ("POST", "/api/console/bookings", _booking("9999-12-31"), "date"),
    ("POST", f"/api/console/bookings/{HUGE}/reschedule", {"date": "2026-11-25", "time": "11:00"}, "id"),
    ("POST", "/api/console/bookings/{booking}/reschedule", {"date": "9999-12-31", "time": "11:00"}, "date"),
    (
        "POST",
        "/api/console/time_off",
        {"shop": "pawspa", "staff": "xiaomei", "start": "0001-01-01 00:00", "end": "2026-11-25 12:00"},
        "start",
    ),
    (
        "POST",
        "/api/console/time_off",
        {"shop": "pawspa", "staff": "xiaomei", "start": "2026-11-25 10:00", "end": "9999-12-31 23:59"},
        "end",
    ),
    ("GET", f"/api/console/conversations/{HUGE}", None, "id"),
    ("POST", f"/api/console/bookings/{HUGE}/cancel", {}, "id"),
]


@pytest.mark.parametrize(("method", "path", "body", "field"), ODD)
async def test_odd_dates_and_huge_ids_are_a_400_naming_the_field(
    admin: Admin, method: str, path: str, body: Any, field: str
) -> None:
    status, answer = await admin.call(method, path.replace("{booking}", str(admin.booking_id)), body)
    assert status == 400, answer
    assert answer["field"] == field and answer["error"] and answer["message"]


async def test_wrong_types_and_long_texts_are_a_400_naming_the_field(admin: Admin) -> None:
    cases = [
        (_booking("2026-11-25", staff=["xiaomei"]), "staff"),
        (_booking("2026-11-25", customer_name="A" * 500), "customer_name"),
        (_booking("2026-11-25", service={"x": 1}), "service"),
        (_booking("2026-11-25", time="25:99"), "time"),
        (_booking("2026-11-25", notes=7), "notes"),
    ]
    for body, field in cases:
        status, answer = await admin.call("POST", "/api/console/bookings", body)
        assert status == 400 and answer["field"] == field, (body, answer)


async def test_hostile_bodies_are_a_400_or_413(admin: Admin) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    assert (await admin.call("POST", "/api/console/bookings", raw=deep))[0] == 400
    status, answer = await admin.call("POST", "/api/console/bookings", _booking("2026-11-25", customer_name="A\x00B"))
    assert status == 400 and answer["field"] == "customer_name"  # PostgreSQL cannot even store a NUL
    status, answer = await admin.call("GET", "/api/shops/pawspa/availability?service=dog%00&date=2026-11-25")
    assert status == 400 and answer["field"] == "service"
    huge = b"shop: pawspa\nentries:\n" + b"  - {id: x, questions: [q], answer: {zh: a, en: a}}\n" * 12_000
    status, answer = await admin.call("POST", "/api/console/faq/pawspa", raw=huge)
    assert status == 413, answer


async def test_a_failed_manual_booking_creates_no_customer(admin: Admin, local: Services) -> None:
    async def customers() -> int:
        async with local.db.reading() as s:
            return int(await s.scalar(select(func.count()).select_from(Customer)) or 0)

    before = await customers()
    for body in (
        _booking("2026-11-25", time="03:00", customer_name="Night Owl", phone="13800000001"),  # shop closed
        _booking("2026-11-20", customer_name="Yesterday", phone="13800000002"),  # in the past
        _booking("2026-11-25", service="car_wash", customer_name="Wrong"),  # no such service
    ):
        status, answer = await admin.call("POST", "/api/console/bookings", body)
        assert status in (400, 404, 409, 422), answer
    assert await customers() == before
    status, answer = await admin.call("POST", "/api/console/bookings", _booking("2026-11-25", customer_name="Real"))
    assert status == 200 and answer["ok"], answer
    assert await customers() == before + 1


# ----------------------------------------------------------------------------- fuzz

ROUTES = [
    ("GET", "/api/shops"),
    ("GET", "/api/shops/{shop}/availability"),
    ("GET", "/api/console/me"),
    ("GET", "/api/console/inbox"),
    ("GET", "/api/console/conversations/{id}"),
    ("POST", "/api/console/conversations/{id}/take"),
    ("POST", "/api/console/conversations/{id}/reply"),
    ("POST", "/api/console/conversations/{id}/note"),
    ("POST", "/api/console/conversations/{id}/release"),
    ("GET", "/api/console/day"),
    ("POST", "/api/console/bookings"),
    ("POST", "/api/console/bookings/{id}/{action}"),
    ("POST", "/api/console/time_off"),
    ("GET", "/api/console/faq"),
    ("POST", "/api/console/faq/{shop}"),
]
_junk = st.text(alphabet=st.characters(codec="utf-8"), max_size=12)  # any character but surrogates
_dates = st.sampled_from(
    [
        "2026-11-25",
        "2026-11-21",
        "0001-01-01",
        "9999-12-31",
        "2026-02-30",
        "2026-11-25 10:00",
        "9999-12-31 23:59",
        "0001-01-01 00:00",
        "1e9",
        "-1",
    ]
)
_interesting = {
    "shop": st.sampled_from(["pawspa", "clearsight", "nowhere", ""]),
    "service": st.sampled_from(["dog_bath_small", "grooming", "car_wash"]),
    "staff": st.sampled_from(["xiaomei", "ajie", "nobody"]),
    "date": _dates,
    "time": st.sampled_from(["11:00", "25:99", "11", "-1:-1", "11:00:00", "99999999999:0"]),
    "start": _dates,
    "end": _dates,
    "week": st.sampled_from(["1", ""]),
    "addons": st.sampled_from(["deworming", "deworming,teeth", ",,,", "x" * 300]),
    "customer_name": st.sampled_from(["Ann", "", "A" * 300]),
    "phone": st.sampled_from(["13800000000", "x" * 100]),
    "text": st.sampled_from(["hi", "", "x" * 5000]),
    "outcome": st.sampled_from(["completed", "no_show", "arrived", "eaten"]),
    "image_url": st.sampled_from(["https://e.example/a.png", "javascript:alert(1)"]),
}
_weird = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    _junk,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_fields = {name: st.one_of(value, value, _weird) for name, value in _interesting.items()}  # mostly plausible
_segment = st.one_of(st.sampled_from(["pawspa", "clearsight", "1", "2", "0", "-1", HUGE, "1e3"]), _junk.filter(bool))
_action = st.one_of(st.sampled_from(["approve", "decline", "cancel", "reschedule", "attendance", "follow_up"]), _junk)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    segments=st.fixed_dictionaries({"shop": _segment, "id": _segment, "action": _action}),
    query=st.fixed_dictionaries(
        {}, optional={k: _interesting[k] | _junk for k in ("shop", "service", "staff", "date", "week", "addons")}
    ),
    body=st.one_of(st.fixed_dictionaries({}, optional=_fields), _weird),
)
async def test_no_api_route_answers_500(
    admin: Admin, route: tuple[str, str], segments: dict[str, str], query: dict[str, str], body: Any
) -> None:
    method, pattern = route
    path = pattern.format(**{k: quote(v, safe="") for k, v in segments.items()})
    url = path + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items()) if query else "")
    raw = json.dumps(body).encode() if method == "POST" else None
    status, answer = await admin.call(method, url, raw=raw)
    assert status < 500, (method, url, body, answer)
