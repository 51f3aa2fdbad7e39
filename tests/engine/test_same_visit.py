"""One more service on the day of a booking on file (issue 9): "豆豆周六那个能不能顺便剪个指甲" /
"can I also get Max's nails done on Sunday" is offered right after that booking, said so, and
booked only on the yes; the booking on file is never touched. Clock: Saturday 21 Nov 2026 09:00."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.bootstrap import Services
from core.models import BookingStatus
from tests.engine.conftest import LANGS, SUN, ChatFactory, book, say, with_pet
from tests.engine.test_booking_dialog import bookings_of
from tests.engine.test_receptionist import at, summary_time


@pytest.fixture
def services(sqlite_services: Services) -> Services:
    """Dialog behaviour only: SQLite is enough (the booking guarantee is tested on both databases
    elsewhere); this keeps CI's clock down."""
    return sqlite_services


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


ALSO = {"en": "can I also get Max's nails done on Sunday while he's there?", "zh": "豆豆周日那个能不能顺便剪个指甲"}
BATH = {"en": "Dog bath (small)", "zh": "小型犬洗澡"}


@pytest.mark.parametrize("lang", LANGS)
async def test_another_service_goes_right_after_the_visit(
    services: Services, make_chat: ChatFactory, lang: str
) -> None:
    customer, pet = await with_pet(services, lang)
    bath = await book(services, "dog_bath_small", at(SUN, "14:00"), customer=customer, pet=pet)
    chat = make_chat(lang)
    await chat.push(ALSO[lang])
    if say(lang, "btn.affirm") in chat.labels:
        await chat.press(say(lang, "btn.affirm"))  # vaccinated
    ends = bath.end.astimezone(at(SUN, "14:00").tzinfo).strftime("%H:%M")
    assert say(lang, "info.right_after", pet=pet.name, service=BATH[lang], time=ends) in chat.text
    assert summary_time(chat, lang)
    await chat.press(say(lang, "btn.confirm"))
    rows = {b.service_id: b for b in await bookings_of(services, customer.id) if b.status == BookingStatus.CONFIRMED}
    assert set(rows) == {"dog_bath_small", "nail_trim"}
    assert aware(rows["nail_trim"].start_at) == bath.end
    assert aware(rows["dog_bath_small"].start_at) == bath.start  # untouched


@pytest.mark.parametrize("lang", LANGS)
async def test_a_time_said_wins_over_right_after(services: Services, make_chat: ChatFactory, lang: str) -> None:
    customer, pet = await with_pet(services, lang)
    await book(services, "dog_bath_small", at(SUN, "14:00"), customer=customer, pet=pet)
    chat = make_chat(lang)
    typed = {"en": "can I also book Max a nail trim on Sunday at 11am", "zh": "周日上午11点也给豆豆剪个指甲"}
    await chat.push(typed[lang])
    if say(lang, "btn.affirm") in chat.labels:
        await chat.press(say(lang, "btn.affirm"))
    assert say(lang, "info.right_after", pet=pet.name, service=BATH[lang], time="15:00") not in chat.text
    assert summary_time(chat, lang) and "11:00" in chat.text
