"""Booking a new appointment in chat, in Chinese and in English: step by step (buttons or typed
numbers), new and known pets, free-text days and times, one-message bookings, staff approval,
a slot lost while confirming, "back" and "cancel" mid-flow, and a restart mid-flow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.bootstrap import Services, bootstrap
from core.config import AppConfig
from core.models import Booking, BookingStatus
from tests.engine.conftest import (
    FRI,
    LANGS,
    MON,
    NEXT_SAT,
    PET_NAMES,
    SAT,
    SUN,
    TUE,
    WED,
    ChatFactory,
    book,
    booked_text,
    day_text,
    head,
    other_customer,
    payloads,
    say,
    when,
    with_pet,
)
from tests.helpers import at

pytestmark = pytest.mark.asyncio

# One message that names the pet, the service and (optionally) the day, per language.
BATH_FOR_PET = {"zh": "明天给豆豆洗澡", "en": "bath for Max tomorrow"}


async def bookings_of(services: Services, customer_id: int) -> list[Booking]:
    """Every booking row of a customer, whatever its status (holds included)."""
    async with services.db.reading() as s:
        return list(await s.scalars(select(Booking).where(Booking.customer_id == customer_id).order_by(Booking.id)))


async def to_time_choice(services: Services, make_chat: ChatFactory, lang: str):
    """A returning customer with a small dog, vaccinated, asked for a time tomorrow."""
    customer, pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push(BATH_FOR_PET[lang])
    assert say(lang, "ask.vaccinated", pet=pet.name) in chat.text
    await chat.press(say(lang, "btn.affirm"))
    assert say(lang, "ask.time", day=day_text(lang, SUN)) in chat.text
    return chat, customer, pet


async def to_summary(services: Services, make_chat: ChatFactory, lang: str, hhmm: str = "15:00"):
    chat, customer, pet = await to_time_choice(services, make_chat, lang)
    await chat.push(hhmm)
    assert say(lang, "summary.title") in chat.text, chat.text
    assert when(lang, at(SUN, hhmm)) in chat.text
    return chat, customer, pet


# ----------------------------------------------------------------------------- step by step


@pytest.mark.parametrize("lang", LANGS)
async def test_step_by_step_booking_by_buttons(services: Services, make_chat: ChatFactory, lang: str) -> None:
    chat = make_chat(lang)
    await chat.push({"zh": "你好", "en": "hello"}[lang])
    assert chat.text == say(lang, "greeting.new", shop={"zh": "爪爪宠物SPA", "en": "PawSpa Pet Salon"}[lang])
    assert chat.labels == [say(lang, "btn.book"), say(lang, "btn.my_bookings"), say(lang, "btn.human")]

    await chat.press(say(lang, "btn.book"))
    assert chat.text == say(lang, "ask.service")
    dog_bath = {"zh": "狗狗洗澡", "en": "Dog bath"}[lang]
    assert dog_bath in chat.labels
    assert {"zh": "精致美容造型", "en": "Full grooming"}[lang] in chat.labels

    await chat.press(dog_bath)
    assert chat.text == say(lang, "ask.pet_name")
    assert chat.labels == []

    pet = PET_NAMES[lang]
    await chat.push(pet)
    assert chat.text == say(lang, "ask.size", pet=pet)
    assert chat.labels == [say(lang, f"btn.size_{s}") for s in ("small", "medium", "large")]

    await chat.press(say(lang, "btn.size_small"))
    assert say(lang, "info.new_pet", pet=pet) in chat.text
    assert say(lang, "ask.vaccinated", pet=pet) in chat.text

    await chat.press(say(lang, "btn.affirm"))
    assert chat.text == say(lang, "ask.day")
    assert payloads(chat)[0] == f"d:{SAT.isoformat()}"
    assert f"d:{TUE.isoformat()}" not in payloads(chat)  # closed on Tuesdays

    await chat.press({"zh": "明天", "en": "Tomorrow"}[lang])
    assert chat.text == say(lang, "ask.time", day=day_text(lang, SUN))
    afternoon = say(lang, "btn.afternoon")
    assert any(label.startswith(afternoon) for label in chat.labels)

    await chat.press(afternoon)
    assert chat.text == say(lang, "ask.time_period", day=day_text(lang, SUN), period=say(lang, "period.afternoon"))
    assert "15:00" in chat.labels

    await chat.press("15:00")
    summary = chat.text
    assert summary.startswith(say(lang, "summary.title"))
    assert (
        say(lang, "summary.service", icon="✂️", service={"zh": "小型犬洗澡", "en": "Dog bath (small)"}[lang]) in summary
    )
    assert say(lang, "summary.pet", pet=pet) in summary
    assert say(lang, "summary.when", when=when(lang, at(SUN, "15:00"))) in summary
    assert say(lang, "summary.price", price="¥88") in summary
    assert say(lang, "summary.held", minutes=10) in summary
    assert chat.labels == [say(lang, "btn.confirm"), say(lang, "btn.change_time"), say(lang, "btn.cancel_flow")]

    await chat.press(say(lang, "btn.confirm"))
    customer = await services.customers.identify("pawspa", "test", "u1")
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert booking.status == BookingStatus.CONFIRMED
    assert booking.start == at(SUN, "15:00")
    assert booking.service_id == "dog_bath_small"
    assert [p.name for p in customer.pets] == [pet] and customer.pets[0].size == "small"
    assert booking.pet_id == customer.pets[0].id
    assert chat.text == booked_text(services, lang, booking)
    assert "上海市徐汇区宛平南路88号1楼" in chat.text if lang == "zh" else "88 Wanping South Road" in chat.text
    assert chat.labels == [say(lang, "btn.my_bookings"), say(lang, "notices.offer")]  # + opt in to shop news


@pytest.mark.parametrize("lang", LANGS)
async def test_step_by_step_booking_by_typed_numbers(services: Services, make_chat: ChatFactory, lang: str) -> None:
    chat = make_chat(lang)
    await chat.push({"zh": "你好", "en": "hi"}[lang])
    await chat.push("1")  # book
    assert chat.text == say(lang, "ask.service")
    await chat.push("1")  # dog bath
    assert chat.text == say(lang, "ask.pet_name")
    await chat.push(PET_NAMES[lang])
    await chat.push("2")  # medium
    assert say(lang, "ask.vaccinated", pet=PET_NAMES[lang]) in chat.text
    await chat.push("1")  # yes
    assert chat.text == say(lang, "ask.day")
    await chat.push("2")  # tomorrow
    assert chat.text == say(lang, "ask.time", day=day_text(lang, SUN))
    await chat.push("2")  # afternoon
    await chat.push(str(chat.labels.index("16:00") + 1))
    assert say(lang, "summary.when", when=when(lang, at(SUN, "16:00"))) in chat.text
    assert say(lang, "summary.price", price="¥128") in chat.text  # medium dog bath
    await chat.push("1")  # confirm
    customer = await services.customers.identify("pawspa", "test", "u1")
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert (booking.service_id, booking.start, booking.status) == (
        "dog_bath_medium",
        at(SUN, "16:00"),
        BookingStatus.CONFIRMED,
    )
    assert booking.code in chat.text


@pytest.mark.parametrize(("lang", "typed"), [("zh", "预约"), ("zh", "我要预约"), ("en", "book")])
async def test_typing_book_starts_a_booking(services: Services, make_chat: ChatFactory, lang: str, typed: str) -> None:
    # The shop's own FAQ ("how_to_book") tells customers to just type 预约 / "book".
    chat = make_chat(lang)
    await chat.push(typed)
    assert chat.text == say(lang, "ask.service")
    assert {"zh": "狗狗洗澡", "en": "Dog bath"}[lang] in chat.labels


# ----------------------------------------------------------------------------- pets


@pytest.mark.parametrize(
    ("lang", "breed", "size", "service", "price"),
    [("zh", "泰迪", "small", "小型犬洗澡", "¥88"), ("en", "golden retriever", "large", "Dog bath (large)", "¥168")],
)
async def test_new_pet_size_from_breed(
    services: Services, make_chat: ChatFactory, lang: str, breed: str, size: str, service: str, price: str
) -> None:
    chat = make_chat(lang)
    await chat.push({"zh": "我想给狗狗洗澡", "en": "I'd like a dog bath"}[lang])
    assert chat.text == say(lang, "ask.pet_name")
    pet = PET_NAMES[lang]
    await chat.push(pet)
    await chat.push(breed)
    assert say(lang, "info.size_guess", pet=pet, size=say(lang, f"size.{size}")) in chat.text
    assert say(lang, "info.new_pet", pet=pet) in chat.text
    customer = await services.customers.identify("pawspa", "test", "u1")
    [stored] = customer.pets
    assert (stored.name, stored.species, stored.size, stored.breed) == (pet, "dog", size, breed)
    await chat.press(say(lang, "btn.affirm"))
    await chat.push({"zh": "明天下午3点", "en": "tomorrow 3pm"}[lang])
    assert say(lang, "summary.service", icon="✂️", service=service) in chat.text
    assert say(lang, "summary.price", price=price) in chat.text


@pytest.mark.parametrize("lang", ["zh"])
async def test_new_pet_species_asked_when_the_service_takes_both(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    chat = make_chat(lang)
    await chat.push({"zh": "想约个美容", "en": "I want to book grooming"}[lang])
    assert chat.text == say(lang, "ask.pet_name")
    await chat.push({"zh": "咪咪", "en": "Luna"}[lang])
    pet = {"zh": "咪咪", "en": "Luna"}[lang]
    assert chat.text == say(lang, "ask.species", pet=pet)
    assert chat.labels == [say(lang, "btn.dog"), say(lang, "btn.cat")]
    await chat.push({"zh": "是猫", "en": "a cat"}[lang])
    assert say(lang, "info.new_pet", pet=pet) in chat.text
    assert say(lang, "ask.vaccinated", pet=pet) in chat.text  # cats have no size question
    customer = await services.customers.identify("pawspa", "test", "u1")
    assert [(p.name, p.species) for p in customer.pets] == [(pet, "cat")]


@pytest.mark.parametrize("lang", ["en"])
async def test_the_only_pet_on_file_is_used_not_asked_for(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    customer, pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "我要给狗洗澡", "en": "dog bath please"}[lang])
    assert chat.text == say(lang, "ask.vaccinated", pet=pet.name)  # named at once (and in the summary)
    await chat.press(say(lang, "btn.affirm"))
    assert chat.text == say(lang, "ask.day")
    again = await services.customers.get(customer.id)
    assert again is not None and len(again.pets) == 1  # no duplicate pet


@pytest.mark.parametrize("lang", ["zh"])
async def test_unvaccinated_pet_is_turned_away_kindly(services: Services, make_chat: ChatFactory, lang: str) -> None:
    customer, pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push(BATH_FOR_PET[lang])
    await chat.push({"zh": "没打", "en": "no"}[lang])
    assert chat.text == say(lang, "info.not_vaccinated", pet=pet.name)
    assert chat.labels == [say(lang, "btn.human")]
    assert await bookings_of(services, customer.id) == []
    await chat.push({"zh": "你好", "en": "hello"}[lang])  # back at the menu, not stuck in the flow
    assert chat.text == say(lang, "greeting.menu")


# ----------------------------------------------------------------------------- days and times

DAY_WORDS = {
    "zh": [("今天", SAT), ("明天", SUN), ("后天", MON), ("周六", SAT), ("下周三", WED), ("11月28日", NEXT_SAT)],
    "en": [("28/11", NEXT_SAT), ("tomorrow", SUN), ("sat", SAT), ("next friday", FRI), ("wednesday", WED)],
}


@pytest.mark.parametrize("lang", LANGS)
async def test_free_text_days(services: Services, make_chat: ChatFactory, lang: str) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "给豆豆洗澡", "en": "bath for Max"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    assert chat.text == say(lang, "ask.day")
    for words, day in DAY_WORDS[lang]:
        await chat.push(words)
        assert chat.text == say(lang, "ask.time", day=day_text(lang, day)), words


@pytest.mark.parametrize(
    ("lang", "typed", "hhmm"), [("zh", "10点", "10:00"), ("zh", "下午3点半", "15:30"), ("en", "3pm", "15:00")]
)
async def test_free_text_times(services: Services, make_chat: ChatFactory, lang: str, typed: str, hhmm: str) -> None:
    chat, _, _ = await to_time_choice(services, make_chat, lang)
    await chat.push(typed)
    assert say(lang, "summary.when", when=when(lang, at(SUN, hhmm))) in chat.text


@pytest.mark.parametrize(("lang", "typed"), [("zh", "周二"), ("en", "tuesday")])
async def test_closed_day_is_answered_with_closed(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "给豆豆洗澡", "en": "bath for Max"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    await chat.push(typed)
    assert say(lang, "info.closed_day", day=day_text(lang, TUE)) in chat.text
    assert say(lang, "ask.day") in chat.text
    assert f"d:{TUE.isoformat()}" not in payloads(chat)


@pytest.mark.parametrize("lang", ["en"])
async def test_time_already_taken_offers_the_nearest(services: Services, make_chat: ChatFactory, lang: str) -> None:
    other = await other_customer(services)
    for staff in ("xiaomei", "ajie"):  # both groomers who bathe small dogs are busy at 15:00
        await book(services, "dog_bath_small", at(SUN, "15:00"), customer=other, staff=staff)
    chat, _, _ = await to_time_choice(services, make_chat, lang)
    await chat.push({"zh": "下午3点", "en": "3pm"}[lang])
    assert say(lang, "info.time_not_free", time="15:00", day=day_text(lang, SUN), times="").strip() in chat.text
    offered = [label for label in chat.labels if label != say(lang, "btn.more_days")]
    assert offered and when(lang, at(SUN, "15:00")) not in offered
    assert all(label[-5:] in chat.replies[0].text for label in offered)  # the times are said, not only shown
    assert all(label.startswith(day_text(lang, SUN)) for label in offered)
    await chat.press(offered[0])
    assert say(lang, "summary.when", when=offered[0]) in chat.text


# ----------------------------------------------------------------------------- one message


@pytest.mark.parametrize(("lang", "text"), [("zh", "周六上午10点给豆豆洗澡"), ("en", "Sat 10am bath for Max")])
async def test_one_message_booking_for_a_known_pet(
    services: Services, make_chat: ChatFactory, clock, lang: str, text: str
) -> None:
    clock.set(at(SAT, "09:00") - timedelta(days=2))  # Thursday morning: Saturday 10:00 is bookable
    customer, pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push(text)
    # The only thing the message could not say: the (safety) vaccination question.
    assert chat.text == say(lang, "ask.vaccinated", pet=pet.name)
    await chat.press(say(lang, "btn.affirm"))
    assert chat.text.startswith(say(lang, "summary.title"))
    assert say(lang, "summary.pet", pet=pet.name) in chat.text
    assert say(lang, "summary.when", when=when(lang, at(SAT, "10:00"))) in chat.text
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert (booking.start, booking.pet_id, booking.service_id) == (at(SAT, "10:00"), pet.id, "dog_bath_small")


@pytest.mark.parametrize(
    ("lang", "text", "name"),
    [("zh", "明天下午3点给我家金毛洗澡", "旺财"), ("en", "bath for my golden retriever tomorrow at 3pm", "Buddy")],
)
async def test_one_message_naming_a_breed_needs_no_size_question(
    services: Services, make_chat: ChatFactory, lang: str, text: str, name: str
) -> None:
    chat = make_chat(lang)
    await chat.push(text)
    assert chat.text == say(lang, "ask.pet_name")
    await chat.push(name)
    # A golden retriever is a large dog: the customer already said so.
    assert say(lang, "ask.size", pet=name) not in chat.text
    assert say(lang, "ask.vaccinated", pet=name) in chat.text
    customer = await services.customers.identify("pawspa", "test", "u1")
    assert [(p.name, p.species, p.size) for p in customer.pets] == [(name, "dog", "large")]
    await chat.press(say(lang, "btn.affirm"))
    assert (
        say(lang, "summary.service", icon="✂️", service={"zh": "大型犬洗澡", "en": "Dog bath (large)"}[lang])
        in chat.text
    )
    assert say(lang, "summary.when", when=when(lang, at(SUN, "15:00"))) in chat.text


@pytest.mark.parametrize("lang", ["zh"])
async def test_one_message_booking_too_soon_offers_later_times(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "今天上午10点给豆豆洗澡", "en": "bath for Max today at 10am"}[lang])
    await chat.press(say(lang, "btn.affirm"))  # 09:00 now, the shop needs 2 hours' notice
    assert say(lang, "info.too_soon", hours="2", times="11:00").split("11:00")[0] + "11:00" in chat.text
    offered = [label for label in chat.labels if label != say(lang, "btn.more_days")]
    assert offered and offered[0] == when(lang, at(SAT, "11:00"))


@pytest.mark.parametrize(("lang", "text"), [("en", "book an eye exam tomorrow at 3pm"), ("zh", "明天下午3点验光")])
async def test_one_message_booking_goes_straight_to_the_summary(
    services: Services, make_chat: ChatFactory, lang: str, text: str
) -> None:
    chat = make_chat(lang, shop="clearsight")
    await chat.push(text)
    assert chat.text.startswith(say(lang, "summary.title"))
    assert {"zh": "成人验光检查", "en": "Adult eye exam"}[lang] in chat.text
    assert say(lang, "summary.when", when=when(lang, at(SUN, "15:00"))) in chat.text
    await chat.press(say(lang, "btn.confirm"))
    customer = await services.customers.identify("clearsight", "test", "u1")
    [booking] = await services.bookings.upcoming("clearsight", customer.id)
    assert (booking.service_id, booking.start, booking.status) == ("adult_exam", at(SUN, "15:00"), "confirmed")
    assert booking.code in chat.text


@pytest.mark.parametrize("lang", LANGS)
async def test_grooming_needs_staff_approval_and_ends_pending(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    customer, _pet = await with_pet(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "明天下午3点给豆豆美容", "en": "grooming for Max tomorrow at 3pm"}[lang])
    await chat.press(say(lang, "btn.affirm"))
    assert say(lang, "summary.approval") in chat.text
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert booking.status == BookingStatus.PENDING and booking.service_id == "grooming"
    assert chat.text == booked_text(services, lang, booking, "booked.pending")
    assert {"zh": "精致美容造型", "en": "Full grooming"}[lang] in chat.text


# ----------------------------------------------------------------------------- losing the slot


@pytest.mark.parametrize("lang", LANGS)
async def test_slot_taken_while_confirming_offers_alternatives_one_tap_away(
    services: Services, make_chat: ChatFactory, clock, lang: str
) -> None:
    chat, customer, _ = await to_summary(services, make_chat, lang)
    clock.advance(timedelta(minutes=11))  # the hold lapses...
    other = await other_customer(services)
    for staff in ("xiaomei", "ajie"):  # ...and the time is booked from another channel
        await book(services, "dog_bath_small", at(SUN, "15:00"), customer=other, staff=staff)
    await chat.press(say(lang, "btn.confirm"))
    assert say(lang, "booked.taken") in chat.text
    offered = [label for label in chat.labels if label != say(lang, "btn.more_days")]
    assert offered and when(lang, at(SUN, "15:00")) not in offered
    assert await services.bookings.upcoming("pawspa", customer.id) == []

    await chat.press(offered[0])
    assert say(lang, "summary.when", when=offered[0]) in chat.text
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert when(lang, booking.start) == offered[0]
    assert chat.text == booked_text(services, lang, booking)


@pytest.mark.parametrize("lang", ["en"])
async def test_lapsed_hold_on_a_still_free_time_is_confirmed(
    services: Services, make_chat: ChatFactory, clock, lang: str
) -> None:
    chat, customer, _ = await to_summary(services, make_chat, lang)
    clock.advance(timedelta(minutes=11))
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert booking.start == at(SUN, "15:00") and booking.status == BookingStatus.CONFIRMED
    assert chat.text == booked_text(services, lang, booking)


# ----------------------------------------------------------------------------- back and cancel


@pytest.mark.parametrize(("lang", "back"), [("zh", "返回"), ("en", "back")])
async def test_back_goes_one_step_back(services: Services, make_chat: ChatFactory, lang: str, back: str) -> None:
    chat = make_chat(lang)
    await chat.push({"zh": "你好", "en": "hello"}[lang])
    await chat.push(back)
    assert say(lang, "misc.at_start") in chat.text
    await chat.press(say(lang, "btn.book"))
    await chat.press({"zh": "狗狗洗澡", "en": "Dog bath"}[lang])
    await chat.push(PET_NAMES[lang])
    assert chat.text == say(lang, "ask.size", pet=PET_NAMES[lang])
    await chat.push(back)
    assert chat.text == say(lang, "ask.pet_name")
    await chat.push({"zh": "旺财", "en": "Rex"}[lang])
    assert chat.text == say(lang, "ask.size", pet={"zh": "旺财", "en": "Rex"}[lang])


@pytest.mark.parametrize(("lang", "back"), [("en", "back")])
async def test_back_from_the_summary_releases_the_hold(
    services: Services, make_chat: ChatFactory, lang: str, back: str
) -> None:
    chat, customer, _ = await to_summary(services, make_chat, lang)
    [held] = await bookings_of(services, customer.id)
    assert held.status == BookingStatus.HELD
    await chat.push(back)
    assert head(lang, "ask.time", day=day_text(lang, SUN)) in chat.text  # back to the time of that day
    [released] = await bookings_of(services, customer.id)
    assert released.status != BookingStatus.HELD
    assert at(SUN, "15:00") in [
        s.start for s in await services.bookings.free_slots("pawspa", "dog_bath_small", SUN, staff_id=held.staff_id)
    ]


@pytest.mark.parametrize(("lang", "cancel"), [("zh", "算了"), ("en", "cancel")])
async def test_cancel_mid_flow_releases_the_hold(
    services: Services, make_chat: ChatFactory, lang: str, cancel: str
) -> None:
    chat, customer, _ = await to_summary(services, make_chat, lang)
    await chat.push(cancel)
    assert chat.text == say(lang, "misc.flow_cancelled")
    assert chat.labels == [say(lang, "btn.book"), say(lang, "btn.my_bookings")]
    [released] = await bookings_of(services, customer.id)
    assert released.status == BookingStatus.CANCELLED
    assert await services.bookings.upcoming("pawspa", customer.id) == []
    await chat.push({"zh": "我的预约", "en": "my bookings"}[lang])
    assert say(lang, "manage.none") in chat.text


@pytest.mark.parametrize("lang", ["en"])
async def test_cancel_button_on_the_summary(services: Services, make_chat: ChatFactory, lang: str) -> None:
    chat, customer, _ = await to_summary(services, make_chat, lang)
    await chat.press(say(lang, "btn.cancel_flow"))
    assert chat.text == say(lang, "misc.flow_cancelled")
    [released] = await bookings_of(services, customer.id)
    assert released.status == BookingStatus.CANCELLED


@pytest.mark.parametrize("lang", ["zh"])
async def test_other_times_from_the_summary(services: Services, make_chat: ChatFactory, lang: str) -> None:
    chat, customer, _ = await to_summary(services, make_chat, lang)
    await chat.press(say(lang, "btn.change_time"))
    assert head(lang, "ask.time", day=day_text(lang, SUN)) in chat.text
    await chat.push("17:00")
    assert say(lang, "summary.when", when=when(lang, at(SUN, "17:00"))) in chat.text
    await chat.press(say(lang, "btn.confirm"))
    [booking] = await services.bookings.upcoming("pawspa", customer.id)
    assert booking.start == at(SUN, "17:00")
    assert [r.status for r in await bookings_of(services, customer.id)] == [
        BookingStatus.CANCELLED,  # the 15:00 hold, given up
        BookingStatus.CONFIRMED,
    ]


# ----------------------------------------------------------------------------- restart


@pytest.mark.parametrize("lang", LANGS)
async def test_restart_mid_flow_resumes_where_it_was(
    services: Services, make_chat: ChatFactory, demo_config: AppConfig, clock, db_url: str, lang: str
) -> None:
    _chat, customer, pet = await to_time_choice(services, make_chat, lang)
    await services.close()
    restarted = await bootstrap(demo_config, clock=clock, database_url=db_url)
    try:
        again = make_chat(lang, engine=restarted.engine)
        await again.push({"zh": "下午3点", "en": "3pm"}[lang])
        assert say(lang, "summary.when", when=when(lang, at(SUN, "15:00"))) in again.text
        assert say(lang, "summary.pet", pet=pet.name) in again.text
        await restarted.close()
        restarted = await bootstrap(demo_config, clock=clock, database_url=db_url)
        again = make_chat(lang, engine=restarted.engine)
        await again.push({"zh": "确认", "en": "confirm"}[lang])
        [booking] = await restarted.bookings.upcoming("pawspa", customer.id)
        assert booking.start == at(SUN, "15:00") and booking.code in again.text
    finally:
        await restarted.close()
