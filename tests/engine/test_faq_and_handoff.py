"""FAQ answers (also mid-flow), "did you mean" suggestions, questions the FAQ cannot answer,
handing the chat to a person (asked for, or after two misunderstood messages) and the
silence that follows, languages, and the greeting of a returning customer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.bootstrap import Services
from core import faq_log
from core.models import ConversationMode
from core.shop_facts import render_facts
from tests.engine.conftest import (
    LANGS,
    SAT,
    SUN,
    ChatFactory,
    book,
    customer_of,
    day_text,
    say,
    when,
    with_pet,
)
from tests.helpers import at

pytestmark = pytest.mark.asyncio

HELLO = {"zh": "你好", "en": "hello"}


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee, the unit of work and the
    channels are tested on both databases elsewhere); this keeps CI's clock down."""
    return sqlite_services


def answer(services: Services, entry_id: str, lang: str, shop: str = "pawspa") -> str:
    assert services.faq is not None
    matcher = services.faq.get(shop)
    assert matcher is not None
    entry = matcher.faq.entry(entry_id)
    assert entry is not None
    return render_facts(entry.answer.for_language(lang), services.config.shops[shop], lang)


def all_answers(services: Services, lang: str, shop: str) -> list[str]:
    assert services.faq is not None
    matcher = services.faq.get(shop)
    assert matcher is not None
    return [e.answer.for_language(lang) for e in matcher.faq.entries]


async def handed_over(services: Services) -> list:
    return await services.store.handoffs("pawspa")


# ----------------------------------------------------------------------------- handoff


@pytest.mark.parametrize(("lang", "typed"), [("zh", "转人工"), ("en", "human")])
async def test_human_hands_over_with_eta_then_silence_until_released(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.push(typed)
    # 09:00 on Saturday: the shop opens at 10:00, and says so.
    eta = say(lang, "handoff.closed_now", when=when(lang, at(SAT, "10:00")))
    assert chat.text == say(lang, "handoff.to_staff", eta=eta)
    [item] = await handed_over(services)
    assert (item.reason, item.route) == ("asked", "front_desk")

    for text in ({"zh": "在吗？", "en": "hello?"}[lang], "我的预约", "1"):
        assert await chat.push(text) == []
    assert await chat.push("", payload="m:book") == []
    transcript = await services.store.transcript(item.conversation_id)
    assert transcript[-1].direction == "in" and transcript[-1].author == "customer"

    await services.store.set_mode(item.conversation_id, ConversationMode.BOT)
    await chat.push({"zh": "我的预约", "en": "my bookings"}[lang])
    assert chat.text == say(lang, "manage.none")
    assert await handed_over(services) == []


@pytest.mark.parametrize("lang", LANGS)
async def test_human_during_opening_hours_and_by_button(
    services: Services, make_chat: ChatFactory, clock, lang: str
) -> None:
    clock.set(at(SAT, "11:00"))
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.press(say(lang, "btn.human"))
    assert chat.text == say(lang, "handoff.to_staff", eta=say(lang, "handoff.open_now"))
    assert await chat.push(HELLO[lang]) == []


@pytest.mark.parametrize("lang", ["zh"])
async def test_human_mid_flow_releases_the_held_slot(services: Services, make_chat: ChatFactory, lang: str) -> None:
    customer, _pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "明天下午3点给豆豆洗澡", "en": "bath for Max tomorrow at 3pm"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    assert say(lang, "summary.title") in chat.text
    held = await services.bookings.free_slots("pawspa", "dog_bath_small", SUN, staff_id="xiaomei")
    await chat.push({"zh": "人工", "en": "human"}[lang])
    assert say(lang, "handoff.to_staff", eta="")[:5] in chat.text
    freed = await services.bookings.free_slots("pawspa", "dog_bath_small", SUN, staff_id="xiaomei")
    assert at(SUN, "15:00") not in [s.start for s in held]
    assert at(SUN, "15:00") in [s.start for s in freed]
    assert await services.bookings.upcoming("pawspa", customer.id) == []


@pytest.mark.parametrize(("lang", "first", "second"), [("zh", "呃呃呃", "啊啊啊啊"), ("en", "blorp zzz", "asdf qwer")])
async def test_misunderstood_messages_get_buttons_never_a_silent_handover(
    services: Services, make_chat: ChatFactory, lang: str, first: str, second: str
) -> None:
    """Not understood twice in a row: each time a clarifying question whose buttons resolve it
    (a person among them), never a handover the customer did not choose."""
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    for text in (first, second):
        await chat.push(text)
        assert say(lang, "misc.not_understood") in chat.text
        assert chat.labels == [say(lang, "btn.book"), say(lang, "btn.my_bookings"), say(lang, "btn.human")]
        assert await handed_over(services) == []
    await chat.press(say(lang, "btn.human"))
    [item] = await handed_over(services)
    assert item.reason == "asked"


@pytest.mark.parametrize("lang", ["zh"])
async def test_an_understood_message_resets_the_misunderstanding_count(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.push("blorp zzz")
    await chat.press(say(lang, "btn.book"))
    assert chat.text == say(lang, "ask.service")
    await chat.push("blorp zzz")
    assert say(lang, "misc.not_understood") in chat.text
    assert say(lang, "ask.service") in chat.text  # the flow's prompt again
    assert await handed_over(services) == []


# ----------------------------------------------------------------------------- FAQ


@pytest.mark.parametrize(("lang", "text"), [("zh", "我家狗洗完澡受伤了"), ("en", "My dog was injured at your shop")])
async def test_faq_entry_that_hands_over_answers_first(
    services: Services, make_chat: ChatFactory, lang: str, text: str
) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.push(text)
    assert chat.replies[0].text == answer(services, "pet_injured", lang)
    eta = say(lang, "handoff.closed_now", when=when(lang, at(SAT, "10:00")))
    assert chat.replies[-1].text == say(lang, "handoff.to_staff", eta=eta)
    [item] = await handed_over(services)
    assert (item.reason, item.route) == ("faq:pet_injured", "front_desk")
    assert await chat.push(HELLO[lang]) == []


@pytest.mark.parametrize(("lang", "question"), [("zh", "营业时间是几点？"), ("en", "What are your opening hours?")])
async def test_faq_question_mid_flow_is_answered_and_the_flow_goes_on(
    services: Services, make_chat: ChatFactory, lang: str, question: str
) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "给豆豆洗澡", "en": "bath for Max"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    assert chat.text == say(lang, "ask.day")
    await chat.push(question)
    texts = [r.text for r in chat.replies]
    assert texts == [answer(services, "hours", lang), say(lang, "faq.followup"), say(lang, "ask.day")]
    await chat.push({"zh": "明天", "en": "tomorrow"}[lang])
    assert chat.text == say(lang, "ask.time", day=day_text(lang, SUN))


@pytest.mark.parametrize(("lang", "question"), [("en", "Is there parking?")])
async def test_faq_question_when_idle_is_just_answered(
    services: Services, make_chat: ChatFactory, lang: str, question: str
) -> None:
    chat = make_chat(lang)
    await chat.push(question)
    assert chat.text == answer(services, "parking", lang)


@pytest.mark.parametrize(("lang", "vague"), [("zh", "价格"), ("en", "how much")])
async def test_did_you_mean_suggestions_and_pressing_one(
    services: Services, make_chat: ChatFactory, lang: str, vague: str
) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.push(vague)
    assert chat.text == say(lang, "faq.suggest")
    assert 2 <= len(chat.labels) <= 3
    assert all(b.payload.startswith("faq:") for r in chat.replies for b in r.buttons)
    dog_bath = next(b for r in chat.replies for b in r.buttons if b.payload == "faq:dog_bath_price")
    # Labels are questions in the customer's language.
    assert ("多少钱" in dog_bath.label) if lang == "zh" else dog_bath.label.startswith(("How", "What"))
    await chat.press(dog_bath.label)
    assert chat.text == answer(services, "dog_bath_price", lang)


@pytest.mark.parametrize("lang", ["en"])
async def test_did_you_mean_mid_flow_then_the_flow_goes_on(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.press(say(lang, "btn.book"))
    await chat.push({"zh": "价格", "en": "how much"}[lang])
    assert chat.text == say(lang, "faq.suggest")
    await chat.push("2")  # a typed number presses the suggestion shown last
    assert chat.replies[0].text == answer(services, "dog_bath_price", lang)
    assert chat.replies[-1].text == say(lang, "ask.service")
    await chat.press({"zh": "猫咪洗澡", "en": "Cat bath"}[lang])
    assert chat.text == say(lang, "ask.pet_name")


OUT_OF_SCOPE = [
    ("pawspa", "zh", "你们卖汽车保险吗？"),
    ("pawspa", "en", "Do you sell car insurance?"),
    ("pawspa", "en", "Do you open a bank account?"),
    ("clearsight", "en", "Can you repair my car?"),
    ("clearsight", "zh", "你们招聘吗？"),
]


@pytest.mark.parametrize(("shop", "lang", "question"), OUT_OF_SCOPE)
async def test_out_of_scope_question_never_gets_a_confident_answer(
    services: Services, make_chat: ChatFactory, shop: str, lang: str, question: str
) -> None:
    chat = make_chat(lang, shop=shop)
    await chat.push(HELLO[lang])
    await chat.push(question)
    answers = [a for a in all_answers(services, lang, shop) if a in chat.text]
    assert answers == [], f"{question!r} was answered with {answers}"
    assert chat.replies[0].text in (say(lang, "faq.none"), say(lang, "faq.suggest"))


async def test_unanswered_questions_are_recorded_for_the_shop(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("zh")
    await chat.push(HELLO["zh"])
    await chat.push("你们卖汽车保险吗？")
    assert chat.replies[0].text == say("zh", "faq.none")
    assert [text for text, _ in await faq_log.unanswered(services.db, "pawspa")] == ["你们卖汽车保险吗？"]


# ----------------------------------------------------------------------------- languages


async def test_language_switch_mid_flow_and_back(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("zh")
    await chat.push("你好")
    await chat.press("我要预约")
    await chat.push("English")
    assert [r.text for r in chat.replies] == [say("en", "misc.lang_switched"), say("en", "ask.service")]
    assert "Dog bath" in chat.labels
    customer = await customer_of(services, "zh")
    assert customer.language == "en"
    await chat.press("Dog bath")
    assert chat.text == say("en", "ask.pet_name")
    await chat.push("中文")
    assert [r.text for r in chat.replies] == [say("zh", "misc.lang_switched"), say("zh", "ask.pet_name")]
    assert (await customer_of(services, "zh")).language == "zh"


@pytest.mark.parametrize(
    ("hint", "first", "lang"), [(None, "hello", "en"), (None, "你好", "zh"), ("en-US", "👋", "en")]
)
async def test_language_from_the_first_message_or_the_channel_hint(
    services: Services, make_chat: ChatFactory, hint: str | None, first: str, lang: str
) -> None:
    chat = make_chat(lang, hint=False)
    chat.language_hint = hint
    await chat.push(first)
    assert chat.text == say(lang, "greeting.new", shop={"zh": "爪爪宠物SPA", "en": "PawSpa Pet Salon"}[lang])
    assert (await customer_of(services, lang)).language == lang


async def test_the_chosen_language_beats_the_channel_hint_later(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("zh")  # the channel keeps saying zh-ish things
    await chat.push("你好")
    await chat.push("English")
    await chat.push("👍")  # says nothing about the language
    assert say("en", "misc.not_understood") in chat.text
    await chat.press("My bookings")
    assert chat.text == say("en", "manage.none")


# ----------------------------------------------------------------------------- returning customer


@pytest.mark.parametrize("lang", LANGS)
async def test_returning_customer_greeted_with_pet_and_last_service_and_same_again(
    services: Services, make_chat: ChatFactory, clock, lang: str
) -> None:
    customer, pet = await with_pet(services, lang)
    clock.set(at(SAT, "09:00") - timedelta(days=14))
    last = await book(
        services,
        "dog_bath_small",
        at(SAT, "11:00") - timedelta(days=7),
        customer=customer,
        pet=pet,
        addons=("deworming",),
    )
    clock.set(at(SAT, "09:00"))
    assert last.status == "confirmed"

    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    addons = say(lang, "greeting.addons", addons={"zh": "体内外驱虫", "en": "Deworming"}[lang])
    assert chat.text == say(
        lang,
        "greeting.last_visit_pet",
        name={"zh": "王女士", "en": "Alice"}[lang],
        pet=pet.name,
        service={"zh": "小型犬洗澡", "en": "Dog bath (small)"}[lang],
        addons=addons,
    )
    assert chat.labels[0] == say(lang, "btn.same_again")
    assert say(lang, "btn.book") in chat.labels

    await chat.press(say(lang, "btn.same_again"))
    assert chat.text == say(lang, "ask.vaccinated", pet=pet.name)
    await chat.press(say(lang, "btn.affirm"))
    assert chat.text == say(lang, "ask.day")
    await chat.push({"zh": "明天下午3点", "en": "tomorrow 3pm"}[lang])
    assert say(lang, "summary.pet", pet=pet.name) in chat.text
    assert say(lang, "summary.price", price="¥138") in chat.text  # the bath and the deworming again
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert (booking.service_id, booking.addons, booking.pet_id) == ("dog_bath_small", ("deworming",), pet.id)
