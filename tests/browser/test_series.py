"""The recurring-visits card on the console's customer page, in a real browser: a weekly series
whose third visit had to move (its usual time was taken) is listed visit by visit with its status
and the reason it moved; "Cancel the rest" asks for a second tap, then cancels every visit still
ahead (the slots are freed, the customer is told) and the card says so. Staff of another shop get
no series. Screenshots (desktop and tablet): tests/browser/artifacts/.
"""

from __future__ import annotations

from datetime import date

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.i18n import texts
from core.models import Booking, BookingStatus, OutboxMessage
from core.results import Actor, Booked
from core.series import Recurrence, SeriesService
from tests.browser.conftest import Launch
from tests.browser.test_records import ARTIFACTS, EN, login, server  # noqa: F401  # the fixture, shared
from tests.helpers import at
from tests.support.collecting import CollectingChannel

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
FIRST = date(2026, 11, 28)  # next Saturday; the tests' clock is Saturday 21 Nov, 09:00 in Shanghai
THIRD = date(2026, 12, 12)
STAFF = Actor.staff("mei")


async def _series(services: Services) -> tuple[int, int]:
    """A customer's weekly bath, three visits; the third one's 10:00 was already taken."""
    await CollectingChannel(services.engine, "pawspa", user="ann", channel="web").push("hello")
    customer = await services.customers.identify("pawspa", "web", "ann", display_name="Ann")
    pet = await services.customers.add_pet(customer.id, name="Lucky", species="dog", size="small")
    for groomer in ("xiaomei", "ajie"):  # every groomer of small dogs is busy at 10:00 on the third Saturday
        taken = await services.bookings.book(
            BookingRequest("pawspa", "dog_bath_small", at(THIRD, "10:00"), staff_id=groomer), STAFF
        )
        assert isinstance(taken, Booked)
    first = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(FIRST, "10:00"), customer_id=customer.id, pet_id=pet.id), STAFF
    )
    assert isinstance(first, Booked)
    started = await SeriesService(services.bookings).start(
        "pawspa", first.booking.id, Recurrence(1, "week", count=3), STAFF
    )
    assert [v.outcome for v in started.visits] == ["booked", "booked", "moved"]
    return customer.id, started.series.id


async def test_series_card_lists_each_visit_and_cancels_the_rest(
    server: str,  # noqa: F811  # before ``browser``: the server stops after the browser closed
    browser: Launch,
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    customer_id, series_id = await _series(services)
    page = await login(browser, server, "mei", f"/console/customer?shop=pawspa&id={customer_id}")
    card = page.locator(f"#r-series .series[data-series='{series_id}']")
    await expect(page.locator("#r-series-card")).to_be_visible()
    await expect(card.locator(".series-head")).to_contain_text("Dog bath (small) · every week · 10:00")
    await expect(card.locator(".series-head .pill")).to_have_text(EN["records.series_status_ended"])
    visits = card.locator(".mini-list li")
    await expect(visits).to_have_count(3)
    await expect(visits.nth(0)).to_contain_text("2026-11-28 10:00")
    await expect(visits.nth(1)).to_contain_text("2026-12-05 10:00")
    await expect(visits.nth(2)).to_contain_text("2026-12-12")
    await expect(visits.nth(2)).to_contain_text(EN["records.visit_moved"])
    await expect(visits.nth(2)).not_to_contain_text("2026-12-12 10:00")  # not double-booked
    for i in range(3):
        await expect(visits.nth(i).locator(".pill")).to_have_text(EN["status.confirmed"])
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "series-card.png"), full_page=True)

    cancel = card.locator("button.btn-danger")
    await cancel.click()  # the first tap only asks
    await expect(cancel).to_have_text(EN["records.series_confirm"].format(count=3))
    await expect(visits.nth(0).locator(".pill")).to_have_text(EN["status.confirmed"])
    await cancel.click()
    await expect(page.locator("#r-series-result")).to_have_text(EN["records.series_cancelled"].format(count=3))
    for i in range(3):
        await expect(visits.nth(i).locator(".pill")).to_have_text(EN["status.cancelled"])
    async with services.db.reading() as s:
        mine = list(await s.scalars(select(Booking).where(Booking.customer_id == customer_id)))
        told = list(await s.scalars(select(OutboxMessage).where(OutboxMessage.external_id == "ann")))
    assert {b.status for b in mine} == {BookingStatus.CANCELLED} and len(mine) == 3
    [notice] = [m.body["text"] for m in told if m.kind == "notice"]  # the customer is told, once
    lang = "en" if texts("en").t("series.cancelled_by_shop_end") in notice else "zh"
    head = texts(lang).t("series.cancelled_by_shop", count=3, interval=Recurrence(1, "week").describe(lang))
    assert notice.startswith(head) and notice.count("\n") == 4  # the heading, the 3 visits, the ending
    await page.set_viewport_size({"width": 820, "height": 1180})  # a tablet held upright
    await page.screenshot(path=str(ARTIFACTS / "series-card-tablet.png"), full_page=True)
    assert page.errors == []

    other = await login(browser, server, "wang", f"/console/customer?shop=pawspa&id={customer_id}")
    await expect(other.locator("#r-series .series")).to_have_count(0)  # another shop's staff: nothing
