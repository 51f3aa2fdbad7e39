"""Moving a whole series from the console's customer page, in a real browser: staff ask for
14:00 instead of 10:00; the third Saturday's 14:00 is taken, so nothing moves and that visit is
listed with the nearest free times; staff pick one and press Move again: every visit ahead is at
its new time, the customer is told once, the audit trail has it. Then a move to Sunday where a
clash is kept as it is. Screenshots: tests/browser/artifacts/series-move-*.png.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from bot.bootstrap import Services
from core.models import AuditEvent, OutboxMessage
from tests.browser.conftest import Launch
from tests.browser.test_records import ARTIFACTS, EN, login, server  # noqa: F401  # the fixture, shared
from tests.test_series import _starts, _weekly_bath

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]


async def test_staff_move_a_series_and_pick_a_time_for_the_clash(
    server: str,  # noqa: F811  # before ``browser``: the server stops after the browser closed
    browser: Launch,
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    customer_id, series_id = await _weekly_bath(services)
    page = await login(browser, server, "mei", f"/console/customer?shop=pawspa&id={customer_id}")
    form = page.locator(f"form.series-move[data-series='{series_id}']")
    await expect(form).to_be_visible()
    await form.locator("input[name=time]").fill("14:00")
    await form.locator("button[type=submit]").click()

    clash = form.locator(".series-clash")
    await expect(clash).to_have_count(1)
    await expect(clash).to_contain_text(EN["records.series_move_clash"].format(n=3, when="2026-12-12 14:00"))
    await expect(form.locator(".form-result")).to_have_text(EN["records.series_move_none"].format(count=1))
    await expect(clash.locator("button.alt")).to_have_count(3)
    await expect(clash.locator("button.alt").first).to_have_text("15:30")
    assert await _starts(services, series_id) == ["11-28 10:00", "12-05 10:00", "12-12 10:00"]  # nothing moved
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "series-move-clash.png"), full_page=True)

    await clash.locator("button.alt").first.click()
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#r-series-result")).to_have_text(EN["records.series_moved"].format(moved=3, kept=0))
    visits = page.locator(f"#r-series .series[data-series='{series_id}'] .mini-list li")
    await expect(visits.nth(0)).to_contain_text("2026-11-28 14:00")
    await expect(visits.nth(1)).to_contain_text("2026-12-05 14:00")
    await expect(visits.nth(2)).to_contain_text("2026-12-12 15:30")
    await expect(page.locator(f".series[data-series='{series_id}'] .series-head")).to_contain_text("14:00")
    assert await _starts(services, series_id) == ["11-28 14:00", "12-05 14:00", "12-12 15:30"]
    await page.screenshot(path=str(ARTIFACTS / "series-move-done.png"), full_page=True)

    # to Sunday, same time: visit 3 is booked at 15:30 and stays apart from the rhythm only if it clashes
    form = page.locator(f"form.series-move[data-series='{series_id}']")
    await form.locator("select[name=weekday]").select_option("6")
    await form.locator("button[type=submit]").click()
    await expect(page.locator("#r-series-result")).to_have_text(EN["records.series_moved"].format(moved=3, kept=0))
    assert await _starts(services, series_id) == ["11-29 14:00", "12-06 14:00", "12-13 14:00"]

    async with services.db.reading() as s:
        told = [m for m in await s.scalars(select(OutboxMessage)) if m.body.get("series_moved")]
        events = list(await s.scalars(select(AuditEvent).where(AuditEvent.action == "series.moved")))
    assert [m.external_id for m in told] == ["ann", "ann"]  # once per move
    assert [(e.actor_id, e.details["moved"]) for e in events] == [("mei", [1, 2, 3]), ("mei", [1, 2, 3])]
    await page.set_viewport_size({"width": 820, "height": 1180})  # a tablet held upright
    await page.screenshot(path=str(ARTIFACTS / "series-move-tablet.png"), full_page=True)
    assert page.errors == []
