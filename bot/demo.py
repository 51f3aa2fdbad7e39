"""Demo data for `make run`: a few customers, pets and bookings so the shops look alive.

Seeded only into an empty database (no customers yet), through the same booking service as
everything else, on the next days the shops are open.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from bot.bootstrap import Services
from core.availability import to_utc
from core.bookings import BookingRequest
from core.models import Customer
from core.results import Actor, Booked

# (shop, channel, external id, name, language, pet or None, service, day offset, "HH:MM")
_DEMO = [
    ("pawspa", "terminal", "王女士", "王女士", "zh", ("豆豆", "dog", "small", "泰迪"), "dog_bath_small", 1, "11:00"),
    (
        "pawspa",
        "terminal",
        "Alice",
        "Alice",
        "en",
        ("Biscuit", "dog", "large", "Golden Retriever"),
        "dog_bath_large",
        2,
        "14:00",
    ),
    ("pawspa", "terminal", "李先生", "李先生", "zh", ("咪咪", "cat", None, "英短"), "cat_bath", 2, "10:00"),
    ("clearsight", "terminal", "陈女士", "陈女士", "zh", None, "adult_exam", 1, "10:00"),
    ("clearsight", "terminal", "Tom", "Tom", "en", None, "child_exam", 1, "15:00"),
]


async def seed_demo(services: Services, login: tuple[str, str] | None = None) -> int:
    """Create the demo customers and bookings; returns how many bookings were made (0 if seeded).

    With ``login``, also an admin console account for every shop (only if it does not exist).
    """
    if login is not None:
        from core.models import StaffAccount

        async with services.db.reading() as s:
            exists = await s.scalar(select(StaffAccount.id).where(StaffAccount.username == login[0]))
        if exists is None:
            await services.accounts.add(
                login[0], login[1], shops=list(services.config.shops), role="admin", display_name="Demo"
            )
    async with services.db.reading() as s:
        if await s.scalar(select(func.count()).select_from(Customer)):
            return 0
    from core.customers import CustomerDirectory

    directory = CustomerDirectory(services.db, services.clock)
    made = 0
    for shop_id, channel, external_id, name, lang, pet, service_id, offset, hhmm in _DEMO:
        shop = services.config.shops.get(shop_id)
        if shop is None or service_id not in shop.services:
            continue
        customer = await directory.identify(shop_id, channel, external_id, display_name=name, language=lang)
        pet_id = None
        if pet is not None:
            pet_name, species, size, breed = pet
            pet_id = (await directory.add_pet(customer.id, name=pet_name, species=species, size=size, breed=breed)).id
        day = _open_day(services, shop_id, offset)
        hour, minute = map(int, hhmm.split(":"))
        start = to_utc(day, hour * 60 + minute, shop.tz)
        result = await services.bookings.book(
            BookingRequest(shop_id, service_id, start, customer_id=customer.id, pet_id=pet_id), Actor.system("demo")
        )
        made += isinstance(result, Booked)
    return made


def _open_day(services: Services, shop_id: str, offset: int) -> date:
    shop = services.config.shops[shop_id]
    day: date = services.clock.now().astimezone(shop.tz).date()
    found = 0
    while True:
        day += timedelta(days=1)
        if shop.hours_on(day):
            found += 1
            if found == offset:
                return day
