"""What a good front desk does with the way people really write (issue 9, round 7 classes): a
complaint goes to staff with an apology; "the first one is fine", "anything earlier?", "11 or 2,
the earlier one", "not too early", "what's the soonest" pick or narrow the times; a language switch
keeps the rest of the message; traditional characters and lower-case pet names are understood; a
pet's name put on file a moment ago can be corrected; a move "to 4pm same day" or "the following
Sunday, same time" is read against the booking. Clock: Saturday 21 Nov 2026 09:00, Shanghai."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest

from bot.bootstrap import Services
from tests.engine.conftest import LANGS, SUN, ChatFactory, book, say, when, with_pet
from tests.helpers import SHANGHAI
from tests.support.collecting import CollectingChannel


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee, the unit of work and the
    channels are tested on both databases elsewhere); this keeps CI's clock down."""
    return sqlite_services


def at(day: date, hhmm: str) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def offered_times(chat: CollectingChannel) -> list[str]:
    return [m.group(1) for label in chat.labels if (m := re.search(r"(\d{2}:\d{2})$", label))]


def summary_time(chat: CollectingChannel, lang: str) -> bool:
    """Whether the reply is the booking summary (its confirm button is offered)."""
    return say(lang, "btn.confirm") in chat.labels


@pytest.mark.parametrize(
    ("lang", "typed"),
    [("en", "I'm really not happy with how my dog's haircut turned out"), ("zh", "配的眼镜戴着头晕，很失望，能退款吗")],
)
async def test_a_complaint_goes_to_staff_with_an_apology(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    chat = make_chat(lang, shop="pawspa" if lang == "en" else "clearsight")
    await chat.push(typed)
    assert say(lang, "handoff.sorry") in chat.text
    assert say(lang, "ask.pet_name") not in chat.text  # no booking started from "haircut"
    await chat.push({"en": "hello?", "zh": "在吗"}[lang])
    assert chat.replies == []  # staff have the chat: the bot stays quiet


@pytest.mark.parametrize("lang", LANGS)
async def test_the_first_one_and_anything_earlier(services: Services, make_chat: ChatFactory, lang: str) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"en": "bath for Max tomorrow at 3pm", "zh": "明天下午3点给豆豆洗澡"}[lang])
    if say(lang, "btn.affirm") in chat.labels:
        await chat.press(say(lang, "btn.affirm"))  # vaccinated
    assert summary_time(chat, lang) and when(lang, at(SUN, "15:00")) in chat.text
    await chat.push({"en": "anything earlier?", "zh": "有没有早一点的"}[lang])
    earlier = offered_times(chat)
    assert earlier and all(t < "15:00" for t in earlier), earlier
    await chat.push({"en": "the first one is fine", "zh": "那就第一个吧"}[lang])
    assert summary_time(chat, lang) and when(lang, at(SUN, earlier[0])) in chat.text


@pytest.mark.parametrize(
    ("lang", "typed", "hhmm"), [("en", "11 or 2, the later one", "14:00"), ("zh", "11点或者2点，早的那个", "11:00")]
)
async def test_two_times_offered_by_the_customer(
    services: Services, make_chat: ChatFactory, lang: str, typed: str, hhmm: str
) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"en": "bath for Max tomorrow", "zh": "明天给豆豆洗澡"}[lang])
    if say(lang, "btn.affirm") in chat.labels:
        await chat.press(say(lang, "btn.affirm"))
    await chat.push(typed)
    assert summary_time(chat, lang) and when(lang, at(SUN, hhmm)) in chat.text


@pytest.mark.parametrize("lang", LANGS)
async def test_not_too_early_and_the_soonest(services: Services, make_chat: ChatFactory, lang: str) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"en": "bath for Max", "zh": "给豆豆洗澡"}[lang])
    if say(lang, "btn.affirm") in chat.labels:
        await chat.press(say(lang, "btn.affirm"))
    await chat.push({"en": "not too early please, I'm not a morning person", "zh": "上午不行，别太早"}[lang])
    assert say(lang, "info.noted_after", time="12:00") in chat.text
    await chat.push({"en": "what's the soonest you can do", "zh": "最早什么时候可以"}[lang])
    assert summary_time(chat, lang)  # the first free time, and from noon on
    assert min(re.findall(r"\b(\d{2}):\d{2}\b", chat.text)) >= "12", chat.text


async def test_a_language_switch_keeps_the_rest_of_the_message(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("zh", shop="clearsight")
    await chat.push("明天有空吗 想验光")
    await chat.push("3pm works, english pls")
    assert say("en", "misc.lang_switched") in chat.text
    assert summary_time(chat, "en") and when("en", at(SUN, "15:00")) in chat.text


async def test_traditional_characters_read_as_simplified(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("zh")
    await chat.push("想幫我家狗狗預約洗澡")
    assert chat.text == say("zh", "ask.pet_name")


async def test_a_lower_case_name_and_its_correction(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("en")
    await chat.push("bath for my shih tzu momo")
    assert say("en", "info.new_pet", pet="Momo") in chat.text
    await chat.push("oops her name is Mumu not Momo")
    customer = await services.customers.identify("pawspa", "test", "u1", display_name="Alice", language="en")
    assert [p.name for p in customer.pets] == ["Mumu"]  # the pet put on file a moment ago is renamed


@pytest.mark.parametrize(
    ("typed", "new"),
    [
        ("need to push my appt to 4pm same day", "16:00"),
        ("can we move it to the following sunday, same time", "29 Nov"),
    ],
)
async def test_a_move_read_against_the_booking(
    services: Services, make_chat: ChatFactory, typed: str, new: str
) -> None:
    customer, pet = await with_pet(services, "en")
    bath = await book(services, "dog_bath_small", at(SUN, "15:00"), customer=customer, pet=pet)
    chat = make_chat("en")
    await chat.push(typed)
    assert bath.code in chat.text and new in chat.text.split(" to ", 1)[-1], chat.text
    assert say("en", "btn.confirm_change") in chat.labels  # nothing moves before the yes


async def test_a_service_turned_down_in_chinese(services: Services, make_chat: ChatFactory) -> None:
    await with_pet(services, "zh")
    chat = make_chat("zh")
    await chat.push("明天下午3点给豆豆做个美容")
    if say("zh", "btn.affirm") in chat.labels:
        await chat.press(say("zh", "btn.affirm"))
    assert summary_time(chat, "zh") and "精致美容造型" in chat.text
    await chat.push("哦，洗澡，不是美容")
    assert summary_time(chat, "zh") and "小型犬洗澡" in chat.text and "精致美容造型" not in chat.text
    assert when("zh", at(SUN, "15:00")) in chat.text  # the day and time stay
