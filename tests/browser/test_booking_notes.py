"""A booking's note for staff in a real browser: a weekly series booked with "same as last time"
(products, blade) and a line the customer typed that looks like markup. Staff see the note on the
day view's block and in the booking's details, on the first visit and on the next week's (every
visit of a series carries it), and on the customer page's booking list; it is text, never markup.
The series card says "every week", not "every 1 week(s)", and each visit links to its details on
the day view, where it is changed alone. Screenshot: tests/browser/artifacts/.
"""

from __future__ import annotations

from datetime import date

import pytest
from playwright.async_api import expect

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.results import Actor, Booked
from core.series import Recurrence, SeriesService
from tests.browser.conftest import Launch
from tests.browser.test_records import ARTIFACTS, EN, XSS, login, server  # noqa: F401  # the fixture, shared
from tests.helpers import at

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
FIRST = date(2026, 11, 28)  # next Saturday; the tests' clock is Saturday 21 Nov, 09:00 in Shanghai
SECOND = date(2026, 12, 5)
NOTE = f"Same as last time (2026-11-14): Oatmeal shampoo; blade 10mm\nCustomer: {XSS}"
STAFF = Actor.staff("mei")


async def _weekly_with_a_note(services: Services) -> tuple[int, list[int]]:
    customer = await services.customers.identify("pawspa", "web", "ann", display_name="Ann")
    pet = await services.customers.add_pet(customer.id, name="Lucky", species="dog", size="small")
    first = await services.bookings.book(
        BookingRequest(
            "pawspa", "dog_bath_small", at(FIRST, "10:00"), customer_id=customer.id, pet_id=pet.id, notes=NOTE
        ),
        STAFF,
    )
    assert isinstance(first, Booked)
    started = await SeriesService(services.bookings).start(
        "pawspa", first.booking.id, Recurrence(1, "week", count=2), STAFF
    )
    ids = [v.booking.id for v in started.visits if v.booking is not None]
    assert len(ids) == 2
    return customer.id, ids


async def test_staff_see_the_booking_note_on_every_visit_as_text(
    server: str,  # noqa: F811  # before ``browser``: the server stops after the browser closed
    browser: Launch,
    sqlite_services: Services,
) -> None:
    customer_id, (first_id, second_id) = await _weekly_with_a_note(sqlite_services)
    page = await login(browser, server, "mei", f"/console/day?shop=pawspa&date={FIRST.isoformat()}")
    for day, booking_id in ((FIRST, first_id), (SECOND, second_id)):
        if day != FIRST:
            await page.goto(f"{server}/console/day?shop=pawspa&date={day.isoformat()}")
        block = page.locator(f".block[data-booking='{booking_id}']")
        await expect(block.locator(".b-note")).to_have_text(NOTE.splitlines()[0])
        await block.click()
        shown = page.locator("#bd-notes")
        await expect(shown).to_be_visible()
        assert await shown.evaluate("n => n.textContent") == NOTE  # both lines, exactly as written
        await expect(shown.locator("img")).to_have_count(0)  # the customer's "markup" is only text
        await expect(page.locator("#bd-facts")).to_contain_text(EN["day.notes"])
        if day == FIRST:
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "booking-notes.png"))
        await page.keyboard.press("Escape")

    await page.goto(f"{server}/console/customer?shop=pawspa&id={customer_id}")
    rows = page.locator("#r-bookings li")
    await expect(rows).to_have_count(2)
    for i in range(2):
        await expect(rows.nth(i).locator(".note-text")).to_contain_text("Oatmeal shampoo; blade 10mm")
        await expect(rows.nth(i).locator("img")).to_have_count(0)
    head = page.locator("#r-series .series-head")
    await expect(head).to_contain_text("Dog bath (small) · every week · 10:00")
    await expect(head).not_to_contain_text("week(s)")

    # one visit changed alone: its link opens it on the day view, where staff cancel just that one
    await page.locator("#r-series .visit-open").nth(1).click()
    await page.wait_for_url("**/console/day?*")
    await expect(page.locator("#booking-dialog")).to_be_visible()
    await expect(page.locator("#bd-title")).to_contain_text("Ann")
    await expect(page.locator("#bd-facts")).to_contain_text(f"{SECOND.isoformat()} 10:00")
    assert await page.locator("#bd-notes").evaluate("n => n.textContent") == NOTE
    await page.locator("#bd-cancel").click()
    await page.locator("#bd-cancel").click()  # the second tap confirms
    await expect(page.locator("#bd-result")).to_have_text(EN["day.done"])
    first = await sqlite_services.bookings.get("pawspa", first_id)
    second = await sqlite_services.bookings.get("pawspa", second_id)
    assert first is not None and second is not None
    assert (first.status.value, second.status.value) == ("confirmed", "cancelled")  # the other visit stays
    assert page.errors == []  # no script error, no alert() from the note
