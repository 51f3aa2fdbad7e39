"""The staff console in a real browser next to the customer's widget: a customer asks for a
person, the console shows it live (no reload), staff take over and reply, the customer sees it,
staff hand back and the bot answers again. Customer text is hostile: it shows as text.

Delivery of staff messages goes through the outbox like everything else; the test server runs no
scheduler, so the test calls ``services.delivery.tick()`` in a bounded loop (see ``deliver``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from bot.bootstrap import Services
from bot.web import build_app
from core.bookings import BookingRequest
from core.i18n import texts
from core.results import Actor, Booked
from tests.browser.conftest import Launch
from tests.browser.test_widget import last_shop_message, open_chat, open_demo, send
from tests.helpers import at

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
EN = texts("en")
PASSWORD = "front desk 2026"
XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
SAT = date(2026, 11, 21)  # the tests' clock: Saturday 09:00 in Shanghai


@pytest.fixture
async def server(sqlite_services: Services) -> AsyncIterator[str]:
    """The whole app (widget, console, API) on a real local HTTP server."""
    await sqlite_services.accounts.add("mei", PASSWORD, shops=["pawspa"], display_name="Mei", language="en")
    app_server = TestServer(build_app(sqlite_services), host="127.0.0.1")
    await app_server.start_server()
    try:
        yield str(app_server.make_url("")).rstrip("/")
    finally:
        await app_server.close()


async def open_console(browser: Launch, base: str, **options: Any) -> Any:
    context = await browser(viewport={"width": 1280, "height": 800}, **options)
    page = context.pages[0] if context.pages else await context.new_page()
    dialogs: list[str] = []
    errors: list[str] = []

    def on_dialog(d: Any) -> Any:
        dialogs.append(d.message)
        return d.dismiss()  # a coroutine: playwright runs it as a task

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda e: errors.append(str(e)))
    expected = ("status of 404", "status of 409")  # chromium's favicon; 409 answers the UI shows

    def on_console(m: Any) -> None:
        if m.type == "error" and not any(e in m.text for e in expected):
            errors.append(m.text)

    def on_response(r: Any) -> None:
        if r.status >= 400 and r.status != 409 and not r.url.endswith("/favicon.ico"):
            errors.append(f"{r.status} {r.url}")

    page.on("console", on_console)
    page.on("response", on_response)
    page.dialogs, page.errors = dialogs, errors
    await page.goto(f"{base}/console")
    await expect(page).to_have_url(f"{base}/console/login?next=/console")
    await page.locator("input[name=username]").fill("mei")
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("button[type=submit]").click()
    await expect(page).to_have_url(f"{base}/console")
    await expect(page.locator("#cb-conn")).to_have_attribute("data-state", "open")
    return page


async def type_only(page: Any, text: str) -> None:
    """The customer sends a message that gets no bot reply (a person has the chat)."""
    before = await page.locator(".cb-msg--me").count()
    await page.locator(".cb-input").fill(text)
    await page.locator(".cb-input").press("Enter")
    await expect(page.locator(".cb-msg--me")).to_have_count(before + 1)
    await expect(page.locator(".cb-pending")).to_have_count(0)


async def deliver(services: Services) -> None:
    """Run the delivery loop until the outbox has nothing due (bounded)."""
    for _ in range(20):
        if await services.delivery.tick() == 0:
            return
    raise AssertionError("the outbox did not drain")


async def test_handoff_from_widget_to_console_and_back(
    server: str, browser: Launch, sqlite_services: Services, artifacts: Path
) -> None:
    console = await open_console(browser, server)
    await expect(console.locator("#waiting-empty")).to_be_visible()
    await console.locator("#cb-sound").click()  # a user gesture: the beep may play
    await expect(console.locator("#cb-sound")).to_have_attribute("aria-pressed", "true")
    beeps = int(await console.evaluate("document.body.dataset.beeps"))
    await console.evaluate("window.__notReloaded = true")

    customer = await open_demo(browser, server)
    await open_chat(customer)
    await send(customer, "talk to a person")  # written in English on the English page (the written language wins)
    await expect(last_shop_message(customer)).to_contain_text(EN.t("handoff.to_staff", eta="").strip())

    # the console shows it without a reload: list, badge, title and a beep
    item = console.locator("#waiting-list .conv-item")
    await expect(item).to_have_count(1)
    await expect(item.locator(".last")).to_have_text("talk to a person")
    await expect(console.locator("#cb-badge")).to_have_text("1")
    await expect(console).to_have_title("(1) Inbox · chatbook")
    await console.wait_for_function(f"parseInt(document.body.dataset.beeps, 10) > {beeps}")
    assert await console.evaluate("window.__notReloaded") is True

    await item.click()
    await expect(console.locator("#transcript .msg-in .bubble").last).to_have_text("talk to a person")
    await expect(console.locator("#conv-why-text")).to_contain_text("asked for a person")
    await expect(console.locator("#conv-mode")).to_have_text("Waiting")

    await console.locator("#btn-take").click()
    await expect(console.locator("#conv-mode")).to_have_text("With mei")
    await expect(console.locator("#cb-badge")).to_be_hidden()
    await console.locator("#composer-text").fill("Hi, this is Mei from the front desk. How can I help?")
    await console.locator("#composer-send").click()
    await expect(console.locator("#transcript .msg-staff .bubble").last).to_have_text(
        "Hi, this is Mei from the front desk. How can I help?"
    )
    await console.locator("#tab-note").click()
    await console.locator("#composer-text").fill("Regular customer, prefers Xiaomei")
    await console.locator("#composer-send").click()
    await expect(console.locator("#transcript .msg-note .bubble")).to_have_text("Regular customer, prefers Xiaomei")

    await deliver(sqlite_services)
    await expect(last_shop_message(customer).locator(".cb-text")).to_have_text(
        "Hi, this is Mei from the front desk. How can I help?"
    )
    shop_texts = await customer.locator(".cb-msg--shop .cb-text").all_text_contents()
    assert EN.t("handoff.joined", name="Mei") in shop_texts
    assert "Regular customer, prefers Xiaomei" not in " ".join(shop_texts)  # notes stay internal

    # the customer answers: the bot stays silent and the console updates live
    await type_only(customer, "My dog Max needs a bath today")
    await expect(console.locator("#transcript .msg-in .bubble").last).to_have_text("My dog Max needs a bath today")
    await console.screenshot(path=str(artifacts / "console-inbox.png"))

    await console.locator("#btn-release").click()
    await expect(console.locator("#conv-mode")).to_have_text("Bot")
    await deliver(sqlite_services)
    await expect(last_shop_message(customer).locator(".cb-text")).to_have_text(EN.t("handoff.released"))

    await send(customer, "What are your opening hours?")
    await expect(last_shop_message(customer)).to_contain_text("10:00-20:00")
    assert await console.evaluate("window.__notReloaded") is True
    assert console.dialogs == [] and console.errors == [], console.errors


async def test_a_hostile_customer_message_shows_as_text(server: str, browser: Launch) -> None:
    console = await open_console(browser, server)
    customer = await open_demo(browser, server)
    await open_chat(customer)
    await send(customer, "人工")
    await type_only(customer, XSS)
    item = console.locator("#waiting-list .conv-item")
    await expect(item.locator(".last")).to_have_text(XSS)
    await item.click()
    await expect(console.locator("#transcript .msg-in .bubble").last).to_have_text(XSS)
    await console.reload()  # and again from a fresh page (selected from the URL's #c<id>)
    await expect(console.locator("#transcript .msg-in .bubble").last).to_have_text(XSS)
    assert await console.evaluate("document.querySelectorAll('img[src=x], main script').length") == 0
    assert console.dialogs == [] and console.errors == []


async def test_two_staff_cannot_both_take_a_chat(server: str, browser: Launch, sqlite_services: Services) -> None:
    await sqlite_services.accounts.add("jun", PASSWORD, shops=["pawspa"], display_name="Jun", language="en")
    from tests.support.collecting import CollectingChannel

    await CollectingChannel(sqlite_services.engine, "pawspa", user="carol").push("人工")
    [waiting] = await sqlite_services.store.handoffs("pawspa")
    assert await sqlite_services.store.take(waiting.conversation_id, "jun") is None
    console = await open_console(browser, server)
    await console.locator("#waiting-list .conv-item").click()
    await expect(console.locator("#conv-error")).to_have_text("This chat is taken by jun. Only they can reply.")
    await console.locator("#composer-text").fill("me too")
    await console.locator("#composer-send").click()
    await expect(console.locator("#conv-error")).to_contain_text("taken by jun")
    assert await console.locator("#transcript .msg-staff").count() == 0


async def seed_day(services: Services) -> None:
    plan = [
        ("王女士", "13800000001", "dog_bath_small", "xiaomei", "11:00"),
        ("Li Lei", "13800000002", "dog_bath_medium", "ajie", "12:30"),
        ("陈先生", "13800000003", "grooming", "lin", "13:00"),  # needs a groomer's approval
        ("Anna", "13800000004", "nail_trim", "xiaomei", "15:00"),
        ("张阿姨", "13800000005", "cat_bath", "xiaomei", "16:30"),
        ("Tom", "13800000006", "dog_bath_large", "ajie", "17:00"),
    ]
    for name, phone, service, staff, hhmm in plan:
        customer = await services.customers.identify("pawspa", "phone", phone, display_name=name)
        result = await services.bookings.book(
            BookingRequest("pawspa", service, at(SAT, hhmm), staff_id=staff, customer_id=customer.id),
            Actor.customer(customer.id) if service == "grooming" else Actor.staff("mei"),
        )
        assert isinstance(result, Booked), result


async def test_day_view(server: str, browser: Launch, sqlite_services: Services, artifacts: Path) -> None:
    await seed_day(sqlite_services)
    console = await open_console(browser, server)
    await console.locator(".nav-link", has_text="Day").click()
    await expect(console).to_have_url(f"{server}/console/day?shop=pawspa&date=2026-11-21")
    await expect(console.locator(".cal-col .block")).to_have_count(6)
    await expect(console.locator("#pending-list li")).to_have_count(1)
    await expect(console.locator("#pending-list li")).to_contain_text("陈先生")
    await console.screenshot(path=str(artifacts / "console-day.png"), full_page=True)

    await console.locator("#pending-list li button", has_text="Approve").click()
    await expect(console.locator("#pending-list li")).to_have_count(0)

    # a phone booking into a taken slot offers the free times nearby as buttons
    await console.locator("#b-service").select_option("dog_bath_small")
    await console.locator("#b-time").fill("11:00")
    await console.locator("#b-staff").select_option("xiaomei")
    await console.locator("#b-name").fill("Walk-in Wu")
    await console.locator("#b-phone").fill("13900000000")
    await console.locator("#book-form button[type=submit]").click()
    await expect(console.locator("#book-result .alt").first).to_be_visible()
    await console.locator("#book-result .alt").first.click()
    await expect(console.locator("#book-result")).to_contain_text("Booked:")
    await expect(console.locator(".cal-col .block")).to_have_count(7)

    await console.locator(".block", has_text="Tom").click()
    await expect(console.locator("#booking-dialog")).to_be_visible()
    await console.locator("#bd-cancel").click()
    await console.locator("#bd-cancel").click()  # the second tap confirms
    await expect(console.locator("#bd-result")).to_have_text("Done.")
    await console.locator("#booking-dialog button[value=close]").click()
    await expect(console.locator(".cal-col .block")).to_have_count(6)

    await console.locator("#d-mode-week").click()
    await expect(console.locator("table.week")).to_be_visible()
    await console.evaluate("window.scrollTo(0, 0)")
    await console.screenshot(path=str(artifacts / "console-week.png"), full_page=True)

    await console.locator(".nav-link", has_text="FAQ").click()
    await expect(console.locator("#faq-pawspa .pill")).to_have_text("OK")
    await console.screenshot(path=str(artifacts / "console-faq.png"), full_page=True)
    assert console.dialogs == [] and console.errors == []


async def test_tablet_portrait(server: str, browser: Launch, sqlite_services: Services, artifacts: Path) -> None:
    from tests.support.collecting import CollectingChannel

    chat = CollectingChannel(sqlite_services.engine, "pawspa", user="dora", display_name="Dora")
    await chat.push("人工")
    context = await browser(viewport={"width": 820, "height": 1180}, has_touch=True, is_mobile=True)
    page = context.pages[0] if context.pages else await context.new_page()
    await page.goto(f"{server}/console/login?lang=en")
    await page.screenshot(path=str(artifacts / "console-login.png"))
    await page.locator("input[name=username]").fill("mei")
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("button[type=submit]").tap()
    await page.locator("#waiting-list .conv-item").tap()
    await expect(page.locator("#transcript .msg-in")).to_have_count(1)
    for selector in ("#btn-take", "#btn-release", "#composer-send", ".nav-link"):
        box = await page.locator(selector).first.bounding_box()
        assert box["height"] >= 44, selector  # touch targets
    assert await page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")
    await page.screenshot(path=str(artifacts / "console-tablet.png"))


async def test_log_out_everywhere_sends_every_open_console_to_the_login(server: str, browser: Launch) -> None:
    laptop = await open_console(browser, server)
    phone = await open_console(browser, server)
    await phone.locator(".logout .everywhere").click()
    await expect(phone).to_have_url(f"{server}/console/login")
    # the laptop did nothing: its live socket was closed (4401) and the page went to the login form
    await expect(laptop).to_have_url(f"{server}/console/login", timeout=10_000)
    me = await laptop.context.request.get(f"{server}/api/console/me")
    assert me.status == 401
