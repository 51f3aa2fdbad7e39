"""Pet records: vaccinations as rows with expiry (what the engine asks before asking the customer),
an old "vaccinated on" migrated into a row, pets edited with their weight, visit notes kept at
completion and offered as "same as last time" for the same pet and kind of service, and every
change in the audit trail (names of fields, never their values)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.bootstrap import Services
from bot.web import build_app
from core.audit import RecordError, trail
from core.bookings import BookingRequest
from core.config import AppConfig, ConfigError, load_config
from core.db import Database
from core.i18n import texts
from core.migrate import upgrade
from core.models import Pet
from core.records import (
    VisitNotes,
    add_pet,
    last_visit_notes,
    pets_of,
    record_visit_notes,
    same_as_last_text,
    update_pet,
    visit_notes_for,
)
from core.results import Actor, Booked
from core.series import Recurrence, SeriesService
from core.vaccinations import (
    VaccinationStatus,
    VaccinationView,
    delete_vaccination,
    kind_in,
    record_vaccination,
    status_of,
    vaccination_prompt,
    vaccination_status,
    vaccinations_of,
)
from tests.conftest import CONFIG_PATH, NOW
from tests.helpers import MON, WED, at
from tests.test_console_api import PASSWORD, Staff

STAFF = Actor.staff("mei")
TODAY = date(2026, 11, 21)  # the tests' clock, in Shanghai


async def _customer_with_pet(services: Services, species: str = "dog", size: str = "small") -> tuple[int, int]:
    customer = await services.customers.identify("pawspa", "web", "owner-1", display_name="Ann")
    pet = await services.customers.add_pet(customer.id, name="Lucky", species=species, size=size)
    return customer.id, pet.id


async def _completed(services: Services, customer_id: int, pet_id: int, service: str, day: date) -> int:
    result = await services.bookings.book(
        BookingRequest("pawspa", service, at(day, "11:00"), customer_id=customer_id, pet_id=pet_id), STAFF
    )
    assert isinstance(result, Booked)
    done = await services.bookings.mark_attendance("pawspa", result.booking.id, "completed", STAFF)
    assert isinstance(done, Booked)
    return result.booking.id


# ------------------------------------------------------------------------------ vaccinations


def _v(kind: str, given: date, expires: date) -> VaccinationView:
    return VaccinationView(1, 1, kind, given, expires, "staff")


def test_status_valid_expired_missing_by_the_visit_day(demo_config: AppConfig) -> None:
    shop = demo_config.shops["pawspa"]
    rabies = _v("rabies", date(2026, 3, 1), date(2027, 3, 1))
    assert status_of([rabies], shop, "dog_bath_small", date(2026, 11, 23)).state == "valid"
    assert status_of([rabies], shop, "dog_bath_small", date(2027, 3, 1)).valid  # the last day still counts
    late = status_of([rabies], shop, "dog_bath_small", date(2027, 3, 2))
    assert late.state == "expired" and late.expired_on == date(2027, 3, 1)
    assert status_of([], shop, "dog_bath_small", TODAY).state == "missing"
    assert status_of([], shop, "nail_trim", TODAY).valid  # nail trims need no vaccination
    future = _v("rabies", date(2026, 12, 1), date(2027, 12, 1))
    assert status_of([future], shop, "dog_bath_small", date(2026, 11, 23)).state == "missing"


def test_required_kinds_come_from_config(demo_config: AppConfig) -> None:
    shop = demo_config.shops["pawspa"]
    strict = shop.model_copy(
        update={"vaccinations": shop.vaccinations.model_copy(update={"required": ["rabies", "kennel"]})}
    )
    rabies = _v("rabies", date(2026, 3, 1), date(2027, 3, 1))
    missing = status_of([rabies], strict, "dog_bath_small", TODAY)
    assert missing.state == "missing" and missing.kinds == ("kennel",)
    general = _v("general", date(2026, 1, 10), date(2027, 1, 10))  # "all done" counts for every kind
    both = status_of([rabies, general], strict, "dog_bath_small", TODAY)
    assert both.valid and both.valid_until == date(2027, 1, 10)


def test_kind_words() -> None:
    assert kind_in("狂犬疫苗是今年3月打的") == "rabies"
    assert kind_in("打了犬窝咳") == "kennel"
    assert kind_in("六联打过了") == "core"
    assert kind_in("疫苗都打了") is None


async def test_record_vaccination_default_validity_expiry_and_audit(services: Services) -> None:
    shop = services.config.shops["pawspa"]
    customer_id, pet_id = await _customer_with_pet(services)
    assert (await vaccination_status(services.db, shop, pet_id, "dog_bath_small", MON)).state == "missing"
    made = await record_vaccination(
        services.db, services.clock, "pawspa", shop, pet_id, "rabies", date(2026, 3, 5), STAFF
    )
    assert made.expires_on == date(2027, 3, 5)  # a year by default
    again = await record_vaccination(
        services.db, services.clock, "pawspa", shop, pet_id, "rabies", date(2026, 3, 5), Actor.customer(customer_id)
    )
    assert again.id == made.id  # told twice (a redelivered message): one record
    assert (await vaccination_status(services.db, shop, pet_id, "dog_bath_small", MON)).valid
    expired = await vaccination_status(services.db, shop, pet_id, "dog_bath_small", date(2027, 3, 6))
    assert expired.state == "expired" and expired.expired_on == date(2027, 3, 5)
    general = await record_vaccination(services.db, services.clock, "pawspa", shop, pet_id, None, TODAY, STAFF)
    assert general.kind == "general"
    rows = (await vaccinations_of(services.db, [pet_id]))[pet_id]
    assert [r.kind for r in rows] == ["general", "rabies"]  # newest first
    pet = await services.customers.get(customer_id)
    assert pet is not None and pet.pets[0].vaccinated_on == TODAY  # the engine's old field follows
    await delete_vaccination(services.db, services.clock, "pawspa", general.id, STAFF)
    pet = await services.customers.get(customer_id)
    assert pet is not None and pet.pets[0].vaccinated_on == date(2026, 3, 5)
    actions = [(e.action, e.actor_id) for e in await trail(services.db, "pawspa", customer_id)]
    assert actions == [("vaccination.added", "mei"), ("vaccination.added", "mei"), ("vaccination.deleted", "mei")]


async def test_record_vaccination_refuses_bad_input_and_other_shops(services: Services) -> None:
    shop = services.config.shops["pawspa"]
    _, pet_id = await _customer_with_pet(services)
    with pytest.raises(RecordError) as bad_kind:
        await record_vaccination(services.db, services.clock, "pawspa", shop, pet_id, "flu", TODAY, STAFF)
    assert bad_kind.value.field == "kind"
    with pytest.raises(RecordError) as future:
        await record_vaccination(
            services.db, services.clock, "pawspa", shop, pet_id, "rabies", TODAY + timedelta(days=1), STAFF
        )
    assert future.value.field == "given_on"
    with pytest.raises(RecordError) as order:
        await record_vaccination(
            services.db, services.clock, "pawspa", shop, pet_id, "rabies", TODAY, STAFF,
            expires_on=TODAY - timedelta(days=1),
        )  # fmt: skip
    assert order.value.field == "expires_on"
    with pytest.raises(LookupError):  # a pawspa pet is not clearsight's to change
        await record_vaccination(services.db, services.clock, "clearsight", shop, pet_id, "rabies", TODAY, STAFF)
    assert (await vaccinations_of(services.db, [pet_id]))[pet_id] == []


async def test_vaccinated_on_is_migrated_into_a_row(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await upgrade(db, "0006")
        async with db.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO shops (id, name_zh, name_en, timezone, active) VALUES ('pawspa','a','a','UTC',1)")
            )
            await conn.execute(
                text(
                    "INSERT INTO customers (id, shop_id, display_name, language, notes, notices, created_at) "
                    "VALUES (1, 'pawspa', 'Ann', 'zh', '', 0, '2026-01-01 00:00:00')"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO pets (id, customer_id, name, species, breed, notes, vaccinated_on) VALUES "
                    "(1, 1, 'Lucky', 'dog', '', '', '2026-04-02'), (2, 1, 'Mimi', 'cat', '', '', NULL)"
                )
            )
        await upgrade(db)
        rows = await vaccinations_of(db, [1, 2])
        assert [(r.kind, r.given_on, r.expires_on, r.source) for r in rows[1]] == [
            ("general", date(2026, 4, 2), date(2027, 4, 2), "migrated")
        ]
        assert rows[2] == []
    finally:
        await db.dispose()


# ------------------------------------------------------------------------------ pets


async def test_staff_edit_a_pet_and_the_trail_names_the_fields(services: Services) -> None:
    shop = services.config.shops["pawspa"]
    customer_id, pet_id = await _customer_with_pet(services)
    changed = await update_pet(
        services.db, services.clock, shop, "pawspa", pet_id,
        {"birth_date": "2022-05-01", "weight_kg": "6.4", "notes": "怕吹风机", "breed": "泰迪"}, STAFF,
    )  # fmt: skip
    assert (changed.birth_date, changed.weight_kg, changed.notes, changed.breed) == (
        date(2022, 5, 1), 6.4, "怕吹风机", "泰迪",
    )  # fmt: skip
    second = await add_pet(
        services.db, services.clock, shop, "pawspa", customer_id, {"name": "Mimi", "species": "cat"}, STAFF
    )
    assert [p.name for p in await pets_of(services.db, "pawspa", customer_id)] == ["Lucky", "Mimi"]
    for data, field in (
        ({"weight_kg": "-1"}, "weight_kg"),
        ({"weight_kg": "heavy"}, "weight_kg"),
        ({"birth_date": "2030-01-01"}, "birth_date"),
        ({"birth_date": "01/05/2022"}, "birth_date"),
        ({"size": "huge"}, "size"),
        ({"species": "dragon"}, "species"),
        ({"name": ""}, "name"),
        ({"notes": "x" * 2001}, "notes"),
    ):
        with pytest.raises(RecordError) as bad:
            await update_pet(services.db, services.clock, shop, "pawspa", second.id, data, STAFF)
        assert bad.value.field == field, data
    with pytest.raises(LookupError):
        await update_pet(services.db, services.clock, shop, "clearsight", pet_id, {"notes": "x"}, STAFF)
    events = await trail(services.db, "pawspa", customer_id)
    assert [(e.action, e.details.get("fields")) for e in events] == [
        ("pet.updated", ["birth_date", "breed", "notes", "weight_kg"]),
        ("pet.added", ["name", "species"]),
    ]
    assert "怕吹风机" not in repr([e.details for e in events])  # the trail holds no values
    async with services.db.reading() as s:
        row = await s.get(Pet, pet_id)
        assert row is not None and row.weight_g == 6400


# ------------------------------------------------------------------------------ visit notes


async def test_visit_notes_offer_same_as_last_time_for_the_same_kind(services: Services) -> None:
    shop = services.config.shops["pawspa"]
    customer_id, pet_id = await _customer_with_pet(services)
    first = await _completed(services, customer_id, pet_id, "dog_bath_small", MON)
    notes = await record_visit_notes(
        services.db, services.clock, shop, "pawspa", first,
        {"products": "燕麦沐浴露", "blade": "10mm", "notes": "耳朵敏感"}, STAFF,
    )  # fmt: skip
    assert notes.visit_on == MON and notes.pet_id == pet_id
    # any dog bath is the same kind (one category); a nail trim is not
    same = await last_visit_notes(services.db, shop, "pawspa", customer_id, "dog_bath_medium", pet_id=pet_id)
    assert same is not None and (same.products, same.blade) == ("燕麦沐浴露", "10mm")
    assert await last_visit_notes(services.db, shop, "pawspa", customer_id, "nail_trim", pet_id=pet_id) is None
    other = await services.customers.add_pet(customer_id, name="Mimi", species="cat")
    assert await last_visit_notes(services.db, shop, "pawspa", customer_id, "dog_bath_small", pet_id=other.id) is None
    second = await _completed(services, customer_id, pet_id, "dog_bath_small", WED)
    await record_visit_notes(services.db, services.clock, shop, "pawspa", second, {"products": "除臭沐浴露"}, STAFF)
    latest = await last_visit_notes(services.db, shop, "pawspa", customer_id, "dog_bath_small", pet_id=pet_id)
    assert latest is not None and latest.products == "除臭沐浴露" and latest.booking_id == second
    before = await last_visit_notes(
        services.db, shop, "pawspa", customer_id, "dog_bath_small", pet_id=pet_id, before=WED
    )
    assert before is not None and before.booking_id == first
    # saving again corrects the same visit's notes
    await record_visit_notes(services.db, services.clock, shop, "pawspa", second, {"products": "燕麦沐浴露"}, STAFF)
    fixed = await visit_notes_for(services.db, "pawspa", second)
    assert fixed is not None and fixed.products == "燕麦沐浴露"
    actions = [e.action for e in await trail(services.db, "pawspa", customer_id)]
    assert actions == ["visit_note.added", "visit_note.added", "visit_note.updated"]


async def test_visit_notes_only_for_completed_visits_of_the_shop(services: Services) -> None:
    shop = services.config.shops["pawspa"]
    customer_id, pet_id = await _customer_with_pet(services)
    result = await services.bookings.book(
        BookingRequest("pawspa", "nail_trim", at(MON, "11:00"), customer_id=customer_id, pet_id=pet_id), STAFF
    )
    assert isinstance(result, Booked)
    with pytest.raises(RecordError) as early:
        await record_visit_notes(services.db, services.clock, shop, "pawspa", result.booking.id, {"notes": "x"}, STAFF)
    assert early.value.field == "booking"
    with pytest.raises(LookupError):
        await record_visit_notes(
            services.db, services.clock, shop, "clearsight", result.booking.id, {"notes": "x"}, STAFF
        )
    with pytest.raises(RecordError) as bad:
        await record_visit_notes(
            services.db, services.clock, shop, "pawspa", result.booking.id, {"blade": "x" * 61}, STAFF
        )
    assert bad.value.field == "blade"


# ------------------------------------------------------------------------------ the console


@asynccontextmanager
async def console_staff(services: Services, *accounts: tuple[str, str]) -> AsyncIterator[list[Staff]]:
    """The console's API served, and each (username, shop) staff account logged in to it."""
    for username, shop_id in accounts:
        await services.accounts.add(username, PASSWORD, shops=[shop_id])
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in accounts]
    try:
        yield [
            await Staff(base, http).login(services, name) for http, (name, _) in zip(sessions, accounts, strict=True)
        ]
    finally:
        for http in sessions:
            await http.close()
        await server.close()


@pytest.fixture
async def desk(services: Services) -> AsyncIterator[tuple[Staff, Staff]]:
    """Mei (pawspa staff) and Wang (clearsight staff) logged in to the console's API."""
    async with console_staff(services, ("mei", "pawspa"), ("wang", "clearsight")) as (mei, wang):
        yield mei, wang


async def test_console_pets_and_vaccinations(services: Services, desk: tuple[Staff, Staff]) -> None:
    mei, wang = desk
    customer_id, pet_id = await _customer_with_pet(services)
    status, made = await mei.post(
        f"/api/console/records/customers/{customer_id}/pets", {"name": "Mimi", "species": "cat", "weight_kg": "4.2"}
    )
    assert status == 200 and made["pet"]["weight_kg"] == 4.2
    status, body = await mei.post(f"/api/console/records/pets/{pet_id}", {"weight_kg": "999"})
    assert status == 400 and body["field"] == "weight_kg"
    status, body = await mei.post(
        f"/api/console/records/pets/{pet_id}/vaccinations", {"kind": "rabies", "given_on": "2026-03-05"}
    )
    assert status == 200 and body["vaccination"]["expires_on"] == "2027-03-05" and body["vaccination"]["valid"]
    status, body = await mei.post(
        f"/api/console/records/pets/{pet_id}/vaccinations", {"kind": "flu", "given_on": "2026-03-05"}
    )
    assert status == 400 and body["field"] == "kind"
    status, body = await mei.post(f"/api/console/records/pets/{pet_id}/vaccinations", {"given_on": "2026-13-01"})
    assert status == 400 and body["field"] == "given_on"
    status, body = await mei.post(f"/api/console/records/pets/{pet_id}/vaccinations", {"given_on": "2027-01-01"})
    assert status == 400 and body["field"] == "given_on"  # not in the future
    # another shop's staff: 403 on every record of this customer, and no CSRF: 403
    assert (await wang.get(f"/api/console/records/customers/{customer_id}"))[0] == 403
    assert (await wang.post(f"/api/console/records/pets/{pet_id}", {"notes": "x"}))[0] == 403
    assert (await mei.post(f"/api/console/records/pets/{pet_id}", {"notes": "x"}, csrf=False))[0] == 403
    assert (await mei.get("/api/console/records/customers/99999"))[0] == 404
    assert (await mei.get("/api/console/records/customers/abc"))[0] == 400
    status, page = await mei.get(f"/api/console/records/customers/{customer_id}")
    assert status == 200
    assert [p["name"] for p in page["pets"]] == ["Lucky", "Mimi"]
    assert page["pets"][0]["vaccinations"][0]["kind"] == "rabies"
    assert [e["action"] for e in page["trail"]][:2] == ["vaccination.added", "pet.added"]  # newest first
    status, found = await mei.get("/api/console/records/customers?shop=pawspa&q=Ann")
    assert status == 200 and [c["id"] for c in found["customers"]] == [customer_id]
    assert (await wang.get("/api/console/records/customers?shop=pawspa"))[0] == 403


async def test_console_completes_a_visit_with_notes(services: Services, desk: tuple[Staff, Staff]) -> None:
    mei, wang = desk
    customer_id, pet_id = await _customer_with_pet(services)
    first = await _completed(services, customer_id, pet_id, "dog_bath_small", MON)
    await record_visit_notes(
        services.db, services.clock, services.config.shops["pawspa"], "pawspa", first,
        {"products": "燕麦沐浴露", "blade": "10mm"}, STAFF,
    )  # fmt: skip
    booked = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_medium", at(WED, "11:00"), customer_id=customer_id, pet_id=pet_id), STAFF
    )
    assert isinstance(booked, Booked)
    second = booked.booking.id
    status, visit = await mei.get(f"/api/console/records/bookings/{second}/visit")
    assert status == 200 and visit["notes"] is None and visit["last"]["products"] == "燕麦沐浴露"
    status, body = await mei.post(f"/api/console/records/bookings/{second}/complete", {"blade": "x" * 61})
    assert status == 400 and body["field"] == "blade"
    pending = await services.bookings.get("pawspa", second)
    assert pending is not None and pending.status.value == "confirmed"  # the bad field stopped it first
    assert (await wang.post(f"/api/console/records/bookings/{second}/complete", {}))[0] == 403
    status, body = await mei.post(
        f"/api/console/records/bookings/{second}/complete", {"products": "燕麦沐浴露", "blade": "10mm", "notes": "乖"}
    )
    assert status == 200 and body["notes"]["notes"] == "乖"
    done = await services.bookings.get("pawspa", second)
    assert done is not None and done.status.value == "completed"
    status, visit = await mei.get(f"/api/console/records/bookings/{second}/visit")
    assert visit["notes"]["products"] == "燕麦沐浴露" and visit["last"]["booking_id"] == first


async def test_two_staff_saving_notes_at_once_keep_one_set(services: Services) -> None:
    shop = services.config.shops["pawspa"]
    customer_id, pet_id = await _customer_with_pet(services)
    booking_id = await _completed(services, customer_id, pet_id, "dog_bath_small", MON)
    saves = [
        record_visit_notes(services.db, services.clock, shop, "pawspa", booking_id, {"products": p}, Actor.staff(who))
        for p, who in (("燕麦沐浴露", "mei"), ("除臭沐浴露", "lily"))
    ]
    results = await asyncio.gather(*saves)
    kept = await visit_notes_for(services.db, "pawspa", booking_id)
    assert kept is not None and kept.products in {r.products for r in results}
    actions = sorted(e.action for e in await trail(services.db, "pawspa", customer_id))
    assert actions == ["visit_note.added", "visit_note.updated"]


def test_texts_for_the_chat(demo_config: AppConfig) -> None:
    shop = demo_config.shops["pawspa"]
    zh, en = texts("zh"), texts("en")
    expired = VaccinationStatus("expired", expired_on=date(2026, 3, 1), kinds=("rabies",))
    assert vaccination_prompt(expired, shop, "Lucky", "en") == en.t(
        "vaccination.expired", pet="Lucky", vaccine=en.t("vaccine.rabies"), date=en.format_date(date(2026, 3, 1))
    )
    assert vaccination_prompt(VaccinationStatus("missing"), shop, "豆豆", "zh") == zh.t(
        "vaccination.missing", pet="豆豆", vaccine=zh.t("vaccine.general")
    )
    assert vaccination_prompt(VaccinationStatus("valid"), shop, "豆豆", "zh") is None
    notes = VisitNotes(1, "pawspa", 1, 1, "dog_bath_small", MON, "燕麦沐浴露", "10mm", "耳朵敏感", "staff:mei", NOW)
    text = same_as_last_text(notes, "豆豆", "zh")
    assert text == zh.t("visit.same_as_last", pet="豆豆", details="产品：燕麦沐浴露；刀头：10mm")
    assert "耳朵敏感" not in (text or "")  # the groomer's notes stay with staff
    assert same_as_last_text(notes.__class__(**{**notes.__dict__, "products": "", "blade": ""}), "x", "en") is None


def test_config_names_unknown_vaccination_kinds(tmp_path: Path) -> None:
    source = CONFIG_PATH.read_text(encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(
        source.replace(
            "    kind: pet\n",
            "    kind: pet\n    vaccinations:\n      kinds: {leptospirosis: {valid_days: 180}}\n"
            "      required: [rabies, flu]\n",
            1,
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as bad:
        load_config(path, environ={})
    [issue] = bad.value.issues
    assert "shops.pawspa.vaccinations.required.1: unknown vaccination kind 'flu'" in str(issue)
    path.write_text(path.read_text(encoding="utf-8").replace("[rabies, flu]", "[rabies, leptospirosis]"), "utf-8")
    shop = load_config(path, environ={}).shops["pawspa"]
    assert shop.vaccinations.valid_days("leptospirosis") == 180 and shop.vaccinations.valid_days("rabies") == 365


# ------------------------------------------------------------------------------ hostile input

_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_PLAUSIBLE = st.sampled_from(["-3.00", "+1.25", "180", "1.0", "20/20", "62", "2026-03-05", "rabies", "", "x" * 3000])
_RECORD_FIELDS = (
    "name", "species", "breed", "size", "birth_date", "weight_kg", "notes", "kind", "given_on", "expires_on",
    "products", "blade", "od_sphere", "od_cylinder", "od_axis", "od_add", "od_va", "os_sphere", "os_va", "pd",
    "examined_on", "patient_name", "patient_birth_date", "booking_id", "from_seq",
)  # fmt: skip
_RECORD_ROUTES = [
    ("GET", "/api/console/records/customers?shop={shop}&q={q}"),
    ("GET", "/api/console/records/customers/{id}"),
    ("POST", "/api/console/records/customers/{id}/pets"),
    ("POST", "/api/console/records/pets/{id}"),
    ("POST", "/api/console/records/pets/{id}/vaccinations"),
    ("POST", "/api/console/records/vaccinations/{id}/delete"),
    ("GET", "/api/console/records/bookings/{id}/visit"),
    ("POST", "/api/console/records/bookings/{id}/complete"),
    ("POST", "/api/console/records/customers/{id}/eye_records"),
    ("POST", "/api/console/records/eye_records/{id}"),
    ("POST", "/api/console/records/series/{id}/cancel_rest"),
]


@pytest.fixture
async def boss(sqlite_services: Services) -> AsyncIterator[Staff]:
    """An admin of both shops, with a customer, pet, vaccination, completed visit, eye record and a
    weekly series (ids 1)."""
    services = sqlite_services
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin")
    customer_id, pet_id = await _customer_with_pet(services)
    shop = services.config.shops["pawspa"]
    await record_vaccination(services.db, services.clock, "pawspa", shop, pet_id, "rabies", TODAY, STAFF)
    await _completed(services, customer_id, pet_id, "dog_bath_small", MON)
    regular = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(WED, "15:00"), customer_id=customer_id, pet_id=pet_id), STAFF
    )
    assert isinstance(regular, Booked)
    await SeriesService(services.bookings).start("pawspa", regular.booking.id, Recurrence(1, "week"), STAFF)
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield await Staff(str(server.make_url("")).rstrip("/"), http).login(services, "boss")
    await server.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(_RECORD_ROUTES),
    object_id=st.sampled_from(["1", "2", "0", "-1", "99999999999", "1e3", "x", "%00"]),
    shop=st.sampled_from(["pawspa", "clearsight", "nowhere", ""]),
    q=st.text(max_size=20),
    body=st.one_of(st.fixed_dictionaries({}, optional={f: st.one_of(_PLAUSIBLE, _ANY) for f in _RECORD_FIELDS}), _ANY),
)
async def test_no_records_route_answers_500(
    boss: Staff, route: tuple[str, str], object_id: str, shop: str, q: str, body: Any
) -> None:
    method, pattern = route
    path = pattern.format(id=object_id, shop=quote(shop, safe=""), q=quote(q, safe=""))
    if method == "GET":
        async with boss.http.get(boss.base + path) as resp:
            status = resp.status
    else:
        headers = {"X-CSRF-Token": boss.csrf, "Content-Type": "application/json"}
        async with boss.http.post(boss.base + path, data=json.dumps(body), headers=headers) as resp:
            status = resp.status
    assert status < 500 and status != 401, (method, path, body)  # logged in: every answer is the route's
