"""Round-8 classes of issue 9, as a front desk reads them: a time that "works for me" asks which
service (the adult exam is not guessed); "it's for my daughter, she's 9" is the child's exam at the
same time (9 is her age, not the hour); "what about 2pm?" picks 2pm; "change my contacts
appointment to wednesday 5pm" asks to move that booking; "what appointments do I have coming up"
lists them; "is Cotton's groom confirmed?" tells the truth (awaiting the shop); a price question
with add-ons gets the total; "Pumpkin is my cat, not a dog" corrects the pet just put on file; a
pet described before any request is remembered for the next one. Clock: Saturday 21 Nov 2026
09:00, Shanghai."""

from __future__ import annotations

import pytest

from bot.bootstrap import Services
from tests.engine.conftest import MON, SUN, WED, ChatFactory, book, customer_of, day_text, say, when, with_pet
from tests.engine.test_booking_dialog import bookings_of
from tests.engine.test_receptionist import at, summary_time

EN = "en"


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee is tested on both databases
    elsewhere); this keeps CI's clock down."""
    return sqlite_services


async def test_a_time_that_works_for_me_asks_which_service(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN, shop="clearsight")
    await chat.push("2:45pm on monday works for me")
    assert say(EN, "btn.confirm") not in chat.labels  # no exam guessed
    assert "Adult eye exam" in chat.labels and "Child eye exam" in chat.labels
    await chat.push("eye exam")
    assert summary_time(chat, EN) and when(EN, at(MON, "14:45")) in chat.text


async def test_its_for_my_daughter_she_is_nine(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN, shop="clearsight")
    await chat.push("eye exam monday 11am")
    assert summary_time(chat, EN) and "Adult eye exam" in chat.text
    await chat.push("oh sorry it's actually for my daughter, she's 9")
    assert summary_time(chat, EN) and "Child eye exam" in chat.text
    assert when(EN, at(MON, "11:00")) in chat.text  # the time stays; 9 is her age


async def test_what_about_a_time_picks_it(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN, shop="clearsight")
    await chat.push("contacts fitting monday")
    assert say(EN, "ask.time", day=day_text(EN, MON)) in chat.text
    await chat.push("what about 2pm?")
    assert summary_time(chat, EN) and when(EN, at(MON, "14:00")) in chat.text


async def test_change_my_named_appointment_to_a_time(services: Services, make_chat: ChatFactory) -> None:
    customer = await customer_of(services, EN, shop="clearsight")
    booking = await book(
        services, "contact_lens_fitting", at(MON, "11:00"), shop="clearsight", customer=customer
    )
    chat = make_chat(EN, shop="clearsight")
    await chat.push("could I change my contacts appointment to wednesday 5pm")
    assert booking.code in chat.text and when(EN, at(WED, "17:00")) in chat.text
    assert say(EN, "btn.keep") in chat.labels  # asked before anything changes


async def test_what_appointments_do_i_have(services: Services, make_chat: ChatFactory) -> None:
    customer = await customer_of(services, EN, shop="clearsight")
    await book(services, "adult_exam", at(MON, "11:00"), shop="clearsight", customer=customer)
    await book(services, "child_exam", at(WED, "10:30"), shop="clearsight", customer=customer)
    chat = make_chat(EN, shop="clearsight")
    await chat.push("what appointments do I have coming up")
    assert when(EN, at(MON, "11:00")) in chat.text and when(EN, at(WED, "10:30")) in chat.text


async def test_is_it_confirmed_tells_a_pending_request_as_such(services: Services, make_chat: ChatFactory) -> None:
    customer, pet = await with_pet(services, EN, pet="Cotton")
    await book(services, "grooming", at(SUN, "13:00"), customer=customer, pet=pet)  # awaits the shop
    chat = make_chat(EN)
    await chat.push("is Cotton's groom on sunday confirmed?")
    assert say(EN, "manage.pending_mark").strip() in chat.text
    assert say(EN, "btn.confirm") not in chat.labels


@pytest.mark.parametrize(
    ("lang", "typed", "total"),
    [
        ("en", "how much for a medium dog bath with deworming and teeth brushing?", "¥208"),
        ("zh", "小型犬洗澡加驱虫加刷牙一共多少钱", "¥168"),
    ],
)
async def test_a_price_with_add_ons_is_the_total(
    services: Services, make_chat: ChatFactory, lang: str, typed: str, total: str
) -> None:
    chat = make_chat(lang)
    await chat.push(typed)
    assert total in chat.text


async def test_a_species_corrected_on_the_pet_just_put_on_file(services: Services, make_chat: ChatFactory) -> None:
    customer = await customer_of(services, EN)
    chat = make_chat(EN)
    await chat.push("nail trim for Pumpkin on sunday 12pm, he's a dog")
    assert summary_time(chat, EN)
    await chat.push("oops sorry Pumpkin is my cat, not a dog")
    if say(EN, "btn.affirm") in chat.labels:
        await chat.press(say(EN, "btn.affirm"))  # vaccinated
    assert summary_time(chat, EN) and "Nail trim" in chat.text
    await chat.press(say(EN, "btn.confirm"))
    [pet] = (await services.customers.get(customer.id)).pets  # type: ignore[union-attr]  # the customer exists
    assert pet.species == "cat"
    assert [b.service_id for b in await bookings_of(services, customer.id) if b.status.value == "confirmed"] == [
        "nail_trim"
    ]


async def test_a_pet_described_first_is_the_one_booked_next(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN)
    await chat.push("hi, I have a little shih tzu called Pepper, 5kg, fully vaccinated in july")
    assert say(EN, "info.new_pet", pet="Pepper") in chat.text
    await chat.push("can she get a bath tomorrow afternoon?")
    assert say(EN, "ask.pet_name") not in chat.text
    assert say(EN, "ask.time_period", day=day_text(EN, SUN), period=say(EN, "period.afternoon")) in chat.text


async def test_a_word_about_a_dog_puts_no_pet_on_file(services: Services, make_chat: ChatFactory) -> None:
    customer = await customer_of(services, "zh")
    chat = make_chat("zh")
    await chat.push("我家狗狗怕吹风机")
    assert (await services.customers.get(customer.id)).pets == ()  # type: ignore[union-attr]  # it exists
