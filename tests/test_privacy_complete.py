"""`chatbook customer export|delete` cover everything kept about a person, table by table.

One customer is given one of every kind of row there is about a person: profile, channel
identity, conversation and transcript (with a handoff), messages to them, pet, vaccination, a
completed visit with visit notes and a rating, an eye record, a recurring series with its planned
visits, a waitlist entry, staff alerts about their chat and their rating, the records audit trail.
A second customer of the same shop gets the same.

The check is driven by the schema, not by a list kept by hand: every table with a column linking
a row to the person (customer_id, pet_id, conversation_id, series_id; the outbox by their
identities and the staff alerts by what they are about) is read directly, and

- the export lists exactly those rows, each in its section (a new table about people that the
  export forgets fails here, naming the table);
- after the delete no such row is left (bookings stay for the shop's counts with nobody on them;
  the audit trail keeps that things happened, with no personal data), none of the person's words
  is left anywhere in the database, and the other customer's rows are all still there, as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Table, or_, select

from bot.bootstrap import Services
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.eye_records import parse_exam, save_eye_record
from core.messages import OutgoingMessage
from core.models import Base, ConversationMode
from core.privacy import delete_customer, export_customer, find_customer
from core.records import record_visit_notes, update_pet
from core.results import Actor, Booked
from core.series import Recurrence, SeriesService
from core.staff_alerts import low_rating_message, queue, queue_handoff
from core.vaccinations import record_vaccination
from tests.conftest import NOW
from tests.helpers import MON, at, everything_stored
from tests.support.collecting import CollectingChannel
from tests.test_staff_alerts import alerting

STAFF = Actor.staff("mei")
KEPT = {"audit_events"}  # the trail of what happened (field names, counts): kept after a delete
NEXT_WED = date(2026, 12, 2)


@dataclass(frozen=True)
class Person:
    customer: int
    user: str
    pets: tuple[int, ...]
    conversations: tuple[int, ...]
    bookings: tuple[int, ...]
    series: tuple[int, ...]
    secrets: tuple[str, ...]


async def _ids(services: Services, table: str, column: str, value: int) -> tuple[int, ...]:
    t = Base.metadata.tables[table]
    async with services.db.reading() as s:
        return tuple(await s.scalars(select(t.c.id).where(t.c[column] == value).order_by(t.c.id)))


async def seed(services: Services, user: str, name: str, pet_name: str, words: str, *, hour: str) -> Person:
    """A customer with one of every kind of row about a person."""
    assert isinstance(services.clock, FixedClock)
    services.clock.set(NOW)
    shop = services.config.shops["pawspa"]
    chat = CollectingChannel(services.engine, "pawspa", user=user, channel="web")
    await chat.push(words)
    customer_id = await find_customer(services.db, "pawspa", f"web:{user}")
    assert customer_id is not None
    await services.customers.update(customer_id, display_name=name, phone=f"+86 139 {customer_id:04d} 4321")
    pet = await services.customers.add_pet(customer_id, name=pet_name, species="dog", size="small")
    await update_pet(services.db, services.clock, shop, "pawspa", pet.id, {"weight_kg": 5, "notes": words}, STAFF)
    await record_vaccination(services.db, services.clock, "pawspa", shop, pet.id, "rabies", date(2026, 3, 1), STAFF)
    await save_eye_record(
        services.db, services.clock, "pawspa", customer_id,
        parse_exam({"od_sphere": "-1.25", "os_sphere": "-1.00", "notes": words}, today=NOW.date()), STAFF,
    )  # fmt: skip
    await services.waitlist.join("pawspa", customer_id, "dog_bath_small", MON, pet_id=pet.id)

    first = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(NEXT_WED, hour), customer_id=customer_id,
                       pet_id=pet.id, notes=words), STAFF,
    )  # fmt: skip
    assert isinstance(first, Booked)
    started = await SeriesService(services.bookings).start("pawspa", first.booking.id, Recurrence(1, "week"), STAFF)
    assert len(started.visits) >= 2  # visit 1 and the next ones inside the horizon

    past = await services.bookings.book(
        BookingRequest("pawspa", "dog_bath_small", at(MON, hour), customer_id=customer_id,
                       pet_id=pet.id), STAFF,
    )  # fmt: skip
    assert isinstance(past, Booked)
    services.clock.set(at(MON, "18:00"))
    await services.bookings.mark_attendance("pawspa", past.booking.id, "completed", STAFF)
    await record_visit_notes(
        services.db, services.clock, shop, "pawspa", past.booking.id,
        {"products": f"{pet_name}专用香波", "notes": words}, STAFF,
    )  # fmt: skip
    ratings = services.engine.ratings
    assert ratings is not None
    await ratings.record_rating(past.booking.id, customer_id, 2, words)

    await chat.push("转人工")  # a handoff, and staff write to them
    [conversation] = await _ids(services, "conversations", "customer_id", customer_id)
    await services.store.enqueue(conversation, OutgoingMessage(f"收到：{words}"), author="staff:mei")
    alerts_shop = alerting(services.config, "http://127.0.0.1:9").shops["pawspa"]  # alerts as configured
    async with services.db.transaction() as s:
        await queue_handoff(s, "pawspa", alerts_shop, conversation, None, services.clock.now())
        message = low_rating_message(alerts_shop, 2, past.booking.code, "dog_bath_small", comment=True)
        queue(s, "pawspa", alerts_shop, message, services.clock.now(),
              about={"type": "low_rating", "booking": past.booking.id, "stars": 2})  # fmt: skip
    services.clock.set(NOW)
    return Person(
        customer=customer_id,
        user=user,
        pets=(pet.id,),
        conversations=(conversation,),
        bookings=await _ids(services, "bookings", "customer_id", customer_id),
        series=(started.series.id,),
        secrets=(name, pet_name, words, user),
    )


def _key(table: Table, row: Any) -> Any:
    keys = [c.name for c in table.primary_key.columns]
    return row._mapping[keys[0]] if len(keys) == 1 else tuple(row._mapping[k] for k in keys)


def _links(table: Table, person: Person, identities: list[tuple[str, str]], *, booking_events: bool) -> list[Any]:
    """The conditions under which a row of ``table`` is about the person."""
    c = table.c
    links = [c.id == person.customer] if table.name == "customers" else []
    if "customer_id" in c:
        links.append(c.customer_id == person.customer)
    if "pet_id" in c:
        links.append(c.pet_id.in_(person.pets))
    if "conversation_id" in c:
        links.append(c.conversation_id.in_(person.conversations))
    if "series_id" in c:
        links.append(c.series_id.in_(person.series))
    if table.name == "booking_events" and booking_events:
        links.append(c.booking_id.in_(person.bookings))
    if table.name == "outbox":
        links += [(c.channel == ch) & (c.external_id == ext) for ch, ext in identities]
    if table.name == "inbound_messages":
        links.append(c.conv_key == f"pawspa|web|{person.user}")
    return links


async def rows_about(services: Services, person: Person, *, with_booking_events: bool) -> dict[str, set[Any]]:
    """Table -> primary keys of its rows linked to the person, read straight from the database."""
    found: dict[str, set[Any]] = {}
    identity = Base.metadata.tables["channel_identities"]
    async with services.db.reading() as s:
        identities = [
            (r.channel, r.external_id)
            for r in await s.execute(select(identity).where(identity.c.customer_id == person.customer))
        ]
        for table in Base.metadata.sorted_tables:
            links = _links(table, person, identities, booking_events=with_booking_events)
            keys = {_key(table, r) for r in await s.execute(select(table).where(or_(*links)))} if links else set()
            if table.name == "outbox":  # staff alerts: addressed to the staff chat, about the person
                for r in await s.execute(select(table).where(table.c.kind == "staff_alert")):
                    about = (r.body or {}).get("alert") or {}
                    if about.get("conversation") in person.conversations or about.get("booking") in person.bookings:
                        keys.add(r.id)
            if keys:
                found[table.name] = keys
    return found


def exported(doc: dict[str, Any]) -> dict[str, set[Any]]:
    """Table -> primary keys of the rows the export lists."""
    bookings, conversations, series = doc["bookings"], doc["conversations"], doc["series"]
    out = {
        "customers": {doc["customer"]["id"]},
        "channel_identities": {i["id"] for i in doc["identities"]},
        "pets": {p["id"] for p in doc["pets"]},
        "vaccinations": {v["id"] for p in doc["pets"] for v in p["vaccinations"]},
        "visit_notes": {n["id"] for n in doc["visit_notes"]},
        "eye_records": {r["id"] for r in doc["eye_records"]},
        "bookings": {b["id"] for b in bookings},
        "booking_events": {e["id"] for b in bookings for e in b["events"]},
        "booking_series": {r["id"] for r in series},
        "series_visits": {(r["id"], v["seq"]) for r in series for v in r["visits"]},
        "waitlist": {w["id"] for w in doc["waitlist"]},
        "conversations": {c["id"] for c in conversations},
        "transcript": {e["id"] for c in conversations for e in c["transcript"]},
        "outbox": {m["id"] for m in doc["messages"] + doc["staff_alerts"]},
        "ratings": {r["id"] for r in doc["ratings"]},
        "audit_events": {a["id"] for a in doc["audit_trail"]},
    }
    return {k: v for k, v in out.items() if v}


NOT_EXPORTED = {"inbound_messages"}  # dedupe records of messages whose words are in the transcript


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    """An export without what an export itself changes (its time, the audit rows it adds)."""
    return {k: v for k, v in doc.items() if k not in ("exported_at", "audit_trail")}


async def test_export_lists_every_row_about_a_person_and_delete_leaves_none(services: Services) -> None:
    ann = await seed(services, "ann-web", "Ann Secretname", "Biscuitdog", "我家狗狗怕吹风机", hour="10:00")
    bob = await seed(services, "bob-web", "Bob Othername", "Muffincat", "它不喜欢剪指甲", hour="14:00")

    about = await rows_about(services, ann, with_booking_events=True)
    kinds = {
        "customers", "channel_identities", "pets", "vaccinations", "visit_notes", "eye_records", "bookings",
        "booking_events", "booking_series", "series_visits", "waitlist", "conversations", "transcript", "outbox",
        "ratings", "audit_events",
    }  # fmt: skip
    assert kinds <= set(about), kinds - set(about)  # the seed really has one of everything
    async with services.db.reading() as s:
        conversation = Base.metadata.tables["conversations"]
        mode = await s.scalar(select(conversation.c.mode).where(conversation.c.id == ann.conversations[0]))
    assert mode == ConversationMode.HANDOFF

    bob_before = await rows_about(services, bob, with_booking_events=True)
    bob_doc = await export_customer(services.db, "pawspa", bob.customer, STAFF, services.clock.now())
    doc = await export_customer(services.db, "pawspa", ann.customer, STAFF, services.clock.now())
    json.dumps(doc, ensure_ascii=False)
    listed = exported(doc)
    for table, keys in about.items():
        if table in NOT_EXPORTED:
            continue
        assert table in listed, f"{table} holds rows about the customer that the export leaves out"
        assert listed[table] == keys, table
    assert set(listed) <= set(about)  # and nothing about anyone else
    assert len(doc["staff_alerts"]) == 2 and len(doc["series"][0]["visits"]) >= 2

    deleted = await delete_customer(services.db, "pawspa", ann.customer, STAFF, services.clock.now())
    assert deleted.counts["series"] == 1 and deleted.counts["staff_alerts"] == 2 and deleted.counts["ratings"] == 1
    left = await rows_about(services, ann, with_booking_events=False)
    assert set(left) <= KEPT, {t: k for t, k in left.items() if t not in KEPT}
    stored = await everything_stored(services)
    for secret in ann.secrets:
        assert secret not in stored, secret

    bob_after = await rows_about(services, bob, with_booking_events=True)  # the other customer: untouched
    assert {t: k for t, k in bob_after.items() if t != "audit_events"} == {
        t: k for t, k in bob_before.items() if t != "audit_events"
    }
    assert bob_before["audit_events"] <= bob_after["audit_events"]
    again = await export_customer(services.db, "pawspa", bob.customer, STAFF, services.clock.now())
    assert _stable(again) == _stable(bob_doc)
    for secret in bob.secrets:
        assert secret in stored, secret
