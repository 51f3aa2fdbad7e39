"""English the way customers type it (issue 9, the weaker language of the blind rounds): "pls cancel
rocky's saturday appt", "can we do sunday instead?", "can i come at 11 instead of 10", "what time is
rocky's appointment again?", "she needs her eyes checked ... earliest you have?", "Rocky bath Sunday
2", "whatever's free in the afternoon", "around lunch", "a 4 month old lab, Toby". Each is read as
a receptionist reads it; a change to a booking on file is still asked before it is done. Clock:
Saturday 21 Nov 2026 09:00, Shanghai."""

from __future__ import annotations

from datetime import date

import pytest

from bot.bootstrap import Services
from core.customers import CustomerView, PetView
from core.models import BookingStatus
from tests.engine.conftest import SUN, ChatFactory, book, customer_of, day_text, say, when
from tests.engine.test_booking_dialog import bookings_of
from tests.engine.test_receptionist import at, summary_time

EN = "en"
TUE = date(2026, 11, 24)  # pawspa is closed on Tuesdays; clearsight is open


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee is tested on both databases
    elsewhere); this keeps CI's clock down."""
    return sqlite_services


async def rocky(services: Services) -> tuple[CustomerView, PetView]:
    customer = await customer_of(services, EN)
    pet = await services.customers.add_pet(
        customer.id, name="Rocky", species="dog", size="large", vaccinated_on=date(2026, 6, 1)
    )
    return customer, pet


async def test_cancel_with_an_abbreviation_asks_then_cancels(services: Services, make_chat: ChatFactory) -> None:
    customer, pet = await rocky(services)
    booking = await book(services, "dog_bath_large", at(SUN, "10:00"), customer=customer, pet=pet)
    chat = make_chat(EN)
    await chat.push("pls cancel rocky's sunday appt, he's sick")
    assert booking.code in chat.text and say(EN, "btn.keep") in chat.labels  # named, asked, not yet done
    assert [b.status for b in await bookings_of(services, customer.id)] == [BookingStatus.CONFIRMED]
    await chat.push("yes")
    assert [b.status for b in await bookings_of(services, customer.id)] == [BookingStatus.CANCELLED]


async def test_a_question_about_cancelling_cancels_nothing(services: Services, make_chat: ChatFactory) -> None:
    customer, pet = await rocky(services)
    booking = await book(services, "dog_bath_large", at(SUN, "10:00"), customer=customer, pet=pet)
    chat = make_chat(EN)
    await chat.push("how do i cancel if something comes up?")
    assert say(EN, "btn.keep") not in chat.labels and booking.code not in chat.text


async def test_another_day_instead_keeps_the_time_and_asks(services: Services, make_chat: ChatFactory) -> None:
    customer, pet = await rocky(services)
    booking = await book(services, "dog_bath_large", at(SUN, "10:00"), customer=customer, pet=pet)
    chat = make_chat(EN)
    await chat.push("something came up sunday, can we do monday instead? same time is fine")
    assert when(EN, at(date(2026, 11, 23), "10:00")) in chat.text and booking.code in chat.text
    await chat.push("yes please")
    rows = await bookings_of(services, customer.id)
    assert [(r.status, r.id) for r in rows] == [(BookingStatus.CONFIRMED, booking.id)]
    assert when(EN, at(date(2026, 11, 23), "10:00")) in chat.text


async def test_instead_of_names_the_old_time_last(services: Services, make_chat: ChatFactory) -> None:
    customer = await customer_of(services, EN, shop="clearsight")
    booking = await book(services, "adult_exam", at(TUE, "10:00"), shop="clearsight", customer=customer)
    chat = make_chat(EN, shop="clearsight")
    await chat.push("running late for tuesday, can i come at 11 instead of 10")
    assert booking.code in chat.text and when(EN, at(TUE, "11:00")) in chat.text
    await chat.push("ok")
    assert when(EN, at(TUE, "11:00")) in chat.text


async def test_what_time_is_the_appointment_shows_it(services: Services, make_chat: ChatFactory) -> None:
    customer, pet = await rocky(services)
    await book(services, "dog_bath_large", at(SUN, "10:00"), customer=customer, pet=pet)
    chat = make_chat(EN)
    await chat.push("what time is rocky's appointment again?")
    assert when(EN, at(SUN, "10:00")) in chat.text
    assert say(EN, "ask.service") not in chat.text  # no new booking started


async def test_a_need_and_earliest_books_the_childs_exam_soonest(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN, shop="clearsight")
    await chat.push("my daughter (8) needs her eyes checked, she's been squinting at the board. earliest you have?")
    assert summary_time(chat, EN)
    assert "Child" in chat.text  # the child's exam, not the adult's
    assert say(EN, "ask.day") not in chat.text


async def test_a_bare_hour_after_the_day_is_the_time(services: Services, make_chat: ChatFactory) -> None:
    await rocky(services)
    chat = make_chat(EN)
    await chat.push("Rocky bath Sunday 2")
    assert summary_time(chat, EN) and when(EN, at(SUN, "14:00")) in chat.text


async def test_whatever_is_free_in_a_part_of_the_day(services: Services, make_chat: ChatFactory) -> None:
    await rocky(services)
    chat = make_chat(EN)
    await chat.push("bath for rocky sunday")
    assert say(EN, "ask.time", day=day_text(EN, SUN)) in chat.text
    await chat.push("whatever's free in the afternoon")
    assert summary_time(chat, EN) and when(EN, at(SUN, "12:00")) in chat.text


async def test_around_lunch_is_noon(services: Services, make_chat: ChatFactory) -> None:
    await rocky(services)
    chat = make_chat(EN)
    await chat.push("bath for rocky sunday around lunch")
    assert summary_time(chat, EN) and when(EN, at(SUN, "12:00")) in chat.text


async def test_a_name_after_the_description(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN)
    await chat.push("hiya, any openings sunday for a puppy's first bath? he's a 4 month old lab, Toby")
    assert say(EN, "ask.pet_name") not in chat.text
    assert "Toby" in chat.text


async def test_is_it_still_on_tells_the_booking(services: Services, make_chat: ChatFactory) -> None:
    customer, pet = await rocky(services)
    booking = await book(services, "dog_bath_large", at(SUN, "10:00"), customer=customer, pet=pet)
    chat = make_chat(EN)
    await chat.push("is my booking still on for sunday?")
    assert booking.code in chat.text and when(EN, at(SUN, "10:00")) in chat.text
    assert say(EN, "btn.reschedule") not in chat.labels  # told, not asked what to change


async def test_the_service_turned_down_is_not_the_one_booked(services: Services, make_chat: ChatFactory) -> None:
    await rocky(services)
    chat = make_chat(EN)
    await chat.push("full groom for rocky on sunday at 10")
    assert summary_time(chat, EN) and "Full grooming" in chat.text
    await chat.push("wait no, make it the bath not the groom")
    assert summary_time(chat, EN) and "Dog bath (large)" in chat.text
    assert when(EN, at(SUN, "10:00")) in chat.text  # the day and time stay


async def test_is_a_staff_member_in_that_day(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN, shop="clearsight")
    await chat.push("eye exam for me monday morning")
    monday = date(2026, 11, 23)
    assert say(EN, "ask.time_period", day=day_text(EN, monday), period=say(EN, "period.morning")) in chat.text
    await chat.push("is dr wang in that day?")
    assert say(EN, "info.staff_in", staff="Dr. Wang", day=day_text(EN, monday)) in chat.text
    other = make_chat(EN, shop="clearsight", user="u2")
    await other.push("eye exam for me sunday morning")
    await other.push("is dr wang in that day?")  # Dr. Wang does not work on Sundays
    assert say(EN, "info.staff_off_day", staff="Dr. Wang", day=day_text(EN, SUN)) in other.text


async def test_push_it_back_an_hour(services: Services, make_chat: ChatFactory) -> None:
    customer, pet = await rocky(services)
    booking = await book(services, "dog_bath_large", at(SUN, "10:00"), customer=customer, pet=pet)
    chat = make_chat(EN)
    await chat.push("hi! could we push rocky's bath back an hour?")
    assert booking.code in chat.text and when(EN, at(SUN, "11:00")) in chat.text  # an hour, not a day
    await chat.push("great")
    assert when(EN, at(SUN, "11:00")) in chat.text


async def test_a_hurt_pet_after_a_visit_goes_to_staff(services: Services, make_chat: ChatFactory) -> None:
    await rocky(services)
    chat = make_chat(EN)
    await chat.push("rocky came home with a cut on his paw after his groom yesterday. not ok")
    assert say(EN, "ask.day") not in chat.text  # no booking started from "groom"
    await chat.push("hello?")
    assert chat.replies == []  # staff have the chat


async def test_asking_whether_to_book_starts_no_booking(services: Services, make_chat: ChatFactory) -> None:
    chat = make_chat(EN, shop="clearsight")
    await chat.push("can i just walk in for an eye test or do i need to book?")
    assert say(EN, "ask.day") not in chat.text and say(EN, "btn.confirm") not in chat.labels


async def test_anything_after_lunch(services: Services, make_chat: ChatFactory) -> None:
    await rocky(services)
    chat = make_chat(EN)
    await chat.push("hey! rocky bath sunday?")
    await chat.push("anything after lunch")
    assert say(EN, "ask.time_after", day=day_text(EN, SUN), time="13:00") in chat.text
