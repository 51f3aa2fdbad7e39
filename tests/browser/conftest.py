"""Browser fixtures: Debian's chromium driven by Playwright, and a widget server on SQLite.

``browser`` is a launcher: ``await browser(**context_options)`` opens a chromium context with a
fresh user data directory (closed after the test). It skips when /usr/bin/chromium is missing.
Never ``playwright install``: .ci/run installs Debian's chromium.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.bootstrap import Services
from channels.base import ChannelContext
from channels.web import register
from tests.channels.test_widget_ws import transcript_history

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHROMIUM_MISSING = not CHROMIUM.exists()
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

Launch = Callable[..., Awaitable[Any]]


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Launch]:
    if CHROMIUM_MISSING:
        pytest.skip("Debian chromium is not installed (/usr/bin/chromium); apt-get install chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        contexts: list[Any] = []

        async def launch(**options: Any) -> Any:
            profile = tmp_path / f"chromium-profile-{len(contexts)}"
            context = await pw.chromium.launch_persistent_context(
                str(profile), executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=False, **options
            )
            context.set_default_timeout(15_000)  # a bound on every wait, not a timing assertion
            contexts.append(context)
            return context

        try:
            yield launch
        finally:
            for context in contexts:
                await context.close()


@pytest.fixture
async def widget_server(sqlite_services: Services) -> AsyncIterator[str]:
    """The widget on a real local HTTP server; yields its base URL."""
    app = web.Application(client_max_size=1024 * 1024)
    ctx = ChannelContext(
        config=sqlite_services.config,
        engine=sqlite_services.engine,
        clock=sqlite_services.clock,
        history=transcript_history(sqlite_services),
    )
    register(app, ctx)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
