"""One request for two pets (issue 9, no guessing): "baths for max and bella saturday at 2" books
both, one after the other, each with its own summary, sized service and price; never one of
them silently. "just max" at the first summary books only Max. Clock: Saturday 21 Nov 2026 09:00."""

from __future__ import annotations

from datetime import UTC, date

import pytest

from bot.bootstrap import Services
from core.models import BookingStatus
from tests.engine.conftest import LANGS, NEXT_SAT, ChatFactory, customer_of, say
from tests.engine.test_booking_dialog import bookings_of
from tests.engine.test_receptionist import at, summary_time

TWO_PETS = {"en": ("Max", "Bella"), "zh": ("豆豆", "球球")}


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee is tested on both databases
    elsewhere); this keeps CI's clock down."""
    return sqlite_services


async def two_dogs(services: Services, lang: str) -> int:
    """A returning customer with a medium and a small dog on file, both vaccinated."""
    customer = await customer_of(services, lang)
    first, second = TWO_PETS[lang]
    for name, size in ((first, "medium"), (second, "small")):
        await services.customers.add_pet(
            customer.id, name=name, species="dog", size=size, vaccinated_on=date(2026, 6, 1)
        )
    return customer.id


@pytest.mark.parametrize(
    ("lang", "typed"),
    [
        ("en", "can i book baths for max and bella next saturday at 2pm"),
        ("zh", "下周六下午两点给豆豆和球球都洗个澡"),
        ("en", "both my dogs need a bath next saturday 2pm"),
        ("zh", "下周六下午两点两只狗狗都想洗澡"),
    ],
)
async def test_two_pets_in_one_message_are_both_booked(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    customer_id = await two_dogs(services, lang)
    second = TWO_PETS[lang][1]
    chat = make_chat(lang)
    await chat.push(typed)
    assert summary_time(chat, lang)
    assert say(lang, "summary.next_pets", pets=second) in chat.text  # the second is named up front
    await chat.press(say(lang, "btn.confirm"))
    assert say(lang, "info.next_pet", pet=second) in chat.text
    assert summary_time(chat, lang)  # the second's own summary, with its own price
    await chat.press(say(lang, "btn.confirm"))
    booked = [b for b in await bookings_of(services, customer_id) if b.status == BookingStatus.CONFIRMED]
    assert sorted(b.service_id for b in booked) == ["dog_bath_medium", "dog_bath_small"]
    assert {b.start_at.replace(tzinfo=UTC) for b in booked} == {at(NEXT_SAT, "14:00")}
    assert len({b.pet_id for b in booked}) == 2


@pytest.mark.parametrize(("lang", "only"), [("en", "actually just max"), ("zh", "算了只约豆豆吧")])
async def test_one_of_two_pets_singled_out_at_the_summary(
    services: Services, make_chat: ChatFactory, lang: str, only: str
) -> None:
    customer_id = await two_dogs(services, lang)
    second = TWO_PETS[lang][1]
    chat = make_chat(lang)
    await chat.push({"en": "baths for max and bella next saturday 2pm", "zh": "下周六下午两点豆豆和球球洗澡"}[lang])
    await chat.push(only)
    assert summary_time(chat, lang)
    assert say(lang, "summary.next_pets", pets=second) not in chat.text
    await chat.press(say(lang, "btn.confirm"))
    assert say(lang, "info.next_pet", pet=second) not in chat.text
    booked = [b for b in await bookings_of(services, customer_id) if b.status == BookingStatus.CONFIRMED]
    assert [b.service_id for b in booked] == ["dog_bath_medium"]


@pytest.mark.parametrize("lang", LANGS)
async def test_one_pet_named_is_one_booking(services: Services, make_chat: ChatFactory, lang: str) -> None:
    await two_dogs(services, lang)
    first = TWO_PETS[lang][0]
    chat = make_chat(lang)
    await chat.push({"en": "bath for bella next saturday 2pm", "zh": "下周六下午两点给球球洗澡"}[lang])
    assert summary_time(chat, lang)
    assert say(lang, "summary.next_pets", pets=first) not in chat.text


async def test_a_dog_and_a_cat_get_each_their_own_bath(services: Services, make_chat: ChatFactory) -> None:
    customer = await customer_of(services, "en")
    for name, species, size in (("Max", "dog", "medium"), ("Mimi", "cat", None)):
        await services.customers.add_pet(
            customer.id, name=name, species=species, size=size, vaccinated_on=date(2026, 6, 1)
        )
    chat = make_chat("en")
    await chat.push("baths for max and mimi next saturday 11am please")
    await chat.press(say("en", "btn.confirm"))
    assert say("en", "info.next_pet", pet="Mimi") in chat.text
    await chat.press(say("en", "btn.confirm"))
    booked = [b for b in await bookings_of(services, customer.id) if b.status == BookingStatus.CONFIRMED]
    assert sorted(b.service_id for b in booked) == ["cat_bath", "dog_bath_medium"]


@pytest.mark.parametrize(
    ("lang", "typed", "second"),
    [
        ("en", "hi, me and my wife both need eye exams, tuesday 10am if possible", "adult_exam"),
        ("zh", "我和儿子都想验光，下周二上午10点", "child_exam"),
    ],
)
async def test_two_people_at_the_optician_are_both_booked(
    services: Services, make_chat: ChatFactory, lang: str, typed: str, second: str
) -> None:
    customer = await customer_of(services, lang, shop="clearsight")
    chat = make_chat(lang, shop="clearsight")
    await chat.push(typed)
    assert summary_time(chat, lang)
    assert say(lang, "summary.next_people", count=1) in chat.text
    await chat.press(say(lang, "btn.confirm"))
    assert say(lang, "info.next_person") in chat.text
    if not summary_time(chat, lang):  # one exam room: the next free time is offered, never a guess
        await chat.push("1")
    await chat.press(say(lang, "btn.confirm"))
    booked = [b for b in await bookings_of(services, customer.id) if b.status == BookingStatus.CONFIRMED]
    assert sorted(b.service_id for b in booked) == sorted(["adult_exam", second])
