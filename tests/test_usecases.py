"""The application layer (bot/usecases/): the console and the CLI call the same use cases, so
they behave alike: a staff reply never talks over the colleague who has the chat, whichever
door it comes through; time off the wrong way round is refused with the field named."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.bootstrap import Services
from bot.cli import main
from bot.engine.store import ConversationState
from bot.usecases import Refused, handoff
from bot.usecases.time_off import record_time_off
from core.messages import OutgoingMessage
from core.models import OutboxMessage, TimeOff, TranscriptEntry
from core.results import Actor
from tests.conftest import CONFIG_PATH, NOW
from tests.support.collecting import CollectingChannel


async def _escalated(services: Services) -> ConversationState:
    chat = CollectingChannel(services.engine, "pawspa", user="cust", channel="web")
    await chat.push("人工")
    [item] = await handoff.waiting(services, "pawspa")
    conv = await handoff.find(services, item.conversation_id)
    assert conv is not None
    return conv


async def _staff_lines(services: Services, text: str) -> tuple[int, int]:
    """(outbox rows, transcript lines) carrying ``text``."""
    async with services.db.reading() as s:
        bodies = list(await s.scalars(select(OutboxMessage.body)))
        lines = await s.scalar(select(func.count()).where(TranscriptEntry.text == text))
    return sum(body.get("text") == text for body in bodies), int(lines or 0)


async def test_a_reply_is_refused_when_a_colleague_has_the_chat(services: Services) -> None:
    conv = await _escalated(services)
    assert await handoff.take(services, conv, handoff.Staff("lily", "Lily")) is None
    refused = await handoff.reply(services, conv, handoff.Staff("ming"), OutgoingMessage("我来回答"))
    assert refused == handoff.Taken("lily")
    assert await _staff_lines(services, "我来回答") == (0, 0)  # nothing reached the customer
    sent = await handoff.reply(services, conv, handoff.Staff("lily"), OutgoingMessage("您好"))
    assert isinstance(sent, int) and await _staff_lines(services, "您好") == (1, 1)


async def test_the_cli_reply_keeps_the_console_guard(
    sqlite_services: Services, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    services = sqlite_services
    conv = await _escalated(services)
    assert await handoff.take(services, conv, handoff.Staff("lily", "Lily")) is None  # in the console
    monkeypatch.setenv("CHATBOOK_DATABASE_URL", services.db.url.render_as_string(hide_password=False))
    args = ["handoff", "reply", "--config", str(CONFIG_PATH), "--staff", "ming", str(conv.id), "我来回答"]
    assert await asyncio.to_thread(main, args) == 1
    assert f"#{conv.id} is taken by lily" in capsys.readouterr().err
    assert await _staff_lines(services, "我来回答") == (0, 0)
    mine = ["handoff", "reply", "--config", str(CONFIG_PATH), "--staff", "lily", str(conv.id), "马上为您查"]
    assert await asyncio.to_thread(main, mine) == 0  # the one who has the chat may go on from the CLI
    assert await _staff_lines(services, "马上为您查") == (1, 1)


async def test_time_off_that_ends_before_it_starts_is_refused_and_not_recorded(services: Services) -> None:
    with pytest.raises(Refused) as refused:
        await record_time_off(services, "pawspa", "xiaomei", NOW + timedelta(hours=2), NOW, Actor.staff("desk"))
    assert refused.value.field == "end" and refused.value.code == "bad_range"
    async with services.db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(TimeOff)) == 0


async def test_the_bot_hands_a_chat_to_the_front_desk_unless_told_whom(services: Services) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user="asker", channel="web")
    await chat.push("营业时间是几点？")
    [item] = [i for i in await services.store.recent("pawspa") if i.external_id == "asker"]
    await handoff.hand_to_staff(services.store, item.conversation_id, route=None, reason="faq:vaccines")
    [waiting] = await handoff.waiting(services, "pawspa")
    assert waiting.conversation_id == item.conversation_id
    assert (waiting.route, waiting.reason) == ("front_desk", "faq:vaccines")
    assert await chat.push("还在吗？") == []  # staff have it now: the bot is silent
