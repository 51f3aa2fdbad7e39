"""The Reports page in a real browser: charts drawn from the figures (uPlot, served by us, under
the console's CSP), a shop and all shops side by side, the CSV download, a low rating arriving
live, customer comments shown as text, and a tablet in both orientations with nothing cut off.

Screenshots go to tests/browser/artifacts/ (reports-*.png).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect
from sqlalchemy import select

from bot.bootstrap import Services
from bot.web import build_app
from core import reports
from core.models import Booking, BookingStatus, Rating
from core.ratings import RatingService
from tests.browser.conftest import Launch
from tests.test_reports import FIRST, LAST, seed

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
PASSWORD = "head office 2026"
XSS = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
SHOTS = Path(__file__).resolve().parent / "artifacts"
RANGE = f"from={FIRST.isoformat()}&to={LAST.isoformat()}"
CHARTS_ONE_SHOP = 9
CHARTS_SIDE_BY_SIDE = 10
TABLET_PORTRAIT = {"width": 768, "height": 1024}
TABLET_LANDSCAPE = {"width": 1024, "height": 768}


@pytest.fixture
async def server(sqlite_services: Services) -> AsyncIterator[str]:
    services = sqlite_services
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin", language="en")
    await services.accounts.add("mei", PASSWORD, shops=["pawspa"], language="zh")
    await seed(services)
    async with services.db.transaction() as s:  # the latest rating's comment is hostile text
        latest = await s.scalar(select(Rating).where(Rating.shop_id == "pawspa").order_by(Rating.at.desc()).limit(1))
        assert latest is not None
        latest.comment = XSS
    app_server = TestServer(build_app(services), host="127.0.0.1")
    await app_server.start_server()
    try:
        yield str(app_server.make_url("")).rstrip("/")
    finally:
        await app_server.close()


async def login(browser: Launch, base: str, user: str, path: str, **options: Any) -> Any:
    options.setdefault("viewport", {"width": 1366, "height": 900})
    context = await browser(**options)
    page = context.pages[0] if context.pages else await context.new_page()
    page.errors, page.dialogs = [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None)
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss())[1])
    await page.goto(f"{base}{path}")
    await page.locator("input[name=username]").fill(user)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("button[type=submit]").click()
    await expect(page.locator("#reports")).to_have_attribute("data-loaded", "1")
    if "?" in path:  # the login keeps the page, not its query
        await page.goto(f"{base}{path}")
        await expect(page.locator("#reports")).to_have_attribute("data-loaded", "1")
    return page


async def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(exist_ok=True)
    await page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar where it belongs
    await page.screenshot(path=str(SHOTS / f"reports-{name}.png"), full_page=full_page)


async def charts_fit(page: Any) -> None:
    """Wait until every chart has been redrawn at its card's width (after the screen turned)."""
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.chart-box canvas')].every(c =>"
        " Math.abs(c.getBoundingClientRect().width - c.closest('.chart-box').clientWidth) < 2)"
    )


async def no_sideways_scroll(page: Any) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


async def test_one_shop_charts_tiles_table_and_comments(
    server: str, browser: Launch, sqlite_services: Services
) -> None:
    path = f"/console/reports?shop=pawspa&grain=week&{RANGE}"
    page = await login(browser, server, "boss", path)
    want = await reports.figures(
        sqlite_services.db, "pawspa", sqlite_services.config.shops["pawspa"], "week", FIRST, LAST
    )
    await expect(page.locator(".chart-box canvas")).to_have_count(CHARTS_ONE_SHOP)
    await expect(page.locator(".kpi[data-key=chats] .kpi-value")).to_have_text(str(want.total.chats))
    await expect(page.locator(".kpi[data-key=bookings] .kpi-value")).to_have_text(str(want.total.bookings))
    conversion = want.total.as_dict()["conversion"]  # as the API sends it; shown as JS rounds it
    assert conversion is not None
    await expect(page.locator(".kpi[data-key=conversion] .kpi-value")).to_have_text(
        f"{math.floor(conversion * 1000 + 0.5) / 10:g}%"
    )
    rows = page.locator("#report-table tbody tr")
    await expect(rows).to_have_count(len(want.rows) + 1)  # every week and the total
    await expect(rows.first.locator("th")).to_have_text(want.rows[0].period)
    # The legend of the channel chart names each channel that had bookings.
    legend = page.locator(".chart-card").nth(2).locator(".u-legend .u-series")
    await expect(legend).to_have_count(len(want.channels) + 1)  # + the x series
    # The hostile comment is shown as text, and nothing ran.
    await expect(page.locator(".rating-comment").first).to_have_text(XSS)
    assert await page.locator("#report-ratings img").count() == 0
    assert page.dialogs == [] and page.errors == []  # no CSP refusal, no script error
    await expect(page.locator("a.nav-link[aria-current=page]")).to_have_text("Reports")
    await shot(page, "shop-week")


async def test_all_shops_side_by_side_and_the_csv_download(server: str, browser: Launch) -> None:
    page = await login(browser, server, "boss", f"/console/reports?shop=pawspa&grain=month&{RANGE}")
    await page.locator("#report-shop").select_option("all")
    await page.locator("label.grain-option", has_text="Week").click()
    await page.locator("#report-form button[type=submit]").click()
    await expect(page.locator("#reports")).to_have_attribute("data-shops", "2")
    await expect(page.locator("#reports")).to_have_attribute("data-grain", "week")
    await expect(page.locator(".chart-box canvas")).to_have_count(CHARTS_SIDE_BY_SIDE)
    header = page.locator("#report-compare-table thead th")
    await expect(header).to_have_text(["Figure", "PawSpa Pet Salon", "ClearSight Optometry"])
    await expect(page.locator("#report-periods")).to_be_hidden()
    assert "shop=all" in page.url and "grain=week" in page.url  # a link to this view can be shared
    async with page.expect_download() as info:
        await page.locator("#report-csv").click()
    download = await info.value
    assert download.suggested_filename == f"chatbook-all-week-{FIRST.isoformat()}-{LAST.isoformat()}.csv"
    text = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("shop,period,start,chats,chats_converted,")
    assert {line.split(",")[0] for line in lines[1:]} == {"pawspa", "clearsight"}
    assert page.errors == []
    await shot(page, "all-shops")


async def test_a_low_rating_shows_up_live(server: str, browser: Launch, sqlite_services: Services) -> None:
    services = sqlite_services
    page = await login(browser, server, "mei", "/console/reports?shop=pawspa")
    await expect(page.locator("#cb-conn")).to_have_attribute("data-state", "open")
    async with services.db.transaction() as s:  # a completed visit of the seed that nobody rated yet
        rated = select(Rating.booking_id)
        booking = await s.scalar(
            select(Booking)
            .where(Booking.shop_id == "pawspa", Booking.status == BookingStatus.COMPLETED, Booking.id.not_in(rated))
            .limit(1)
        )
        assert booking is not None and booking.customer_id is not None
        booking_id, customer_id = booking.id, booking.customer_id
        now = services.clock.now()
        for later in await s.scalars(select(Rating).where(Rating.at >= now)):  # the new one comes first
            later.at = now - timedelta(days=30)
    ratings = RatingService(services.db, services.config, services.clock, publish=services.events.publish)
    await ratings.record_rating(booking_id, customer_id, 1, "等太久了")
    await expect(page.locator("#cb-toast")).to_contain_text("1 星")  # zh: mei reads the console in Chinese
    await expect(page.locator(".rating-comment").first).to_have_text("等太久了")  # the list reloaded
    assert page.errors == []


@pytest.mark.parametrize("viewport", [TABLET_PORTRAIT, TABLET_LANDSCAPE], ids=["portrait", "landscape"])
async def test_on_a_tablet(server: str, browser: Launch, viewport: dict[str, int]) -> None:
    page = await login(
        browser,
        server,
        "boss",
        f"/console/reports?shop=pawspa&grain=day&{RANGE}",
        viewport=viewport,
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    await expect(page.locator(".chart-box canvas")).to_have_count(CHARTS_ONE_SHOP)
    await charts_fit(page)
    await no_sideways_scroll(page)
    main = await page.locator("#report-charts").bounding_box()
    card = await page.locator(".chart-card").first.bounding_box()
    canvas = await page.locator(".chart-box canvas").first.bounding_box()
    assert main is not None and card is not None and canvas is not None
    assert round(main["width"] / card["width"]) == 2  # two charts a row on a tablet (one on a phone)
    assert canvas["x"] + canvas["width"] <= card["x"] + card["width"] + 1  # the chart fits its card
    # Touch targets: the grain switch and the buttons are at least 44px high.
    for target in ("label.grain-option span", "#report-form button[type=submit]", "#report-csv"):
        box = await page.locator(target).first.bounding_box()
        assert box is not None and box["height"] >= 44, target
    # The wide table scrolls inside its card, not the page.
    await page.locator("#report-periods").scroll_into_view_if_needed()
    await no_sideways_scroll(page)
    # Turning the tablet redraws the charts at the new width.
    other = TABLET_LANDSCAPE if viewport is TABLET_PORTRAIT else TABLET_PORTRAIT
    await page.set_viewport_size(other)
    await charts_fit(page)
    await no_sideways_scroll(page)
    await page.set_viewport_size(viewport)
    await charts_fit(page)
    assert page.errors == []
    await shot(page, f"tablet-{'portrait' if viewport is TABLET_PORTRAIT else 'landscape'}", full_page=False)
