"""'Same as last time' in chat (bot/engine/last_visit.py): booking a bath for a pet whose last
completed bath has visit notes, the customer is asked once, before the summary, whether to use the
same again; yes puts the notes on the new booking for staff (the groomer's notes included, never
shown in chat), no goes straight on. A pet without notes is not asked, and another customer's pet
of the same name never lends its notes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.bootstrap import Services
from core.customers import CustomerView, PetView
from core.models import Booking, BookingStatus
from core.records import record_visit_notes
from core.results import Actor
from tests.engine.conftest import LANGS, PET_NAMES, ChatFactory, book, other_customer, payloads, say, with_pet
from tests.helpers import MON, at

STAFF = Actor.staff("xiaomei")
PRODUCTS, BLADE, GROOMER = "燕麦沐浴露", "10mm", "怕吹风机，要用低档"
ASK = {
    "zh": "豆豆下周六上午10点洗澡，疫苗都打过了",
    "en": "bath for Max on Sat 28 Nov at 10am, he's vaccinated",
}
AGAIN = {"zh": "豆豆下周六下午4点也洗一次澡", "en": "another bath for Max on Sat 28 Nov at 4pm"}


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee, the unit of work and the
    channels are tested on both databases elsewhere); this keeps CI's clock down."""
    return sqlite_services


async def _visited(
    services: Services, customer: CustomerView, pet: PetView, notes: dict[str, str], hour: str = "10:00"
) -> None:
    """A completed bath last Monday with what staff recorded at it."""
    visit = await book(services, "dog_bath_small", at(MON, hour), customer=customer, pet=pet)
    await services.bookings.mark_attendance("pawspa", visit.id, "completed", STAFF)
    if notes:
        shop = services.config.shops["pawspa"]
        await record_visit_notes(services.db, services.clock, shop, "pawspa", visit.id, notes, STAFF)


def _question(lang: str) -> str:
    details = say(lang, "visit.detail_sep").join(
        [say(lang, "visit.products", text=PRODUCTS), say(lang, "visit.blade", text=BLADE)]
    )
    return say(lang, "visit.same_as_last", pet=PET_NAMES[lang], details=details)


async def _new_booking(services: Services, customer_id: int) -> Booking:
    async with services.db.reading() as s:
        rows = await s.scalars(
            select(Booking).where(
                Booking.customer_id == customer_id,
                Booking.status == BookingStatus.CONFIRMED,
                Booking.start_at > at(MON, "23:00"),
            )
        )
        [row] = list(rows)
        return row


@pytest.mark.parametrize("lang", LANGS)
async def test_yes_puts_last_times_notes_on_the_booking(services: Services, make_chat: ChatFactory, lang: str) -> None:
    customer, pet = await with_pet(services, lang)
    await _visited(services, customer, pet, {"products": PRODUCTS, "blade": BLADE, "notes": GROOMER})
    chat = make_chat(lang)
    await chat.push(ASK[lang])
    assert _question(lang) in chat.text
    assert payloads(chat)[-2:] == ["lv:y", "lv:n"]
    assert say(lang, "summary.title") not in chat.text  # the summary waits for the answer
    assert GROOMER not in chat.text  # the groomer's notes are for staff

    await chat.push(say(lang, "visit.btn_same"), payload="lv:y")
    assert say(lang, "visit.same_yes") in chat.text
    assert say(lang, "summary.title") in chat.text and "c:ok" in payloads(chat)

    await chat.push(say(lang, "btn.change_time"), payload="c:other")  # another time: not asked again
    if not any(p.startswith("s:") for p in payloads(chat)):  # the day's times by part of the day first
        await chat.push("", payload="p:afternoon")
    slot = next(p for p in payloads(chat) if p.startswith("s:"))
    await chat.push("", payload=slot)
    assert _question(lang) not in chat.text and say(lang, "summary.title") in chat.text
    await chat.push(say(lang, "btn.confirm"), payload="c:ok")
    booking = await _new_booking(services, customer.id)
    for part in (PRODUCTS, BLADE, GROOMER):  # all of it on the booking, for the groomer
        assert part in booking.notes
    assert booking.notes.count(PRODUCTS) == 1

    chat2 = make_chat(lang)  # the next booking dialog asks again
    await chat2.push(AGAIN[lang])
    assert _question(lang) in chat2.text


@pytest.mark.parametrize("lang", LANGS)
async def test_no_goes_on_to_the_summary_and_keeps_the_booking_bare(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    customer, pet = await with_pet(services, lang)
    await _visited(services, customer, pet, {"products": PRODUCTS, "blade": BLADE})
    chat = make_chat(lang)
    await chat.push(ASK[lang])
    assert _question(lang) in chat.text
    await chat.push("不用了" if lang == "zh" else "no")  # typed: the answer to this question, not "other times"
    assert say(lang, "summary.title") in chat.text and "c:ok" in payloads(chat)
    assert say(lang, "visit.same_yes") not in chat.text
    await chat.push(say(lang, "btn.confirm"), payload="c:ok")
    booking = await _new_booking(services, customer.id)
    assert booking.notes == ""


@pytest.mark.parametrize("lang", LANGS)
async def test_a_pet_without_notes_is_not_asked(services: Services, make_chat: ChatFactory, lang: str) -> None:
    customer, pet = await with_pet(services, lang)
    await _visited(services, customer, pet, {"products": PRODUCTS}, hour="10:00")  # an older bath had some
    await _visited(services, customer, pet, {}, hour="14:00")  # the last one: staff kept nothing
    chat = make_chat(lang)
    await chat.push(ASK[lang])
    assert say(lang, "summary.title") in chat.text
    assert PRODUCTS not in chat.text and "lv:y" not in payloads(chat)


@pytest.mark.parametrize("lang", LANGS)
async def test_another_customers_pet_never_lends_its_notes(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    other = await other_customer(services)
    namesake = await services.customers.add_pet(other.id, name=PET_NAMES[lang], species="dog", size="small")
    await _visited(services, other, namesake, {"products": PRODUCTS, "blade": BLADE})
    await with_pet(services, lang)  # the same name, no visit yet
    chat = make_chat(lang)
    await chat.push(ASK[lang])
    assert say(lang, "summary.title") in chat.text
    assert PRODUCTS not in chat.text and BLADE not in chat.text and "lv:y" not in payloads(chat)
