"""The widget in a real browser (Debian chromium via Playwright) on the demo page: a booking by
tapping buttons, a reload mid-flow, an XSS payload, the mobile layout and the keyboard."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from bot.bootstrap import Services
from channels.web import external_id_of
from core.clock import FixedClock
from core.config import load_config
from core.i18n import texts
from tests.browser.conftest import Launch
from tests.conftest import CONFIG_PATH, NOW

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
EN = texts("en")
TOKEN_KEY = "chatbook:pawspa:token"
PAWSPA = load_config(CONFIG_PATH, environ={}).shops["pawspa"]


def opening(day: date) -> str:
    """pawspa's first opening time on ``day`` as config says it ("10:00")."""
    first = min(PAWSPA.hours_on(day))
    return f"{first.start_min // 60:02d}:{first.start_min % 60:02d}"


SATURDAY = NOW.astimezone(PAWSPA.tz).date()
# The header at the tests' clock (09:00 on a Saturday, before pawspa opens): the shop's own words.
STATUS_AT_NOW = EN.t("widget.closed_today", time=opening(SATURDAY))


async def open_demo(browser: Launch, base: str, **options: Any) -> Any:
    context = await browser(**options)
    page = context.pages[0] if context.pages else await context.new_page()
    dialogs: list[str] = []

    def on_dialog(d: Any) -> Any:
        dialogs.append(d.message)
        return d.dismiss()  # a coroutine: playwright runs it as a task

    page.on("dialog", on_dialog)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def on_response(r: Any) -> None:
        if r.status >= 400 and not r.url.endswith("/favicon.ico"):  # chromium asks for one
            errors.append(f"{r.status} {r.url}")

    page.on("response", on_response)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "status of 404" not in m.text else None)
    page.dialogs, page.errors = dialogs, errors
    await page.goto(f"{base}/widget/pawspa?lang=en")
    await expect(page.locator(".cb-launcher")).to_be_visible()
    return page


async def open_chat(page: Any) -> None:
    await page.locator(".cb-launcher").click()
    await expect(page.locator(".cb-panel")).to_be_visible()
    await expect(page.locator(".cb-status")).to_have_text(STATUS_AT_NOW)


def last_shop_message(page: Any) -> Any:
    return page.locator(".cb-msg--shop").last


async def tap(page: Any, label: str) -> None:
    before = await page.locator(".cb-msg--shop").count()
    await page.locator(".cb-chip", has_text=label).first.click()
    await expect(page.locator(".cb-msg--shop")).not_to_have_count(before)


async def send(page: Any, text: str) -> None:
    before = await page.locator(".cb-msg--shop").count()
    await page.locator(".cb-input").fill(text)
    await page.locator(".cb-input").press("Enter")
    await expect(page.locator(".cb-msg--shop")).not_to_have_count(before)


async def upcoming(services: Services, page: Any) -> list[Any]:
    token = await page.evaluate(f"localStorage.getItem({TOKEN_KEY!r})")
    customer = await services.customers.identify("pawspa", "web", external_id_of(token))
    return await services.bookings.upcoming("pawspa", customer.id)


async def test_full_booking_by_tapping_buttons(browser: Launch, widget_server: str, sqlite_services: Services) -> None:
    page = await open_demo(browser, widget_server)
    await open_chat(page)
    await expect(last_shop_message(page)).to_contain_text("Welcome to PawSpa Pet Salon")
    await tap(page, EN.t("btn.book"))
    await expect(last_shop_message(page)).to_contain_text(EN.t("ask.service"))
    await tap(page, "Dog bath")
    await expect(last_shop_message(page)).to_contain_text(EN.t("ask.pet_name"))
    await send(page, "Max")
    await tap(page, EN.t("btn.size_small"))
    await tap(page, EN.t("btn.affirm"))
    await expect(last_shop_message(page)).to_contain_text(EN.t("ask.day"))
    await tap(page, "Tomorrow")
    await tap(page, EN.t("btn.afternoon"))
    await tap(page, "15:00")
    await expect(last_shop_message(page)).to_contain_text(EN.t("summary.title"))
    await tap(page, EN.t("btn.confirm"))
    await expect(page.locator(".cb-chip")).to_have_text([EN.t("btn.my_bookings"), EN.t("notices.offer")])
    await expect(page.locator(".cb-typing")).to_be_hidden()
    await expect(page.locator(".cb-pending")).to_have_count(0)
    [booking] = await upcoming(sqlite_services, page)
    await expect(last_shop_message(page)).to_contain_text(booking.code)
    assert booking.service_id == "dog_bath_small"
    mine = await page.locator(".cb-msg--me .cb-text").all_text_contents()
    assert mine[:5] == [EN.t("btn.book"), "Dog bath", "Max", EN.t("btn.size_small"), EN.t("btn.affirm")]
    assert len(mine) == 9 and mine[-1] == EN.t("btn.confirm")
    assert await page.locator(".cb-time").count() == await page.locator(".cb-msg").count()
    assert page.dialogs == [] and page.errors == []


async def test_the_header_says_closed_until_the_shop_opens_then_online(
    browser: Launch, widget_server: str, clock: FixedClock
) -> None:
    page = await open_demo(browser, widget_server)
    await open_chat(page)  # 09:00: closed, and it says when it opens and that a message will be answered
    assert await page.locator(".cb-closed").count() == 1
    first = min(PAWSPA.hours_on(SATURDAY))
    opened = datetime.combine(SATURDAY, first.start, tzinfo=PAWSPA.tz) + timedelta(minutes=1)
    clock.set(opened)  # the widget server's clock (tests/conftest.py)
    await page.reload()
    await page.locator(".cb-launcher").click()
    await expect(page.locator(".cb-status")).to_have_text(EN.t("widget.status_open"))
    assert await page.locator(".cb-closed").count() == 0
    assert page.errors == []


async def test_reload_mid_flow_resumes(browser: Launch, widget_server: str, sqlite_services: Services) -> None:
    page = await open_demo(browser, widget_server)
    await open_chat(page)
    await tap(page, EN.t("btn.book"))
    await tap(page, "Dog bath")
    await send(page, "Max")
    await expect(last_shop_message(page)).to_contain_text(EN.t("ask.size", pet="Max"))
    shown = await page.locator(".cb-msg .cb-text").all_text_contents()

    await page.reload()
    await open_chat(page)
    await expect(page.locator(".cb-msg .cb-text")).to_have_text(shown[1:])  # all but the greeting
    await expect(page.locator(".cb-chip")).to_have_text(
        [EN.t("btn.size_small"), EN.t("btn.size_medium"), EN.t("btn.size_large")]
    )
    await tap(page, EN.t("btn.size_small"))
    await expect(last_shop_message(page)).to_contain_text(EN.t("ask.vaccinated", pet="Max"))
    assert page.errors == []


async def test_an_xss_payload_shows_as_text(browser: Launch, widget_server: str) -> None:
    page = await open_demo(browser, widget_server)
    await open_chat(page)
    payload = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    await send(page, payload)
    await expect(page.locator(".cb-msg--me .cb-text").last).to_have_text(payload)
    assert await page.locator(".cb img").count() == 0
    assert await page.evaluate("document.querySelectorAll('img[src=x], script:not([src])').length") == 0
    await page.reload()  # and again when it comes back from the server's history
    await open_chat(page)
    await expect(page.locator(".cb-msg--me .cb-text").first).to_have_text(payload)
    assert await page.locator(".cb img").count() == 0
    assert page.dialogs == []


async def test_mobile_layout(browser: Launch, widget_server: str, artifacts: Path) -> None:
    page = await open_demo(
        browser,
        widget_server,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    bubble = await page.locator(".cb-launcher").bounding_box()
    assert bubble["width"] <= 64 and bubble["height"] <= 64  # a bubble, not a bar over the page
    assert bubble["x"] > 390 - 100 and bubble["y"] > 844 - 100
    # the page underneath still scrolls
    assert await page.evaluate("document.scrollingElement.scrollHeight > innerHeight")
    await page.mouse.wheel(0, 400)
    await page.wait_for_function("() => window.scrollY > 0")
    await page.screenshot(path=str(artifacts / "widget-mobile-closed.png"))

    await page.locator(".cb-launcher").tap()
    await expect(page.locator(".cb-status")).to_have_text(STATUS_AT_NOW)
    await tap(page, EN.t("btn.book"))
    await tap(page, "Dog bath")
    await send(page, "Max")
    await expect(page.locator(".cb-chip")).to_have_count(3)
    sheet = await page.locator(".cb-panel").bounding_box()
    assert sheet["width"] == 390 and sheet["x"] == 0  # a full-width sheet
    assert abs(sheet["y"] + sheet["height"] - 844) < 1
    await page.screenshot(path=str(artifacts / "widget-mobile.png"))
    await page.locator(".cb-close").tap()
    await expect(page.locator(".cb-panel")).to_be_hidden()
    await expect(page.locator(".cb-launcher")).to_be_visible()
    assert page.errors == []


async def test_desktop_screenshot(browser: Launch, widget_server: str, artifacts: Path) -> None:
    page = await open_demo(browser, widget_server, viewport={"width": 1280, "height": 800})
    await open_chat(page)
    await tap(page, EN.t("btn.book"))
    await page.screenshot(path=str(artifacts / "widget-desktop.png"))
    panel = await page.locator(".cb-panel").bounding_box()
    assert panel["width"] < 500 and panel["x"] > 600  # bottom-right, the page stays usable


async def focused_class(page: Any) -> str:
    name = await page.evaluate(
        "() => { const a = document.activeElement; const r = a && a.shadowRoot;"
        " return r && r.activeElement ? r.activeElement.className : (a ? a.tagName : ''); }"
    )
    return str(name)


async def test_keyboard_only(browser: Launch, widget_server: str) -> None:
    page = await open_demo(browser, widget_server)
    for _ in range(10):
        await page.keyboard.press("Tab")
        if await focused_class(page) == "cb-launcher":
            break
    assert await focused_class(page) == "cb-launcher"
    await page.keyboard.press("Enter")
    await expect(page.locator(".cb-panel")).to_be_visible()
    assert await focused_class(page) == "cb-input"
    await expect(page.locator(".cb-status")).to_have_text(STATUS_AT_NOW)
    before = await page.locator(".cb-msg--shop").count()
    await page.keyboard.type("hello")
    await page.keyboard.press("Enter")
    await expect(page.locator(".cb-msg--me .cb-text").last).to_have_text("hello")
    await expect(page.locator(".cb-msg--shop")).not_to_have_count(before)
    # quick replies are reachable with Tab from the log, and Escape closes and returns focus
    await page.locator(".cb-chip").first.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".cb-chip").first).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator(".cb-panel")).to_be_hidden()
    assert await focused_class(page) == "cb-launcher"
    assert await page.locator(".cb-launcher").get_attribute("aria-expanded") == "false"
