"""The FAQ page in a real browser: a question a customer answered by tapping a "did you mean"
button is listed with that entry chosen; one click on "Add this phrasing" writes it into the
shop's FAQ file (a copy in tmp) and the bot answers the question at once. Skips without chromium."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import expect

from bot.bootstrap import Services, bootstrap
from bot.web import build_app
from core.clock import FixedClock
from core.config import AppConfig
from tests.browser.conftest import Launch
from tests.support.collecting import CollectingChannel

pytestmark = [pytest.mark.asyncio, pytest.mark.browser]
PASSWORD = "faq admin 2026"
QUESTION = "剪完毛能拍照吗"


@pytest.fixture
async def learning_server(
    tmp_path: Path, demo_config: AppConfig, clock: FixedClock, sqlite_url: str
) -> AsyncIterator[tuple[str, Services, Path]]:
    faq_dir = tmp_path / "faq"
    shutil.copytree(demo_config.faq_dir, faq_dir)  # the test edits a copy, never faq/ itself
    services = await bootstrap(demo_config.model_copy(update={"faq_dir": str(faq_dir)}), clock=clock,
                               database_url=sqlite_url)
    await services.accounts.add("lin", PASSWORD, shops=["pawspa"], role="admin", display_name="Lin", language="en")
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), services, faq_dir
    finally:
        await server.close()
        await services.close()


async def test_one_click_adds_a_tapped_phrasing_to_its_entry(
    learning_server: tuple[str, Services, Path], browser: Launch
) -> None:
    base, services, faq_dir = learning_server
    chat = CollectingChannel(services.engine, "pawspa", user="browser-learner")
    await chat.push(QUESTION)
    tapped = next(b for r in chat.replies for b in r.buttons if b.payload.startswith("faq:"))
    await chat.push(tapped.label, payload=tapped.payload)
    entry = tapped.payload[4:]

    context = await browser(viewport={"width": 1280, "height": 900})
    page = context.pages[0] if context.pages else await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{base}/console/login?next=/console/faq")
    await page.locator("input[name=username]").fill("lin")
    await page.locator("input[name=password]").fill(PASSWORD)
    await page.locator("button[type=submit]").click()
    await expect(page).to_have_url(f"{base}/console/faq")

    box = page.locator("#faq-pawspa .faq-learn")
    await expect(box).to_have_attribute("data-ready", "1")
    row = box.locator("table[data-source=tapped] tr.faq-learn-row", has_text=QUESTION)
    await expect(row.locator("select")).to_have_value(entry)
    await row.locator("button.faq-learn-add").click()
    await expect(row.locator(".faq-learn-result")).to_have_text(f"Added to {entry}; live now.")

    assert QUESTION in (faq_dir / "pawspa.yaml").read_text(encoding="utf-8")
    again = CollectingChannel(services.engine, "pawspa", user="browser-next")
    await again.push(QUESTION)
    assert not again.labels  # answered, no buttons
    assert errors == []
