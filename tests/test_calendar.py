"""Calendar files and feeds: what a phone calendar sees, read back with the icalendar library.

A Berlin shop (Europe/Berlin moves to summer time on 29 March 2026) books through the real
BookingService on a real database; the .ics and feeds are fetched over HTTP from the real app
(bot/web.py's build_app) and parsed with icalendar, times checked with the file's own VTIMEZONE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from icalendar import Calendar, Event, Timezone

from bot.bootstrap import Services, bootstrap
from bot.cli import main as cli_main
from bot.web import build_app
from core.bookings import BookingRequest
from core.calendar import CalendarService, booking_calendar_path, uid
from core.clock import FixedClock
from core.config import AppConfig, load_config
from core.results import Actor, Booked

BERLIN = ZoneInfo("Europe/Berlin")
Http = TestClient[web.Request, web.Application]
SECRET = "test-calendar-secret-0123456789"
NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)  # Friday; summer time starts Sunday 29 March
CONFIG = """
server:
  public_url: https://book.example
shops:
  spree:
    name: {zh: 施普雷宠物, en: Spree Pets}
    timezone: Europe/Berlin
    address: {zh: 柏林 Torstraße 1, en: "Torstraße 1, 10119 Berlin"}
    phone: "+49 30 5555"
    default_language: en
    booking: {lead_time_min: 0, horizon_days: 90}
    opening_hours: {mon: ["08:00-20:00"], tue: ["08:00-20:00"], wed: ["08:00-20:00"], thu: ["08:00-20:00"],
                    fri: ["08:00-20:00"], sat: ["08:00-20:00"], sun: ["08:00-20:00"]}
    services:
      bath: {name: {zh: 洗澡, en: Bath}, duration_min: 60}
    staff:
      anna:
        name: {zh: 安娜, en: Anna}
        role: groomer
        services: [bath]
        shifts: {mon: ["08:00-20:00"], tue: ["08:00-20:00"], wed: ["08:00-20:00"], thu: ["08:00-20:00"],
                 fri: ["08:00-20:00"], sat: ["08:00-20:00"], sun: ["08:00-20:00"]}
      ben:
        name: {zh: 本, en: Ben}
        role: groomer
        services: [bath]
        shifts: {mon: ["08:00-20:00"], tue: ["08:00-20:00"], wed: ["08:00-20:00"], thu: ["08:00-20:00"],
                 fri: ["08:00-20:00"], sat: ["08:00-20:00"], sun: ["08:00-20:00"]}
"""


def berlin_config(tmp_path: Path) -> AppConfig:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG + f"faq_dir: {tmp_path / 'faq'}\n", encoding="utf-8")
    return load_config(path, environ={})


@pytest.fixture
async def berlin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> AsyncIterator[Services]:
    monkeypatch.setenv("CHATBOOK_SECRET", SECRET)
    config = berlin_config(tmp_path)
    svc = await bootstrap(config, clock=FixedClock(NOW), database_url=db_url)
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def http(berlin: Services) -> AsyncIterator[Http]:
    client = TestClient(TestServer(build_app(berlin)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def calendar_service(services: Services) -> CalendarService:
    return CalendarService(services.db, services.config, services.clock)


async def book(services: Services, local: datetime, staff: str = "anna") -> str:
    result = await services.bookings.book(
        BookingRequest("spree", "bath", local.astimezone(UTC), staff_id=staff), Actor.staff("front")
    )
    assert isinstance(result, Booked), result
    return result.booking.code


async def fetch_ics(http: Http, path: str) -> Calendar:
    response = await http.get(path)
    assert response.status == 200, await response.text()
    assert response.content_type == "text/calendar"
    return Calendar.from_ical(await response.read())


def only_event(cal: Calendar) -> Any:
    """The one VEVENT (as Any: icalendar types each property as a union of 30 value types)."""
    events: list[Any] = [e for e in cal.walk("VEVENT") if isinstance(e, Event)]
    assert len(events) == 1
    return events[0]


def in_file_zone(cal: Calendar, prop: Any) -> datetime:
    """A DTSTART/DTEND read with the calendar's own VTIMEZONE (not the server's tz database)."""
    zones = {str(z["TZID"]): z.to_tz() for z in cal.walk("VTIMEZONE") if isinstance(z, Timezone)}
    tzid = str(prop.params["TZID"])
    naive: datetime = prop.dt.replace(tzinfo=None)
    return naive.replace(tzinfo=zones[tzid])


async def test_booking_ics_in_the_shop_zone_across_the_dst_change(berlin: Services, http: Http) -> None:
    winter = await book(berlin, datetime(2026, 3, 27, 10, 0, tzinfo=BERLIN))  # CET, UTC+1
    summer = await book(berlin, datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN))  # CEST, UTC+2
    service = calendar_service(berlin)
    for code, utc_hour in ((winter, 9), (summer, 8)):
        path = await service.booking_path("spree", code)
        cal = await fetch_ics(http, path)
        event = only_event(cal)
        assert str(event["UID"]) == uid("spree", code)
        start = event["DTSTART"]
        assert str(start.params["TZID"]) == "Europe/Berlin"
        assert (start.dt.hour, start.dt.minute) == (10, 0)  # wall clock in the shop
        day = 27 if code == winter else 30
        assert in_file_zone(cal, start).astimezone(UTC) == datetime(2026, 3, day, utc_hour, 0, tzinfo=UTC)
        assert in_file_zone(cal, event["DTEND"]) - in_file_zone(cal, start) == timedelta(hours=1)
        assert [str(z["TZID"]) for z in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
        assert str(event["LOCATION"]) == "Torstraße 1, 10119 Berlin"
        assert f"#{code}" in str(event["DESCRIPTION"])
        assert str(event["STATUS"]) == "CONFIRMED"
        assert int(event["SEQUENCE"]) == 0
        alarms = event.walk("VALARM")
        assert len(alarms) == 1 and alarms[0].decoded("TRIGGER") == timedelta(hours=-1)
    assert path.startswith(f"/cal/spree/booking/{summer}/")
    assert await service.booking_url("spree", summer) == "https://book.example" + path
    assert await service.booking_link("spree", summer) == "https://book.example" + path
    assert booking_calendar_path(SECRET.encode(), "spree", summer) == path


async def test_reschedule_bumps_sequence_and_cancel_marks_cancelled(berlin: Services, http: Http) -> None:
    code = await book(berlin, datetime(2026, 3, 28, 11, 0, tzinfo=BERLIN))
    booking = await berlin.bookings.find_by_code("spree", code)
    assert booking is not None
    path = await calendar_service(berlin).booking_path("spree", code)
    first = only_event(await fetch_ics(http, path))

    moved = await berlin.bookings.reschedule(
        "spree", booking.id, datetime(2026, 3, 29, 11, 0, tzinfo=BERLIN).astimezone(UTC), Actor.staff("front")
    )
    assert isinstance(moved, Booked)
    cal = await fetch_ics(http, path)  # the same URL: the calendar app updates the same event
    second = only_event(cal)
    assert str(second["UID"]) == str(first["UID"])
    assert int(second["SEQUENCE"]) == 1
    assert in_file_zone(cal, second["DTSTART"]).astimezone(UTC) == datetime(2026, 3, 29, 9, 0, tzinfo=UTC)

    cancelled = await berlin.bookings.cancel("spree", booking.id, Actor.staff("front"))
    assert isinstance(cancelled, Booked)
    third = only_event(await fetch_ics(http, path))
    assert str(third["UID"]) == str(first["UID"])
    assert str(third["STATUS"]) == "CANCELLED"
    assert int(third["SEQUENCE"]) == 2
    assert not third.walk("VALARM")


async def test_staff_and_shop_feeds_cover_the_next_60_days(berlin: Services, http: Http) -> None:
    anna = await book(berlin, datetime(2026, 3, 26, 9, 0, tzinfo=BERLIN), "anna")
    ben = await book(berlin, datetime(2026, 4, 1, 9, 0, tzinfo=BERLIN), "ben")
    await book(berlin, datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN), "anna")  # beyond 60 days
    gone = await book(berlin, datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN), "anna")
    gone_view = await berlin.bookings.find_by_code("spree", gone)
    assert gone_view is not None
    await berlin.bookings.cancel("spree", gone_view.id, Actor.staff("front"))
    feeds = {f.staff_id: f.path for f in await calendar_service(berlin).feeds("spree")}
    assert set(feeds) == {"", "anna", "ben"}

    shop_cal = await fetch_ics(http, feeds[""])
    assert sorted(str(e["UID"]) for e in shop_cal.walk("VEVENT")) == sorted([uid("spree", anna), uid("spree", ben)])
    anna_cal = await fetch_ics(http, feeds["anna"])
    assert [str(e["UID"]) for e in anna_cal.walk("VEVENT")] == [uid("spree", anna)]
    assert "Anna" in str(anna_cal["X-WR-CALNAME"])
    ben_cal = await fetch_ics(http, feeds["ben"])
    (event,) = ben_cal.walk("VEVENT")
    assert in_file_zone(ben_cal, event["DTSTART"]).astimezone(UTC) == datetime(2026, 4, 1, 7, 0, tzinfo=UTC)


async def test_rotation_makes_the_old_url_404(berlin: Services, http: Http) -> None:
    service = calendar_service(berlin)
    old = {f.staff_id: f.path for f in await service.feeds("spree")}
    rotated = await service.rotate("spree", "anna")
    assert rotated.path != old["anna"]
    assert (await http.get(old["anna"])).status == 404
    assert (await http.get(rotated.path)).status == 200
    assert (await http.get(old["ben"])).status == 200  # other feeds keep working
    assert (await http.get(old[""])).status == 200
    shop_rotated = await service.rotate("spree")
    assert (await http.get(old[""])).status == 404
    assert (await http.get(shop_rotated.path)).status == 200
    with pytest.raises(LookupError):
        await service.rotate("spree", "nobody")


async def test_unknown_tokens_and_garbage_are_404_never_500(berlin: Services, http: Http) -> None:
    code = await book(berlin, datetime(2026, 3, 26, 12, 0, tzinfo=BERLIN))
    good = await calendar_service(berlin).booking_path("spree", code)
    token = good.rsplit("/", 1)[1][: -len(".ics")]
    other = "0" * 32 if token != "0" * 32 else "1" * 32
    for path in (
        f"/cal/spree/booking/{code}/{other}.ics",  # wrong token
        f"/cal/spree/booking/ZZZZZZ/{token}.ics",  # token of another booking
        f"/cal/other/booking/{code}/{token}.ics",  # another shop
        f"/cal/spree/feed/{token}.ics",  # a booking token is no feed token
        f"/cal/spree/staff/anna/{token}.ics",
        f"/cal/spree/staff/nobody/{other}.ics",
        "/cal/spree/feed/not-hex.ics",
        "/cal/spree/feed/%00%ff.ics",
        f"/cal/spree/booking/{'x' * 500}/{token}.ics",
        "/cal/spree/feed/" + "a" * 5000 + ".ics",
        "/cal/",
        "/cal/spree",
        f"/cal/spree/booking/{code}/{token}",
    ):
        response = await http.get(path)
        assert response.status == 404, path
    assert (await http.get(good)).status == 200
    assert (await http.post(good)).status == 405


async def test_the_secret_comes_from_the_environment_or_is_generated_once(tmp_path: Path) -> None:
    config = berlin_config(tmp_path)
    svc = await bootstrap(config, clock=FixedClock(NOW), database_url=f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
    try:
        generated = CalendarService(svc.db, config, svc.clock, environ={})
        again = CalendarService(svc.db, config, svc.clock, environ={})  # another process on the database
        assert await generated.booking_path("spree", "ABC123") == await again.booking_path("spree", "ABC123")
        from_env = CalendarService(svc.db, config, svc.clock, environ={"CHATBOOK_SECRET": SECRET})
        assert await from_env.booking_path("spree", "ABC123") != await generated.booking_path("spree", "ABC123")
        with pytest.raises(ValueError, match="CHATBOOK_SECRET"):
            await CalendarService(svc.db, config, svc.clock, environ={"CHATBOOK_SECRET": "short"}).secret()
    finally:
        await svc.close()


def test_cli_lists_and_rotates_feeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHATBOOK_SECRET", SECRET)
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.replace("server:\n", f"database:\n  url: sqlite+aiosqlite:///{tmp_path / 'cli.db'}\nserver:\n")
        + f"faq_dir: {tmp_path}\n",
        encoding="utf-8",
    )
    assert cli_main(["calendar", "feeds", "--config", str(path), "--shop", "spree"]) == 0
    before = capsys.readouterr().out
    assert "https://book.example/cal/spree/feed/" in before and "/cal/spree/staff/anna/" in before
    assert cli_main(["calendar", "rotate", "--config", str(path), "--shop", "spree", "--staff", "anna"]) == 0
    rotated = capsys.readouterr().out
    assert cli_main(["calendar", "feeds", "--config", str(path), "--shop", "spree"]) == 0
    after = capsys.readouterr().out
    anna_before = next(line for line in before.splitlines() if "/staff/anna/" in line)
    anna_after = next(line for line in after.splitlines() if "/staff/anna/" in line)
    assert anna_before != anna_after and anna_after.split()[-1] in rotated
    assert next(line for line in before.splitlines() if "/feed/" in line) in after  # the shop feed is unchanged
    assert cli_main(["calendar", "rotate", "--config", str(path), "--shop", "spree", "--staff", "nobody"]) == 2


# ----------------------------------------------------------------------------- in the console

PASSWORD = "correct horse battery"


async def console_login(http: Http, username: str) -> None:
    import re

    page = await http.get("/console/login")
    match = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert match
    form = {"csrf": match.group(1), "username": username, "password": PASSWORD, "next": ""}
    response = await http.post("/console/login", data=form, allow_redirects=False)
    assert response.status == 302


def feed_urls(html: str) -> dict[str, str]:
    """Each feed's URL as the page shows it (data-staff of its item -> the readonly input's value)."""
    import re

    items = re.findall(r'data-staff="([^"]*)".*?class="feed-url"[^>]*value="([^"]+)"', html, flags=re.S)
    return dict(items)


async def test_console_shows_your_own_feed_first_and_rotates_it(berlin: Services, http: Http) -> None:
    await berlin.accounts.add("anna", PASSWORD, shops=["spree"], display_name="Anna", language="en")
    await console_login(http, "anna")
    page = await http.get("/console/calendar?shop=spree")
    assert page.status == 200
    html = await page.text()
    shown = feed_urls(html)
    assert list(shown) == ["anna", "", "ben"]  # her own feed first, then the shop's, then the others
    assert html.index("Yours") < html.index('data-staff=""')
    paths = {f.staff_id: f.path for f in await calendar_service(berlin).feeds("spree")}
    assert shown == {staff: "https://book.example" + path for staff, path in paths.items()}  # public_url
    assert 'href="webcal://book.example/cal/spree/staff/anna/' in html
    own = paths["anna"]
    assert (await http.get(own)).status == 200  # what a phone calendar subscribed to gets

    csrf = (await (await http.get("/api/console/me")).json())["csrf"]
    refused = await http.post("/console/calendar/rotate", data={"shop": "spree", "staff": "anna"})
    assert refused.status == 403  # no CSRF token
    unknown = await http.post("/console/calendar/rotate", data={"csrf": csrf, "shop": "spree", "staff": "nobody"})
    assert unknown.status == 400 and (await unknown.json())["field"] == "staff"
    other = await http.post("/console/calendar/rotate", data={"csrf": csrf, "shop": "elsewhere", "staff": ""})
    assert other.status == 403
    rotated = await http.post(
        "/console/calendar/rotate", data={"csrf": csrf, "shop": "spree", "staff": "anna"}, allow_redirects=False
    )
    assert rotated.status == 302 and rotated.headers["Location"].startswith("/console/calendar?shop=spree")
    after = await http.get(rotated.headers["Location"])
    html = await after.text()
    assert "the old one no longer works" in html
    new = feed_urls(html)
    assert new["anna"] != shown["anna"] and new["ben"] == shown["ben"] and new[""] == shown[""]
    assert (await http.get(own)).status == 404  # the old URL is revoked
    assert (await http.get(new["anna"].removeprefix("https://book.example"))).status == 200


async def test_a_confirmation_from_the_shop_carries_add_to_calendar(berlin: Services, http: Http) -> None:
    """Booked or approved by staff, the customer is told by a confirmation reminder: it links the
    same private .ics as a confirmation in chat."""
    from sqlalchemy import select

    from core.messages import OutgoingMessage
    from core.models import OutboxMessage
    from tests.support.collecting import CollectingChannel

    chat = CollectingChannel(berlin.engine, "spree", user="u1")
    await chat.push("hello")
    customer = await berlin.customers.identify("spree", "test", "u1")
    booked = await berlin.bookings.book(
        BookingRequest(
            "spree", "bath", datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN), staff_id="ben", customer_id=customer.id
        ),
        Actor.staff("front"),
    )
    assert isinstance(booked, Booked)
    assert await berlin.reminders.tick() == 1
    async with berlin.db.reading() as s:
        [row] = list(await s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "reminder")))
    message = OutgoingMessage.from_json(row.body)
    assert message.link is not None
    label, url = message.link
    assert label == "Add to calendar"
    assert url == "https://book.example" + await calendar_service(berlin).booking_path("spree", booked.booking.code)
    event = only_event(await fetch_ics(http, url.removeprefix("https://book.example")))
    assert str(event["UID"]) == uid("spree", booked.booking.code)
