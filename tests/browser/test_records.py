"""Customers' records in a real browser: a groomer edits a pet and adds a vaccination on the
customer page, completes a visit from the day view with "same as last time" notes; an optometrist
enters an exam result, is told which field is wrong, and sees the plain-language summary the
customer will read; staff of another shop cannot open it. Screenshots: tests/browser/artifacts/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from bot.bootstrap import Services
from bot.console.views import strings
from bot.web import build_app
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.records import record_visit_notes
from core.results import Actor, Booked
from tests.browser.conftest import Launch
from tests.conftest import NOW
from tests.helpers import at
from tests.support.collecting import CollectingChannel

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
PASSWORD = "front desk 2026"
EN = strings("en")
SAT = date(2026, 11, 21)  # the tests' clock: Saturday 09:00 in Shanghai
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
async def server(sqlite_services: Services) -> AsyncIterator[str]:
    await sqlite_services.accounts.add("mei", PASSWORD, shops=["pawspa"], display_name="Mei", language="en")
    await sqlite_services.accounts.add("wang", PASSWORD, shops=["clearsight"], display_name="Dr Wang", language="en")
    app_server = TestServer(build_app(sqlite_services), host="127.0.0.1")
    await app_server.start_server()
    try:
        yield str(app_server.make_url("")).rstrip("/")
    finally:
        await app_server.close()


async def login(browser: Launch, base: str, username: str, path: str) -> Any:
    context = await browser(viewport={"width": 1180, "height": 860})
    page = context.pages[0] if context.pages else await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: errors.append("dialog: " + d.message))
    page.errors = errors
    await page.goto(f"{base}/console/login?next={quote(path, safe='')}")
    await page.locator("input[name=username]").fill(username)
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("button[type=submit]").click()
    await page.wait_for_url(f"**{path.split('?')[0]}*")
    return page


async def test_pet_records_and_visit_notes(
    server: str, browser: Launch, sqlite_services: Services, clock: FixedClock
) -> None:
    services = sqlite_services
    staff = Actor.staff("mei")
    customer = await services.customers.identify("pawspa", "web", "ann", display_name=f"Ann {XSS}")
    pet = await services.customers.add_pet(customer.id, name="Lucky", species="dog", size="small")
    clock.set(NOW - timedelta(days=7))  # last Saturday's bath, with its notes
    before = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(SAT - timedelta(days=7), "14:00"), customer_id=customer.id,
                       pet_id=pet.id), staff,
    )  # fmt: skip
    clock.set(NOW)
    assert isinstance(before, Booked)
    await services.bookings.mark_attendance("pawspa", before.booking.id, "completed", staff)
    shop = services.config.shops["pawspa"]
    await record_visit_notes(
        services.db, services.clock, shop, "pawspa", before.booking.id,
        {"products": "Oatmeal shampoo", "blade": "10mm", "notes": "Sensitive ears"}, staff,
    )  # fmt: skip
    today = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(SAT, "14:00"), customer_id=customer.id, pet_id=pet.id), staff
    )
    assert isinstance(today, Booked)

    page = await login(browser, server, "mei", f"/console/customer?shop=pawspa&id={customer.id}")
    card = page.locator(f".pet-card[data-pet='{pet.id}']")
    await expect(card).to_be_visible()
    await expect(page.locator("#r-name")).to_have_text(f"Ann {XSS}")  # text, not markup
    await card.locator("input[name=weight_kg]").fill("6.4")
    await card.locator("textarea[name=notes]").fill("Afraid of the dryer")
    await card.locator(".pet-form button[type=submit]").click()
    await expect(card.locator(".pet-form .form-result")).to_have_text(EN["records.saved"])
    await page.reload()
    card = page.locator(f".pet-card[data-pet='{pet.id}']")
    await expect(card.locator("input[name=weight_kg]")).to_have_value("6.4")
    form = card.locator(".vacc-form")
    await form.locator("select[name=kind]").select_option("rabies")
    await form.locator("input[name=given_on]").fill("2026-12-01")  # in the future: refused, named
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".form-result")).to_contain_text(EN["records.given_on"])
    await form.locator("input[name=given_on]").fill("2026-03-05")
    await form.locator("button[type=submit]").click()
    row = page.locator(f".pet-card[data-pet='{pet.id}'] .vaccinations li[data-kind=rabies]")
    await expect(row).to_contain_text("2026-03-05 → 2027-03-05")
    await expect(row).to_contain_text(EN["records.valid"])
    await expect(page.locator("#r-trail")).to_contain_text("vaccination.added")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "records-pet.png"), full_page=True)

    await page.goto(f"{server}/console/day?shop=pawspa")
    await page.locator(f".block[data-booking='{today.booking.id}']").click()
    visit = page.locator("#bd-visit")
    await expect(visit).to_be_visible()
    same = page.locator("#v-same")
    await expect(same).to_have_text(EN["records.same_as_last"].replace("{date}", "2026-11-14"))
    await same.click()
    await expect(page.locator("#v-products")).to_have_value("Oatmeal shampoo")
    await page.locator("#v-notes").fill("Sensitive ears; loved the treats")
    await page.locator("#v-complete").click()
    await expect(page.locator("#bd-result")).to_have_text(EN["records.notes_saved"])
    await expect(page.locator("#bd-facts .pill")).to_have_text(EN["status.completed"])
    await page.screenshot(path=str(ARTIFACTS / "records-visit-notes.png"))
    done = await services.bookings.get("pawspa", today.booking.id)
    assert done is not None and done.status.value == "completed"
    assert page.errors == []


async def test_eye_exam_form(server: str, browser: Launch, sqlite_services: Services) -> None:
    await CollectingChannel(sqlite_services.engine, "clearsight", user="wu", channel="web").push("hello")
    customer = await sqlite_services.customers.identify("clearsight", "web", "wu", display_name="Wu Lei")
    page = await login(browser, server, "wang", f"/console/customer?shop=clearsight&id={customer.id}")
    await expect(page.locator("#r-eyes-card")).to_be_visible()
    await expect(page.locator("#r-pets-card")).to_be_hidden()  # an optician keeps no pets
    values = {"od_sphere": "-3.10", "od_cylinder": "-0.50", "od_axis": "180", "od_va": "1.0",
              "os_sphere": "-2.75", "os_va": "20/20"}  # fmt: skip
    for name, value in values.items():
        await page.locator(f"#e-{name}").fill(value)
    await page.locator("#e-pd").fill("62")
    await page.locator("#e-save").click()
    result = page.locator("#e-result")
    await expect(result).to_contain_text(f"{EN['records.od']} · {EN['records.sphere']}")  # the field, by its label
    await expect(page.locator("#e-od_sphere")).to_have_attribute("aria-invalid", "true")
    await page.screenshot(path=str(ARTIFACTS / "records-eye-error.png"))
    await page.locator("#e-od_sphere").fill("-3.00")
    await page.locator("#e-save").click()
    await expect(result).to_have_text(EN["records.exam_saved"])
    summary = page.locator("#r-eyes .summary").first
    await expect(summary).to_contain_text("Right eye: short-sighted, -3.00; astigmatism -0.50")
    await expect(page.locator("#r-eyes")).to_contain_text(EN["records.recall_on"].replace("{date}", "2027-11-21"))
    await page.locator("#r-eyes .eye-record .send").first.click()  # the summary to the customer's chat
    await expect(page.locator("#r-eyes .eye-record .form-result").first).to_have_text(EN["records.sent"])
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "records-eye.png"), full_page=True)
    assert page.errors == []

    other = await login(browser, server, "mei", "/console/customers?shop=pawspa")
    response = await other.goto(f"{server}/console/customer?shop=clearsight&id={customer.id}")
    assert response is not None and response.status == 403
    await other.goto(f"{server}/console/customer?shop=pawspa&id={customer.id}")  # the API refuses it too
    await expect(other.locator("#r-error")).to_have_text(EN["err.forbidden"])
    await expect(other.locator("#r-eyes .summary")).to_have_count(0)
