"""A word two services share ("修剪", "a trim": a haircut or the nails?) books neither: the
customer is asked between exactly those two, with the day and time already said kept, and a word
that names one of them alone ("修剪一下指甲", "trim his nails") decides without a question.
Clock: Saturday 21 Nov 2026 09:00, Shanghai."""

from __future__ import annotations

import pytest

from bot.bootstrap import Services
from bot.engine.intents import ServiceMention, service_in
from core.config import load_config
from tests.engine.conftest import FRI, ChatFactory, day_text, say, when, with_pet
from tests.engine.test_receptionist import at, summary_time

ZH, EN = "zh", "en"


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough."""
    return sqlite_services


def test_a_shared_word_names_both_services_and_another_word_decides() -> None:
    shop = load_config("config.yaml").shops["pawspa"]
    assert service_in("周五给豆豆修剪一下", shop) == ServiceMention(among=("grooming", "nail_trim"))
    assert service_in("a trim for Rex", shop) == ServiceMention(among=("grooming", "nail_trim"))
    assert service_in("修剪一下豆豆的指甲", shop) == ServiceMention(service_id="nail_trim")
    assert service_in("trim his nails", shop) == ServiceMention(service_id="nail_trim")
    assert service_in("a haircut trim", shop) == ServiceMention(service_id="grooming")
    assert service_in("a dog bath and a trim", shop) == ServiceMention(category="dog_bath")


async def test_a_trim_asks_haircut_or_nails_and_keeps_the_time(services: Services, make_chat: ChatFactory) -> None:
    await with_pet(services, EN, pet="Rex")
    chat = make_chat(EN)
    await chat.push("can I book a trim for Rex on friday at 3?")
    assert set(chat.labels) == {"Full grooming", "Nail trim"}  # nothing guessed, only those two
    assert day_text(EN, FRI) in chat.text
    await chat.push("just his nails")
    assert summary_time(chat, EN) and "Nail trim" in chat.text
    assert when(EN, at(FRI, "15:00")) in chat.text


async def test_xiujian_asks_and_the_button_books_the_grooming(services: Services, make_chat: ChatFactory) -> None:
    await with_pet(services, ZH, pet="豆豆")
    chat = make_chat(ZH)
    await chat.push("周五下午三点给豆豆修剪一下")
    assert set(chat.labels) == {"精致美容造型", "修剪指甲"}
    await chat.press("精致美容造型")
    assert say(ZH, "ask.vaccinated", pet="豆豆") in chat.text  # the grooming's own next question
    await chat.push("打过了")
    assert "精致美容造型" in chat.text and when(ZH, at(FRI, "15:00")) in chat.text
