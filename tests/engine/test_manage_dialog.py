"""Managing an existing booking in chat: listing, rescheduling (also into a time taken
meanwhile), cancelling (also too late), and adding an extra that fits or does not fit."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.bootstrap import Services
from core.models import BookingStatus
from core.results import BookingView
from tests.engine.conftest import (
    LANGS,
    MON,
    NEXT_SAT,
    SUN,
    ChatFactory,
    book,
    day_text,
    other_customer,
    payloads,
    say,
    when,
    with_pet,
)
from tests.helpers import at

pytestmark = pytest.mark.asyncio

SMALL_BATH = {"zh": "小型犬洗澡", "en": "Dog bath (small)"}
DEWORMING = {"zh": "体内外驱虫", "en": "Deworming"}


async def booked_customer(services: Services, lang: str, start=None, service: str = "dog_bath_small"):
    """A customer with a small dog and one confirmed bath (Sunday 15:00 unless told)."""
    customer, pet = await with_pet(services, lang)
    booking = await book(services, service, start or at(SUN, "15:00"), customer=customer, pet=pet)
    return customer, pet, booking


async def confirm_move(chat, lang: str, bath: BookingView, new: str) -> None:
    """The bot names the booking and both times, and nothing moves until the customer says yes."""
    assert chat.text == say(
        lang, "manage.reschedule_confirm", code=bath.code, service=SMALL_BATH[lang], old=when(lang, bath.start), new=new
    )
    assert chat.labels == [say(lang, "btn.confirm_change"), say(lang, "btn.keep")]
    await chat.press(say(lang, "btn.confirm_change"))


async def current(services: Services, booking: BookingView) -> BookingView:
    again = await services.bookings.get("pawspa", booking.id)
    assert again is not None
    return again


# ----------------------------------------------------------------------------- listing


@pytest.mark.parametrize(("lang", "typed"), [("en", "my bookings")])
async def test_my_bookings_when_there_are_none(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    chat = make_chat(lang)
    await chat.push(typed)
    assert chat.text == say(lang, "manage.none")
    assert chat.labels == [say(lang, "btn.book")]
    await chat.press(say(lang, "btn.book"))
    assert chat.text == say(lang, "ask.service")


@pytest.mark.parametrize(("lang", "typed"), [("zh", "我的预约"), ("en", "my bookings")])
async def test_my_bookings_lists_codes_services_and_local_times(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    customer, pet, bath = await booked_customer(services, lang)
    grooming = await book(services, "grooming", at(NEXT_SAT, "10:00"), customer=customer, pet=pet)
    assert grooming.status == BookingStatus.PENDING
    chat = make_chat(lang)
    await chat.push(typed)
    lines = chat.text.split("\n")
    assert lines[0] == say(lang, "manage.list")
    assert lines[1] == say(
        lang, "manage.line", code=bath.code, service=SMALL_BATH[lang], when=when(lang, at(SUN, "15:00")), status=""
    )
    assert lines[2] == say(
        lang,
        "manage.line",
        code=grooming.code,
        service={"zh": "精致美容造型", "en": "Full grooming"}[lang],
        when=when(lang, at(NEXT_SAT, "10:00")),
        status=say(lang, "manage.pending_mark"),
    )
    assert payloads(chat) == [f"b:{bath.id}", f"b:{grooming.id}"]

    await chat.press(when(lang, at(NEXT_SAT, "10:00")))
    assert chat.text == say(
        lang,
        "ask.booking_action",
        code=grooming.code,
        service={"zh": "精致美容造型", "en": "Full grooming"}[lang],
        when=when(lang, at(NEXT_SAT, "10:00")) + say(lang, "manage.pending_mark"),  # still awaiting the shop
    )
    assert chat.labels == [say(lang, "btn.reschedule"), say(lang, "btn.cancel_booking"), say(lang, "btn.add_service")]
    await chat.press(say(lang, "btn.cancel_booking"))
    assert chat.text == say(
        lang,
        "manage.cancel_confirm",
        service={"zh": "精致美容造型", "en": "Full grooming"}[lang],
        when=when(lang, at(NEXT_SAT, "10:00")),
        code=grooming.code,
    )
    await chat.press(say(lang, "btn.cancel_booking"))
    assert chat.text == say(lang, "manage.cancelled", code=grooming.code)
    assert (await current(services, grooming)).status == BookingStatus.CANCELLED
    assert (await current(services, bath)).status == BookingStatus.CONFIRMED


async def test_a_booking_can_be_picked_by_its_code(services: Services, make_chat: ChatFactory) -> None:
    customer, pet, bath = await booked_customer(services, "zh")
    await book(services, "nail_trim", at(MON, "11:00"), customer=customer, pet=pet)
    chat = make_chat("zh")
    await chat.push("改期")
    assert say("zh", "ask.which_booking") in chat.text
    await chat.push(f"就是 {bath.code.lower()} 这个")
    assert say("zh", "manage.reschedule_day", service=SMALL_BATH["zh"], when=when("zh", at(SUN, "15:00"))) in chat.text


# ----------------------------------------------------------------------------- reschedule


@pytest.mark.parametrize(("lang", "typed"), [("zh", "改期"), ("en", "reschedule")])
async def test_reschedule_by_buttons(services: Services, make_chat: ChatFactory, lang: str, typed: str) -> None:
    _, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push(typed)
    assert say(lang, "manage.reschedule_day", service=SMALL_BATH[lang], when=when(lang, at(SUN, "15:00"))) in chat.text
    assert say(lang, "ask.day") in chat.text
    await chat.press({"zh": "11/23", "en": "Mon 23"}[lang])
    assert chat.text == say(lang, "ask.time", day=day_text(lang, MON))
    await chat.press(say(lang, "btn.afternoon"))
    await chat.press("16:00")
    assert (await current(services, bath)).start == at(SUN, "15:00")  # not moved before the yes
    await confirm_move(chat, lang, bath, when(lang, at(MON, "16:00")))
    assert chat.text == say(lang, "manage.rescheduled", code=bath.code, when=when(lang, at(MON, "16:00")))
    moved = await current(services, bath)
    assert (moved.start, moved.code, moved.status) == (at(MON, "16:00"), bath.code, BookingStatus.CONFIRMED)
    assert moved.end - moved.start == timedelta(minutes=60)


@pytest.mark.parametrize(("lang", "typed"), [("zh", "改到下周六下午"), ("en", "reschedule to next saturday afternoon")])
async def test_reschedule_to_a_named_day_and_period(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    _, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push(typed)
    assert say(lang, "ask.time_period", day=day_text(lang, NEXT_SAT), period=say(lang, "period.afternoon")) in chat.text
    assert "15:00" in chat.labels and "10:00" not in chat.labels
    await chat.press("15:00")
    await confirm_move(chat, lang, bath, when(lang, at(NEXT_SAT, "15:00")))
    assert chat.text == say(lang, "manage.rescheduled", code=bath.code, when=when(lang, at(NEXT_SAT, "15:00")))
    assert (await current(services, bath)).start == at(NEXT_SAT, "15:00")
    history = [e.action for e in await services.bookings.history(bath.id)]
    assert "rescheduled" in history


@pytest.mark.parametrize("lang", LANGS)
async def test_reschedule_into_a_time_taken_meanwhile(services: Services, make_chat: ChatFactory, lang: str) -> None:
    _, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "改到下周六下午", "en": "reschedule to next saturday afternoon"}[lang])
    assert "15:00" in chat.labels
    other = await other_customer(services)
    for staff in ("xiaomei", "ajie"):  # the time goes to someone else before the tap
        await book(services, "dog_bath_small", at(NEXT_SAT, "15:00"), customer=other, staff=staff)
    await chat.press("15:00")
    assert say(lang, "booked.taken") in chat.text
    offered = [label for label in chat.labels if label != say(lang, "btn.more_days")]
    assert offered and when(lang, at(NEXT_SAT, "15:00")) not in offered
    assert (await current(services, bath)).start == at(SUN, "15:00")  # nothing moved yet

    await chat.press(offered[0])
    await confirm_move(chat, lang, bath, offered[0])
    moved = await current(services, bath)
    assert when(lang, moved.start) == offered[0]
    assert chat.text == say(lang, "manage.rescheduled", code=bath.code, when=offered[0])


@pytest.mark.parametrize(("lang", "typed"), [("zh", "改到下周六下午3点"), ("en", "reschedule to next saturday 3pm")])
async def test_reschedule_to_a_named_day_and_time(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    _, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push(typed)
    # the day is named: straight to "move it from ... to ...?", not "which day?" first
    which_day = say(lang, "manage.reschedule_day", service=SMALL_BATH[lang], when=when(lang, at(SUN, "15:00")))
    assert which_day not in chat.text
    await confirm_move(chat, lang, bath, when(lang, at(NEXT_SAT, "15:00")))
    assert say(lang, "manage.rescheduled", code=bath.code, when=when(lang, at(NEXT_SAT, "15:00"))) in chat.text
    assert (await current(services, bath)).start == at(NEXT_SAT, "15:00")


@pytest.mark.parametrize("lang", LANGS)
async def test_reschedule_to_a_typed_time_that_is_taken(services: Services, make_chat: ChatFactory, lang: str) -> None:
    _, _, bath = await booked_customer(services, lang)
    other = await other_customer(services)
    for staff in ("xiaomei", "ajie"):
        await book(services, "dog_bath_small", at(NEXT_SAT, "15:00"), customer=other, staff=staff)
    chat = make_chat(lang)
    await chat.push({"zh": "改到下周六下午3点", "en": "reschedule to next saturday 3pm"}[lang])
    assert say(lang, "info.time_not_free", time="15:00", day=day_text(lang, NEXT_SAT), times="").strip() in chat.text
    offered = [label for label in chat.labels if label != say(lang, "btn.more_days")]
    await chat.press(offered[-1])
    await confirm_move(chat, lang, bath, offered[-1])
    assert chat.text == say(lang, "manage.rescheduled", code=bath.code, when=offered[-1])


@pytest.mark.parametrize("lang", ["en"])
async def test_reschedule_too_late(services: Services, make_chat: ChatFactory, clock, lang: str) -> None:
    _, _, bath = await booked_customer(services, lang)
    clock.set(at(SUN, "14:00"))
    chat = make_chat(lang)
    await chat.push({"zh": "改期", "en": "reschedule"}[lang])
    assert chat.text == say(lang, "manage.reschedule_too_late", hours="2", phone="+86 21 5555 0188")
    assert chat.labels == [say(lang, "btn.human")]
    assert (await current(services, bath)).start == at(SUN, "15:00")


# ----------------------------------------------------------------------------- cancel


@pytest.mark.parametrize(("lang", "typed"), [("zh", "取消预约"), ("en", "cancel my booking")])
async def test_cancel_booking(services: Services, make_chat: ChatFactory, lang: str, typed: str) -> None:
    customer, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push(typed)
    assert chat.text == say(
        lang, "manage.cancel_confirm", service=SMALL_BATH[lang], when=when(lang, at(SUN, "15:00")), code=bath.code
    )
    assert chat.labels == [say(lang, "btn.cancel_booking"), say(lang, "btn.keep")]
    await chat.press(say(lang, "btn.cancel_booking"))
    assert chat.text == say(lang, "manage.cancelled", code=bath.code)
    assert (await current(services, bath)).status == BookingStatus.CANCELLED
    assert await services.bookings.upcoming("pawspa", customer.id) == []
    assert at(SUN, "15:00") in [
        s.start for s in await services.bookings.free_slots("pawspa", "dog_bath_small", SUN, staff_id=bath.staff_id)
    ]


@pytest.mark.parametrize("lang", ["zh"])
async def test_cancel_in_idle_means_cancel_my_booking_and_can_be_kept(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    _, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "取消", "en": "cancel"}[lang])
    assert (
        say(lang, "manage.cancel_confirm", service=SMALL_BATH[lang], when=when(lang, at(SUN, "15:00")), code=bath.code)
        == chat.text
    )
    await chat.push({"zh": "不", "en": "no"}[lang])
    assert chat.text == say(lang, "manage.kept")
    assert (await current(services, bath)).status == BookingStatus.CONFIRMED


@pytest.mark.parametrize("lang", LANGS)
async def test_cancel_too_late(services: Services, make_chat: ChatFactory, clock, lang: str) -> None:
    _, _, bath = await booked_customer(services, lang)
    clock.set(at(SUN, "13:30"))  # 90 minutes before; the shop's cut-off is 2 hours
    chat = make_chat(lang)
    await chat.push({"zh": "取消预约", "en": "cancel my booking"}[lang])
    assert chat.text == say(lang, "manage.cancel_too_late", hours="2", phone="+86 21 5555 0188")
    assert chat.labels == [say(lang, "btn.human")]
    assert (await current(services, bath)).status == BookingStatus.CONFIRMED


@pytest.mark.parametrize("lang", ["en"])
async def test_cancel_confirmed_then_cut_off_passes_before_the_tap(
    services: Services, make_chat: ChatFactory, clock, lang: str
) -> None:
    _, _, bath = await booked_customer(services, lang)
    clock.set(at(SUN, "12:30"))
    chat = make_chat(lang)
    await chat.push({"zh": "取消预约", "en": "cancel my booking"}[lang])
    clock.set(at(SUN, "13:30"))
    await chat.press(say(lang, "btn.cancel_booking"))
    assert chat.text == say(lang, "manage.cancel_too_late", hours="2", phone="+86 21 5555 0188")
    assert (await current(services, bath)).status == BookingStatus.CONFIRMED


# ----------------------------------------------------------------------------- add-ons


@pytest.mark.parametrize(("lang", "typed"), [("zh", "加个驱虫"), ("en", "add deworming please")])
async def test_addon_that_fits(services: Services, make_chat: ChatFactory, lang: str, typed: str) -> None:
    _, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push(typed)
    assert chat.text == say(
        lang,
        "manage.addon_confirm",
        addon=DEWORMING[lang],
        price="¥50",
        minutes=10,
        code=bath.code,
        service=SMALL_BATH[lang],
        when=when(lang, at(SUN, "15:00")),
        total="¥138",
    )
    assert (await current(services, bath)).addons == ()  # the price is said before anything changes
    await chat.press(say(lang, "btn.add_it"))
    assert chat.text == say(
        lang,
        "manage.addon_added",
        addon=DEWORMING[lang],
        price="¥50",
        total="¥138",
        service=SMALL_BATH[lang],
        when=when(lang, at(SUN, "15:00")),
        end="16:10",
    )
    now = await current(services, bath)
    assert now.addons == ("deworming",)
    assert (now.start, now.end) == (at(SUN, "15:00"), at(SUN, "16:10"))
    assert now.price_cents == 88_00 + 50_00


@pytest.mark.parametrize(("lang", "typed"), [("zh", "加个驱虫"), ("en", "add deworming please")])
async def test_addon_that_does_not_fit_offers_times_that_do(
    services: Services, make_chat: ChatFactory, lang: str, typed: str
) -> None:
    customer, pet = await with_pet(services, lang)
    # 15:00-16:15 with coat conditioner, then 10 minutes' cleaning: free again at 16:25...
    bath = await book(services, "dog_bath_small", at(SUN, "15:00"), customer=customer, pet=pet, addons=("conditioner",))
    other = await other_customer(services)
    # ...and someone else right after with the same groomer: 10 more minutes do not fit.
    await book(services, "dog_bath_small", at(SUN, "16:30"), customer=other, staff=bath.staff_id)
    chat = make_chat(lang)
    await chat.push(typed)
    await chat.press(say(lang, "btn.add_it"))
    assert say(lang, "manage.addon_no_fit", addon=DEWORMING[lang]) in chat.text
    offered = [label for label in chat.labels if label != say(lang, "btn.more_days")]
    assert offered
    assert (await current(services, bath)).addons == ("conditioner",)  # nothing changed yet

    await chat.press(offered[0])
    assert say(lang, "btn.confirm_change") in chat.labels
    assert (await current(services, bath)).addons == ("conditioner",)
    await chat.press(say(lang, "btn.confirm_change"))
    moved = await current(services, bath)
    assert moved.addons == ("conditioner", "deworming")
    assert when(lang, moved.start) == offered[0]
    assert moved.end - moved.start == timedelta(minutes=85)
    assert chat.text == say(
        lang,
        "manage.addon_added",
        addon=DEWORMING[lang],
        price="¥50",
        total="¥178",
        service=SMALL_BATH[lang],
        when=offered[0],
        end=(moved.end + timedelta(hours=8)).strftime("%H:%M"),
    )


@pytest.mark.parametrize("lang", ["zh"])
async def test_addon_chosen_from_the_booking_actions(services: Services, make_chat: ChatFactory, lang: str) -> None:
    _, _, bath = await booked_customer(services, lang)
    chat = make_chat(lang)
    await chat.push({"zh": "我的预约", "en": "my bookings"}[lang])
    await chat.press(when(lang, at(SUN, "15:00")))
    await chat.press(say(lang, "btn.add_service"))
    assert chat.text == say(lang, "ask.addon", code=bath.code)
    teeth = {"zh": "刷牙", "en": "Teeth brushing"}[lang]
    assert f"{teeth} +¥30" in chat.labels and f"{DEWORMING[lang]} +¥50" in chat.labels  # each with its price
    await chat.press(teeth)
    await chat.press(say(lang, "btn.add_it"))
    assert (await current(services, bath)).addons == ("teeth",)
    await chat.push({"zh": "加个刷牙", "en": "add teeth brushing"}[lang])
    assert chat.text == say(lang, "manage.addon_already", addon=teeth)  # deworming could still be added
