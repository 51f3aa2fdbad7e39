"""A customer's data: `chatbook customer export` gives everything we keep about the person (profile,
channels, pets and vaccinations, visit notes, eye records, bookings, chats, ratings, the audit
trail); `chatbook customer delete` removes it all, frees their upcoming slots and keeps past
bookings anonymised for the shop's counts. After a deletion no table holds their name, phone,
pet's name or words."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.bootstrap import Services, bootstrap
from core.audit import trail
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import load_config
from core.eye_records import parse_exam, save_eye_record
from core.models import Base, Booking, BookingStatus, Customer, Occupancy
from core.privacy import delete_customer, export_customer, find_customer
from core.records import record_visit_notes, update_pet
from core.results import Actor, Booked
from core.vaccinations import record_vaccination
from tests.conftest import CONFIG_PATH, NOW
from tests.helpers import MON, at, copy_sqlite, everything_stored, sqlite_template
from tests.support.cli import CliResult, run_chatbook
from tests.support.collecting import CollectingChannel

STAFF = Actor.staff("mei")
NAME, PHONE, PET, WORDS = "Ann Secretname", "+86 139 0000 4321", "Biscuitdog", "我家狗狗怕吹风机"
UPCOMING = date(2026, 12, 16)  # after the real clock the CLI runs on, within the booking horizon of NOW


async def seed(services: Services) -> tuple[int, int, int]:
    """A customer with one of everything; returns (customer, past booking, upcoming booking)."""
    chat = CollectingChannel(services.engine, "pawspa", user="owner-x", channel="web")
    await chat.push(WORDS)
    customer_id = await find_customer(services.db, "pawspa", "web:owner-x")
    assert customer_id is not None
    await services.customers.update(customer_id, display_name=NAME, phone=PHONE)
    pet = await services.customers.add_pet(customer_id, name=PET, species="dog", size="small")
    shop = services.config.shops["pawspa"]
    await update_pet(services.db, services.clock, shop, "pawspa", pet.id, {"weight_kg": 5, "notes": WORDS}, STAFF)
    await record_vaccination(services.db, services.clock, "pawspa", shop, pet.id, "rabies", date(2026, 3, 1), STAFF)
    past = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, "11:00"), customer_id=customer_id, pet_id=pet.id,
                       notes=f"call {PHONE}"), STAFF,
    )  # fmt: skip
    assert isinstance(past, Booked)
    await services.bookings.mark_attendance("pawspa", past.booking.id, "completed", STAFF)
    await record_visit_notes(
        services.db, services.clock, shop, "pawspa", past.booking.id, {"products": "燕麦沐浴露", "notes": WORDS}, STAFF
    )
    await save_eye_record(
        services.db, services.clock, "pawspa", customer_id,
        parse_exam({"od_sphere": "-1.25", "os_sphere": "-1.00", "notes": WORDS}, today=date(2026, 11, 21)), STAFF,
    )  # fmt: skip
    rating = Base.metadata.tables.get("ratings")
    if rating is not None:  # REPORTS' ratings, when present
        async with services.db.transaction() as s:
            await s.execute(
                rating.insert().values(
                    booking_id=past.booking.id, customer_id=customer_id, shop_id="pawspa", stars=5, comment=WORDS,
                    at=services.clock.now(),
                )
            )  # fmt: skip
    upcoming = await services.bookings.book(
        BookingRequest("pawspa", "nail_trim", at(UPCOMING, "15:00"), staff_id="xiaomei", customer_id=customer_id),
        STAFF,
    )
    assert isinstance(upcoming, Booked)
    return customer_id, past.booking.id, upcoming.booking.id


async def test_export_has_everything_and_delete_leaves_nothing(services: Services) -> None:
    customer_id, past_id, upcoming_id = await seed(services)
    doc = await export_customer(services.db, "pawspa", customer_id, STAFF, services.clock.now())
    assert doc["customer"]["display_name"] == NAME and doc["customer"]["phone"] == PHONE
    assert [i["external_id"] for i in doc["identities"]] == ["owner-x"]
    [pet] = doc["pets"]
    assert pet["name"] == PET and pet["weight_g"] == 5000 and pet["vaccinations"][0]["kind"] == "rabies"
    assert doc["visit_notes"][0]["products"] == "燕麦沐浴露"
    assert doc["eye_records"][0]["od_sphere"] == -125
    assert {b["id"] for b in doc["bookings"]} == {past_id, upcoming_id}
    assert any(e["action"] == "completed" for b in doc["bookings"] for e in b["events"])
    assert any(e["text"] == WORDS for c in doc["conversations"] for e in c["transcript"])
    if "ratings" in Base.metadata.tables:
        assert doc["ratings"][0]["stars"] == 5
    assert {"pet.updated", "vaccination.added", "visit_note.added", "eye_record.added"} <= {
        a["action"] for a in doc["audit_trail"]
    }
    json.dumps(doc, ensure_ascii=False)  # all of it JSON as it is

    deleted = await delete_customer(services.db, "pawspa", customer_id, STAFF, services.clock.now())
    assert deleted.counts["bookings_anonymised"] == 2 and deleted.counts["bookings_cancelled"] == 1
    stored = await everything_stored(services)
    for secret in (NAME, PHONE, PET, WORDS, "owner-x", "燕麦沐浴露"):
        assert secret not in stored, secret
    async with services.db.reading() as s:
        assert await s.get(Customer, customer_id) is None
        bookings = {b.id: b for b in await s.scalars(select(Booking).where(Booking.id.in_([past_id, upcoming_id])))}
        held = await s.scalar(select(func.count()).select_from(Occupancy).where(Occupancy.booking_id == upcoming_id))
    assert bookings[past_id].status == BookingStatus.COMPLETED and bookings[past_id].customer_id is None
    assert bookings[upcoming_id].status == BookingStatus.CANCELLED and held == 0
    again = await services.bookings.book(  # the freed slot can be booked by someone else
        BookingRequest("pawspa", "nail_trim", at(UPCOMING, "15:00"), staff_id="xiaomei"), STAFF
    )
    assert isinstance(again, Booked)
    [event] = [e for e in await trail(services.db, "pawspa", customer_id) if e.action == "customer.deleted"]
    assert event.actor_id == "mei" and event.details["counts"]["pets"] == 1


def _cli(env: dict[str, str], *args: str) -> CliResult:
    """``chatbook customer <args>`` through ``bot.cli.main`` in this process (tests/support/cli.py)."""
    return run_chatbook("customer", *args, "--config", str(CONFIG_PATH), env=env)


def test_cli_export_and_delete(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'p.db'}"
    env = {"CHATBOOK_DATABASE_URL": url}

    async def seeded() -> tuple[int, int, int]:
        config = load_config(CONFIG_PATH, environ={})
        copy_sqlite(await sqlite_template(config), tmp_path / "p.db")  # migrated and synced once per process
        services = await bootstrap(config, clock=FixedClock(NOW), database_url=url, migrate=False, sync=False)
        try:
            return await seed(services)
        finally:
            await services.close()

    customer_id, _, _ = asyncio.run(seeded())
    out = tmp_path / "export.json"
    exported = _cli(env, "export", "pawspa", PHONE, "--out", str(out))  # found by phone number
    assert exported.returncode == 0, exported.stderr
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert doc["customer"]["id"] == customer_id and doc["pets"][0]["name"] == PET
    printed = _cli(env, "export", "pawspa", str(customer_id))
    assert printed.returncode == 0 and json.loads(printed.stdout)["customer"]["display_name"] == NAME
    assert _cli(env, "export", "clearsight", str(customer_id)).returncode == 1  # not that shop's customer
    unconfirmed = _cli(env, "delete", "pawspa", "web:owner-x")
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    done = _cli(env, "delete", "pawspa", "web:owner-x", "--yes", "--by", "lily")
    assert done.returncode == 0, done.stderr
    assert f"customer {customer_id} deleted" in done.stdout
    gone = _cli(env, "export", "pawspa", str(customer_id))
    assert gone.returncode == 1 and "no customer" in gone.stderr
    assert datetime.now(UTC).date() < UPCOMING  # the seeded "upcoming" visit is still ahead of the real clock
