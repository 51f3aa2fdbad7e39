"""Whatever arrives, the customer gets a sensible answer and nothing breaks: empty, huge, emoji,
non-text, SQL-ish and HTML messages, unknown and old buttons, and redelivered messages."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.bootstrap import Services
from core.messages import MessageKind
from core.models import Booking, BookingStatus
from tests.engine.conftest import LANGS, SUN, ChatFactory, customer_of, say, when, with_pet
from tests.helpers import at

pytestmark = pytest.mark.asyncio

HELLO = {"zh": "你好", "en": "hello"}


async def booking_rows(services: Services) -> int:
    async with services.db.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(Booking)) or 0)


async def still_works(chat, lang: str) -> None:
    """The conversation goes on normally after the odd message."""
    await chat.push({"zh": "我的预约", "en": "my bookings"}[lang])
    assert chat.text == say(lang, "manage.none")


@pytest.mark.parametrize(("lang", "kind"), [("zh", "text"), ("en", "sticker"), ("zh", "image")])
async def test_message_without_text(services: Services, make_chat: ChatFactory, lang: str, kind: MessageKind) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.push("", kind=kind)
    assert [r.text for r in chat.replies] == [say(lang, "misc.no_text"), say(lang, "greeting.menu")]
    await still_works(chat, lang)


@pytest.mark.parametrize("lang", ["en"])
async def test_blank_text_mid_flow_repeats_the_step(services: Services, make_chat: ChatFactory, lang: str) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.press(say(lang, "btn.book"))
    await chat.push("   \n ")
    assert [r.text for r in chat.replies] == [say(lang, "misc.no_text"), say(lang, "ask.service")]


ODD_TEXTS = {
    "10k chinese": "洗" * 10_000,
    "emoji only": "😀🐶🐱👍",
    "sql": "'; DROP TABLE bookings; --",
    "html": "<script>alert('x')</script><b>hi</b>",
    "nul byte": "hi\x00there",
}


@pytest.mark.parametrize("name", list(ODD_TEXTS))
async def test_odd_text_gets_an_answer_and_breaks_nothing(
    services: Services, make_chat: ChatFactory, name: str
) -> None:
    chat = make_chat("zh")
    await chat.push(HELLO["zh"])
    replies = await chat.push(ODD_TEXTS[name])
    assert replies, "every odd message gets an answer"
    assert say("zh", "misc.error") not in chat.text and say("en", "misc.error") not in chat.text
    assert all(len(r.text) < 2_000 for r in replies)
    await still_works(chat, "zh")


@pytest.mark.parametrize("lang", ["en"])
async def test_odd_pet_names_are_kept_literally(services: Services, make_chat: ChatFactory, lang: str) -> None:
    chat = make_chat(lang)
    await chat.push({"zh": "给狗狗洗澡", "en": "dog bath"}[lang])
    await chat.push("x" * 10_000)
    assert chat.text == say(lang, "info.pet_name_invalid")
    name = "Bo'; DROP TABLE pets"
    await chat.push(name)
    assert chat.text == say(lang, "ask.size", pet=name)
    await chat.push("<b>small</b>")
    customer = await customer_of(services, lang)
    assert [(p.name, p.size) for p in customer.pets] == [(name, "small")]


async def test_control_characters_in_the_display_name(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat("zh", name="王\x00女士\x07")
    await chat.push("你好")
    assert chat.text == say("zh", "greeting.new", shop="爪爪宠物SPA")
    await still_works(chat, "zh")


# ----------------------------------------------------------------------------- buttons


STALE_IN_IDLE = [
    ("zh", "s:123"),
    ("en", "zz:??"),
    ("zh", "faq:no-such-entry"),
    ("en", "zz:\x00<b>"),
    ("en", "m:same"),
]


@pytest.mark.parametrize(("lang", "payload"), STALE_IN_IDLE)
async def test_unknown_or_old_button_in_idle(
    services: Services, make_chat: ChatFactory, lang: str, payload: str
) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.push("old label", payload=payload)
    assert [r.text for r in chat.replies] == [say(lang, "misc.stale_button"), say(lang, "greeting.menu")]
    assert await booking_rows(services) == 0


@pytest.mark.parametrize("lang", ["zh"])
async def test_old_button_mid_flow_keeps_the_current_step(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    customer, _ = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "明天给豆豆洗澡", "en": "bath for Max tomorrow"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    await chat.press(say(lang, "btn.afternoon"))
    await chat.press("15:00")
    assert say(lang, "summary.title") in chat.text
    for stale in ("d:2026-11-23", "sz:small", "s:garbage", "y"):
        await chat.push("old", payload=stale)
        assert chat.replies[0].text == say(lang, "misc.stale_button"), stale
        assert say(lang, "summary.when", when=when(lang, at(SUN, "15:00"))) in chat.text
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert booking.start == at(SUN, "15:00")
    await chat.push("again", payload="c:ok")  # the confirm button of a finished booking
    assert chat.replies[0].text == say(lang, "misc.stale_button")
    assert len(await services.bookings.upcoming("pawspa", customer.id)) == 1


@pytest.mark.parametrize("lang", ["en"])
async def test_a_typed_number_without_such_a_button_is_just_text(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    chat = make_chat(lang)
    await chat.push(HELLO[lang])
    await chat.push("7")
    assert say(lang, "misc.not_understood") in chat.text
    await chat.push("99999999999999999999")
    assert say(lang, "misc.error") not in chat.text


# ----------------------------------------------------------------------------- redelivery


@pytest.mark.parametrize("lang", LANGS)
async def test_redelivered_confirmation_answers_the_same_and_books_once(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    customer, _ = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "明天下午3点给豆豆洗澡", "en": "bath for Max tomorrow at 3pm"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    first = await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert booking.code in first[0].text

    again = await chat.redeliver()
    assert [(r.text, r.buttons) for r in again] == [(r.text, r.buttons) for r in first]
    assert await chat.redeliver() == again
    assert len(await services.bookings.upcoming("pawspa", customer.id)) == 1
    assert await booking_rows(services) == 1
    async with services.db.reading() as s:
        statuses = list(await s.scalars(select(Booking.status)))
    assert statuses == [BookingStatus.CONFIRMED]


@pytest.mark.parametrize("lang", ["en"])
async def test_redelivered_first_message_holds_once(services: Services, make_chat: ChatFactory, lang: str) -> None:
    chat = make_chat(lang, shop="clearsight")
    first = await chat.push({"zh": "明天下午3点验光", "en": "book an eye exam tomorrow at 3pm"}[lang])
    again = await chat.redeliver()
    assert [r.text for r in again] == [r.text for r in first]
    assert await booking_rows(services) == 1
    await chat.press(say(lang, "btn.confirm"))
    await chat.redeliver()
    assert await booking_rows(services) == 1


@pytest.mark.parametrize("lang", ["zh"])
async def test_redelivered_cancel_cancels_once_and_says_the_same(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    customer, _pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "明天下午3点给豆豆洗澡", "en": "bath for Max tomorrow at 3pm"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    await chat.push({"zh": "取消预约", "en": "cancel my booking"}[lang])
    first = await chat.press(say(lang, "btn.cancel_booking"))
    assert first[0].text == say(lang, "manage.cancelled", code=booking.code)
    again = await chat.redeliver()
    assert [r.text for r in again] == [r.text for r in first]
    cancelled = [e.action for e in await services.bookings.history(booking.id)].count("cancelled")
    assert cancelled == 1
