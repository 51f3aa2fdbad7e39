"""'Vaccination expires soon' at a pet shop (core/vaccination_notices.py, in the daily run of
bot/usecases/recalls.py), on SQLite and PostgreSQL. Today is Saturday 21 Nov 2026 in Shanghai.

Lucky's rabies vaccination on file runs out on 30 Nov 2026. Two small-dog baths are booked
(the service needs vaccination): 28 Nov (still covered: nothing to say) and 5 Dec (not covered:
the owner is told once, with a Reschedule button). Bella's ran out on 1 Nov: the booking form
asks about that one (the engine), no notice here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from bot.bootstrap import Services
from bot.usecases.recalls import DailyRecalls
from core.audit import trail
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.i18n import texts
from core.models import OutboxMessage
from core.results import Actor, Booked
from core.vaccination_notices import send_expiry_notices
from core.vaccinations import record_vaccination
from tests.helpers import at
from tests.support.collecting import CollectingChannel

STAFF = Actor.staff("mei")
TEN_LOCAL = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


async def _book(services: Services, customer_id: int, pet_id: int, day: date) -> int:
    made = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(day, "11:00"), customer_id=customer_id, pet_id=pet_id), STAFF
    )
    assert isinstance(made, Booked)
    return made.booking.id


async def _notices(services: Services) -> list[OutboxMessage]:
    async with services.db.reading() as s:
        rows = await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [m for m in rows if m.body.get("vaccination_expiring")]


async def test_the_owner_is_told_once_before_the_visit_it_does_not_cover(services: Services, clock: FixedClock) -> None:
    shop = services.config.shops["pawspa"]
    await CollectingChannel(services.engine, "pawspa", user="ann", channel="web").push("hello")
    ann = await services.customers.identify("pawspa", "web", "ann", display_name="Ann")
    lucky = await services.customers.add_pet(ann.id, name="Lucky", species="dog", size="small")
    bella = await services.customers.add_pet(ann.id, name="Bella", species="dog", size="small")
    given = date(2025, 12, 1)
    await record_vaccination(
        services.db, services.clock, "pawspa", shop, lucky.id, "rabies", given, STAFF, expires_on=date(2026, 11, 30)
    )
    await record_vaccination(
        services.db, services.clock, "pawspa", shop, bella.id, "rabies", given, STAFF, expires_on=date(2026, 11, 1)
    )
    covered = await _book(services, ann.id, lucky.id, date(2026, 11, 28))
    not_covered = await _book(services, ann.id, lucky.id, date(2026, 12, 5))
    await _book(services, ann.id, bella.id, date(2026, 12, 5))
    far = await _book(services, ann.id, lucky.id, date(2026, 12, 12))  # beyond the 14 days: a later run

    clock.set(TEN_LOCAL)
    assert await send_expiry_notices(services.db, services.clock, shop, "pawspa") == (not_covered,)
    assert await send_expiry_notices(services.db, services.clock, shop, "pawspa") == ()  # once
    runs = await DailyRecalls().tick(services)  # the daily run (another process, a restart): nothing new
    assert runs["pawspa"].sent == ()
    [row] = await _notices(services)
    assert row.external_id == "ann" and row.body["vaccination_expiring"] == not_covered
    assert [b["payload"] for b in row.body["buttons"]] == [f"rr:{not_covered}"]
    conv = await services.store.latest_conversation("pawspa", ann.id)
    assert conv is not None
    t = texts(conv.language)
    assert row.body["text"] == t.t(
        "recalls.vaccination_expiring",
        pet="Lucky",
        vaccine=t.t("vaccine.rabies"),
        date=t.format_date(date(2026, 11, 30)),
        when=t.format_when(at(date(2026, 12, 5), "11:00"), shop.tz),
    )
    assert covered not in [m.body["vaccination_expiring"] for m in await _notices(services)]
    [event] = [e for e in await trail(services.db, "pawspa", ann.id) if e.action == "vaccination.expiry_notice"]
    assert (event.subject, event.subject_id, event.actor_id) == ("booking", not_covered, "vaccination")

    clock.advance(timedelta(days=7))  # 28 Nov: the 12 Dec visit is inside the window now
    assert await send_expiry_notices(services.db, services.clock, shop, "pawspa") == (far,)

    off = shop.model_copy(update={"vaccinations": shop.vaccinations.model_copy(update={"expiry_notice_days": None})})
    assert await send_expiry_notices(services.db, services.clock, off, "pawspa") == ()
