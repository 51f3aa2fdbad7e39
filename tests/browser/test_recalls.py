"""The optician's "Check-ups due" list in a real browser: the optometrist opens Customers and sees
everyone whose next eye exam is due (overdue first, a short-sighted child's sooner), sends a
reminder to a parent's chat with one tap (the row then says when), and is told plainly when a
customer has no chat to send it to. A groomer's Customers page has no such list. Screenshots
(desktop and tablet): tests/browser/artifacts/.
"""

from __future__ import annotations

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from bot.bootstrap import Services
from core.models import OutboxMessage
from tests.browser.conftest import Launch
from tests.browser.test_records import ARTIFACTS, EN, login, server  # noqa: F401  # the fixture, shared
from tests.test_eye_recalls import seed_recalls

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]


async def test_check_ups_due_and_the_reminder(
    server: str,  # noqa: F811  # before ``browser``: the server stops after the browser closed
    browser: Launch,
    sqlite_services: Services,
) -> None:
    ids = await seed_recalls(sqlite_services)
    page = await login(browser, server, "wang", "/console/customers?shop=clearsight")
    card = page.locator("#recalls-card")
    await expect(card).to_be_visible()
    await expect(page.locator("#c-list li")).to_have_count(4)
    await expect(page.locator("#c-list")).not_to_contain_text(EN["records.pets_count"].format(n=0))  # no pets here
    rows = card.locator("#recalls-list li")
    await expect(rows).to_have_count(4)
    await expect(page.locator("#recalls-count")).to_have_text("4")
    await expect(rows.nth(0)).to_contain_text("Sun")
    await expect(rows.nth(0).locator(".pill")).to_have_text(EN["records.recall_overdue"].format(date="2026-09-01"))
    await expect(rows.nth(0)).to_contain_text(EN["records.recall_rule_adult"])
    child = card.locator(f"li[data-record='{ids['xiaoming']}']")
    await expect(child).to_contain_text("Wu Lei")
    await expect(child).to_contain_text(EN["records.recall_for"].format(name="小明"))
    await expect(child.locator(".pill")).to_have_text(EN["records.recall_due"].format(date="2026-11-25"))
    lily = card.locator(f"li[data-record='{ids['lily']}']")
    await expect(lily).to_contain_text(EN["records.recall_rule_child_progressing"])
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "recalls-list.png"), full_page=True)

    await child.locator("button").click()
    await expect(page.locator("#recalls-result")).to_have_text(EN["records.recall_sent"].format(name="小明"))
    child = card.locator(f"li[data-record='{ids['xiaoming']}']")
    await expect(child.locator(".reminded")).to_have_text(EN["records.recall_reminded"].format(date="2026-11-21"))
    await expect(child.locator("button")).to_have_count(0)  # once per exam
    async with sqlite_services.db.reading() as s:
        sent = [m for m in await s.scalars(select(OutboxMessage)) if m.body.get("eye_recall")]
    assert [(m.external_id, m.body["eye_recall"]) for m in sent] == [("wu", ids["xiaoming"])]

    await card.locator(f"li[data-record='{ids['sun']}'] button").click()  # a walk-in with no chat
    await expect(page.locator("#recalls-result")).to_contain_text("call them instead")
    await expect(page.locator("#recalls-result")).to_have_class("form-result alert alert-error")
    await page.set_viewport_size({"width": 820, "height": 1180})  # a tablet held upright
    await page.screenshot(path=str(ARTIFACTS / "recalls-list-tablet.png"), full_page=True)
    assert page.errors == []

    groomer = await login(browser, server, "mei", "/console/customers?shop=pawspa")
    await expect(groomer.locator("#c-list")).to_be_attached()
    await groomer.wait_for_load_state("networkidle")
    await expect(groomer.locator("#recalls-card")).to_be_hidden()
