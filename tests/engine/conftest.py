"""Helpers for the transcript tests of the conversation engine.

Every test talks to the real engine through ``CollectingChannel`` on the ``services`` fixture
(SQLite and PostgreSQL) with the clock fixed at Saturday 2026-11-21 09:00 in Shanghai.
What is asserted is what a customer would see: catalog texts (``say``), booking codes, times
in the shop's zone (``when``) and the buttons offered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.customers import CustomerView, PetView
from core.i18n import texts
from core.results import Actor, Booked, BookingView
from tests.helpers import SHANGHAI
from tests.support.collecting import CollectingChannel

LANGS = ["zh", "en"]
NAMES = {"zh": "王女士", "en": "Alice"}
PET_NAMES = {"zh": "豆豆", "en": "Max"}
SAT, SUN, MON, TUE, WED, THU, FRI, NEXT_SAT = (date(2026, 11, d) for d in range(21, 29))


def say(lang: str, key: str, **values: Any) -> str:
    """The catalog text a customer sees for ``key``."""
    return texts(lang).t(key, **values)


def when(lang: str, moment: datetime) -> str:
    """A moment written the way the customer sees it (shop zone, customer's language)."""
    return texts(lang).format_when(moment, SHANGHAI)


def day_text(lang: str, day: date) -> str:
    return texts(lang).format_date(day)


def head(lang: str, key: str, **values: Any) -> str:
    """The first line of a catalog text (for texts followed by more lines)."""
    return say(lang, key, **values).split("\n")[0]


ChatFactory = Callable[..., CollectingChannel]


@pytest.fixture
def make_chat(services: Services) -> ChatFactory:
    """``make_chat(lang, shop=..., user=..., name=..., hint=True)`` -> a chat as one customer."""

    def make(
        lang: str = "zh",
        *,
        shop: str = "pawspa",
        user: str = "u1",
        name: str | None = None,
        hint: bool = True,
        engine: Any = None,
    ) -> CollectingChannel:
        return CollectingChannel(
            engine or services.engine,
            shop,
            user=user,
            display_name=NAMES[lang] if name is None else name,
            language_hint=lang if hint else None,
        )

    return make


async def customer_of(services: Services, lang: str, *, shop: str = "pawspa", user: str = "u1") -> CustomerView:
    """The customer behind the test channel's ``user`` (created as the engine would)."""
    return await services.customers.identify(shop, "test", user, display_name=NAMES[lang], language=lang)


async def with_pet(
    services: Services,
    lang: str,
    *,
    user: str = "u1",
    pet: str | None = None,
    species: str = "dog",
    size: str | None = "small",
) -> tuple[CustomerView, PetView]:
    """A returning pawspa customer who already has one pet on file."""
    customer = await customer_of(services, lang, user=user)
    view = await services.customers.add_pet(
        customer.id, name=pet or PET_NAMES[lang], species=species, size=size, breed=""
    )
    return customer, view


async def book(
    services: Services,
    service: str,
    start: datetime,
    *,
    shop: str = "pawspa",
    customer: CustomerView | None = None,
    pet: PetView | None = None,
    staff: str | None = None,
    addons: tuple[str, ...] = (),
) -> BookingView:
    """A booking made outside the chat (another channel, the front desk)."""
    request = BookingRequest(
        shop,
        service,
        start,
        staff_id=staff,
        customer_id=customer.id if customer else None,
        pet_id=pet.id if pet else None,
        addons=addons,
    )
    result = await services.bookings.book(request, Actor.system("test"))
    assert isinstance(result, Booked), result
    return result.booking


async def other_customer(services: Services, user: str = "other") -> CustomerView:
    return await services.customers.identify("pawspa", "test", user, display_name="Someone", language="zh")


def payloads(chat: CollectingChannel) -> list[str]:
    return [b.payload for r in chat.replies for b in r.buttons]


def booked_text(services: Services, lang: str, booking: BookingView, key: str = "booked.confirmed") -> str:
    """The confirmation (or "request sent") message for ``booking``."""
    shop = services.config.shops[booking.shop_id]
    return say(
        lang,
        key,
        code=booking.code,
        service=shop.services[booking.service_id].name.get(lang),
        when=when(lang, booking.start),
        address=shop.address.get(lang),
        price=texts(lang).format_price(booking.price_cents / 100),
        closing=say(lang, f"closing.{shop.kind}"),
    )
