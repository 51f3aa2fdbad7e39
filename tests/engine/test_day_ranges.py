"""A named range instead of a day ("下周", "next week sometime?", "later this week", "月底"): the
customer is offered the days inside it, not today's, and is never booked on a day they did not say.
The clock is Saturday 21 Nov 2026; next week starts on Monday 23 Nov."""

from __future__ import annotations

import pytest

from bot.bootstrap import Services
from tests.engine.conftest import LANGS, ChatFactory, payloads, say, with_pet
from tests.support.collecting import CollectingChannel

pytestmark = pytest.mark.parametrize("lang", LANGS)

NEXT_MONDAY = "d:2026-11-23"


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee, the unit of work and the
    channels are tested on both databases elsewhere); this keeps CI's clock down."""
    return sqlite_services


def _day_buttons(chat: CollectingChannel) -> list[str]:
    return [p for p in payloads(chat) if p.startswith("d:")]


async def _answer_until_day(chat: CollectingChannel, lang: str) -> None:
    """Answer the vaccination question if it comes; stop at the day question."""
    for _ in range(3):
        if say(lang, "ask.day") in chat.text:
            return
        await chat.press(say(lang, "btn.affirm"))
    raise AssertionError(chat.text)


async def test_next_week_with_the_booking_offers_next_weeks_days(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "下周给豆豆洗个澡", "en": "can Max have a bath next week"}[lang])
    await _answer_until_day(chat, lang)
    days = _day_buttons(chat)
    assert days[0] == NEXT_MONDAY, days
    assert "d:2026-11-21" not in days and "d:2026-11-22" not in days


async def test_next_week_sometime_alone_asks_what_for_and_keeps_the_week(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "下个星期什么时候有空？", "en": "next week sometime?"}[lang])
    assert say(lang, "ask.service") in chat.text
    await chat.press({"zh": "狗狗洗澡", "en": "Dog bath"}[lang])
    await _answer_until_day(chat, lang)
    assert _day_buttons(chat)[0] == NEXT_MONDAY


async def test_a_weekday_said_with_next_week_is_that_weeks(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "下个星期，周六上午10点给豆豆洗澡", "en": "bath for Max next week, saturday at 10am"}[lang])
    if say(lang, "ask.vaccinated", pet={"zh": "豆豆", "en": "Max"}[lang]) in chat.text:
        await chat.press(say(lang, "btn.affirm"))
    assert {"zh": "11月28日", "en": "28 Nov"}[lang] in chat.text, chat.text  # not today, a Saturday too


async def test_the_weekend_asks_saturday_or_sunday(services: Services, make_chat: ChatFactory, lang: str) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "下周末给豆豆洗澡", "en": "bath for Max next weekend"}[lang])
    await _answer_until_day(chat, lang)
    assert _day_buttons(chat) == ["d:2026-11-28", "d:2026-11-29"]  # not a guess: the customer picks
    assert say(lang, "btn.more_days") in chat.labels
