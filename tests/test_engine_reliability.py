"""Engine guarantees under redelivery, concurrency, several processes and hostile input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, func, select

from bot.bootstrap import Services, bootstrap
from bot.engine import policy
from bot.engine.turn import Turn
from core.clock import FixedClock
from core.config import AppConfig
from core.i18n import texts
from core.messages import IncomingMessage
from core.models import Base, Booking, TranscriptEntry
from tests.support.collecting import CollectingChannel

ERROR_TEXTS = {texts("zh").t("misc.error"), texts("en").t("misc.error")}


def message(text: str, message_id: str, user: str = "u1", shop: str = "clearsight") -> IncomingMessage:
    return IncomingMessage(shop_id=shop, channel="test", user_id=user, message_id=message_id, text=text)


async def count(services: Services, model: type[Base], *where: ColumnElement[bool]) -> int:
    async with services.db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_redelivery_while_the_first_attempt_runs_acts_once(services: Services) -> None:
    booking = message("book an eye exam tomorrow at 3pm", "tg-1001")
    first, second = await asyncio.gather(services.engine.handle(booking), services.engine.handle(booking))
    assert first == second and first  # the same reply, twice
    assert "15:00" in first[0].text
    assert await count(services, Booking) == 1  # one hold, not two
    third = await services.engine.handle(booking)  # a late redelivery
    assert third == first
    assert await count(services, Booking) == 1
    assert await count(services, TranscriptEntry, TranscriptEntry.direction == "in") == 1


@pytest.fixture
async def second_process(services: Services, demo_config: AppConfig, clock: FixedClock) -> AsyncIterator[Services]:
    """Another server process on the same database (its own engine, pool and locks)."""
    url = services.db.url.render_as_string(hide_password=False)
    other = await bootstrap(demo_config, clock=clock, database_url=url, migrate=False)
    yield other
    await other.close()


async def test_one_conversation_is_handled_in_order_across_processes(
    services: Services, second_process: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each turn is written in one transaction, so the transcript alone cannot show two turns
    # running at once; count the turns in progress (the two engines share no in-process lock,
    # only the conversation lease in the database keeps them apart, on SQLite as on PostgreSQL).
    running, most = 0, 0
    real_respond = policy.respond

    async def counted(turn: Turn, text: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.005)  # a window for another turn of this chat to start, were it allowed
            await real_respond(turn, text)
        finally:
            running -= 1

    monkeypatch.setattr(policy, "respond", counted)
    engines = [services.engine, second_process.engine]
    texts_in = ["what are your opening hours?"] * 12  # each one is answered from the FAQ
    await asyncio.gather(
        *(engines[i % 2].handle(message(text, f"m{i}", user="same-customer")) for i, text in enumerate(texts_in))
    )
    assert most == 1
    async with services.db.reading() as s:
        directions = list(await s.scalars(select(TranscriptEntry.direction).order_by(TranscriptEntry.id)))
    # Handled one at a time: every message is followed by its own replies before the next one starts.
    collapsed = [d for i, d in enumerate(directions) if i == 0 or d != directions[i - 1]]
    assert collapsed == ["in", "out"] * len(texts_in)


async def test_different_conversations_run_concurrently(services: Services) -> None:
    chats = [CollectingChannel(services.engine, "pawspa", user=f"c{i}") for i in range(20)]
    replies = await asyncio.gather(*(chat.push("营业时间是几点？") for chat in chats))
    assert all(r and "10:00" in r[0].text for r in replies)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
@example("²")  # a digit to str.isdigit() but not to int(): once crashed the numbered-button path
async def test_the_engine_never_crashes_on_any_text(sqlite_services: Services, text: str) -> None:
    for i, state_setup in enumerate(("", "1", "1")):  # idle, then inside the booking flow
        if state_setup:
            await sqlite_services.engine.handle(message(state_setup, f"setup-{i}-{hash(text)}", shop="pawspa"))
        replies = await sqlite_services.engine.handle(message(text, f"fuzz-{i}-{hash(text)}", shop="pawspa"))
        assert not any(r.text in ERROR_TEXTS for r in replies), (text, replies)
