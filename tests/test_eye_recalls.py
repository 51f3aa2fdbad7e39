"""Check-ups due at the optician: the list the optometrist works through and the reminder a
customer gets in chat, on SQLite and PostgreSQL.

Seeded people and the answer worked out by hand from the rules (children under 18 with myopia
every 6 months, 3 when it grew 0.50 D since the last exam, everyone else yearly), today being
Saturday 21 Nov 2026:

- Wu, an adult, last examined 10 Nov 2025: due 10 Nov 2026, overdue.
- Wu's son 小明 (born 2016), short-sighted, examined 25 May 2026: due 25 Nov 2026 (child_myopia).
- Chen's daughter Lily, -1.00 on 1 Jun and -1.75 on 30 Aug 2026: growing, due 30 Nov 2026.
  (Her June exam alone would say December: an older exam of someone seen since is not due.)
- Sun, an adult with no chat, examined 1 Sep 2025: due 1 Sep 2026, overdue.
- Zhao, an adult examined 1 Jun 2026: due June 2027, not in the 30-day list.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from bot.bootstrap import Services
from core.audit import trail
from core.eye_records import parse_exam, recalls_due, save_eye_record
from core.i18n import texts
from core.models import OutboxMessage, TranscriptEntry
from core.results import Actor
from tests.support.collecting import CollectingChannel
from tests.test_console_api import Staff
from tests.test_records import console_staff

TODAY = date(2026, 11, 21)
DR = Actor.staff("dr_wang")
BASE = "/api/console/records"


async def _exam(services: Services, customer_id: int, on: date, sphere: str, **more: Any) -> int:
    exam = parse_exam({"od_sphere": sphere, "os_sphere": sphere, "examined_on": on.isoformat(), **more}, today=TODAY)
    saved = await save_eye_record(services.db, services.clock, "clearsight", customer_id, exam, DR)
    return saved.id


async def seed_recalls(services: Services) -> dict[str, int]:
    """The people of the module docstring; returns the exam ids by name."""
    await CollectingChannel(services.engine, "clearsight", user="wu", channel="web").push("hello")
    await CollectingChannel(services.engine, "clearsight", user="chen", channel="web").push("你好")
    wu = await services.customers.identify("clearsight", "web", "wu", display_name="Wu Lei")
    chen = await services.customers.identify("clearsight", "web", "chen", display_name="陈女士")
    sun = await services.customers.identify("clearsight", "phone", "walk-in:Sun", display_name="Sun")
    zhao = await services.customers.identify("clearsight", "phone", "walk-in:Zhao", display_name="Zhao")
    ids = {
        "wu": await _exam(services, wu.id, date(2025, 11, 10), "-1.00"),
        "xiaoming": await _exam(
            services, wu.id, date(2026, 5, 25), "-2.00", patient_name="小明", patient_birth_date="2016-05-01"
        ),
        "lily_june": await _exam(
            services, chen.id, date(2026, 6, 1), "-1.00", patient_name="Lily", patient_birth_date="2015-03-03"
        ),
        "lily": await _exam(
            services, chen.id, date(2026, 8, 30), "-1.75", patient_name="Lily", patient_birth_date="2015-03-03"
        ),
        "sun": await _exam(services, sun.id, date(2025, 9, 1), "+0.50"),
        "zhao": await _exam(services, zhao.id, date(2026, 6, 1), "-4.00"),
    }
    return ids


@pytest.fixture
async def desk(services: Services) -> AsyncIterator[tuple[Staff, Staff]]:
    """Wang (clearsight staff) and Mei (pawspa staff) logged in to the console's API."""
    async with console_staff(services, ("wang", "clearsight"), ("mei", "pawspa")) as (wang, mei):
        yield wang, mei


async def test_the_list_matches_the_rules_worked_out_by_hand(services: Services) -> None:
    ids = await seed_recalls(services)
    shop = services.config.shops["clearsight"]
    due = await recalls_due(services.db, shop, "clearsight", TODAY)
    assert [(r.record_id, r.recall_on, r.rule) for r in due] == [
        (ids["sun"], date(2026, 9, 1), "adult"),
        (ids["wu"], date(2026, 11, 10), "adult"),
        (ids["xiaoming"], date(2026, 11, 25), "child_myopia"),
        (ids["lily"], date(2026, 11, 30), "child_progressing"),
    ]
    assert [r.patient_name for r in due] == ["", "", "小明", "Lily"]
    assert [r.as_json(TODAY)["overdue"] for r in due] == [True, True, False, False]
    today_only = await recalls_due(services.db, shop, "clearsight", TODAY, within_days=0)
    assert [r.record_id for r in today_only] == [ids["sun"], ids["wu"]]
    a_year = await recalls_due(services.db, shop, "clearsight", TODAY, within_days=365)
    assert ids["zhao"] in [r.record_id for r in a_year] and ids["lily_june"] not in [r.record_id for r in a_year]
    assert await recalls_due(services.db, services.config.shops["pawspa"], "pawspa", TODAY) == []


async def test_staff_send_the_reminder_once_in_the_customers_language(
    services: Services, desk: tuple[Staff, Staff]
) -> None:
    ids = await seed_recalls(services)
    wang, _mei = desk
    status, page = await wang.get(f"{BASE}/recalls?shop=clearsight")
    assert status == 200 and page["shop_kind"] == "optician"
    assert [r["record_id"] for r in page["recalls"]] == [ids["sun"], ids["wu"], ids["xiaoming"], ids["lily"]]
    assert all(r["reminded_at"] is None for r in page["recalls"])
    text = json.dumps(page)
    assert "sphere" not in text and "-2.00" not in text  # a to-do list: no eye values

    status, sent = await wang.post(f"{BASE}/eye_records/{ids['xiaoming']}/recall")
    assert status == 200
    async with services.db.reading() as s:
        row = await s.get(OutboxMessage, sent["outbox_id"])
        lines = [e.text for e in await s.scalars(select(TranscriptEntry).where(TranscriptEntry.direction == "out"))]
    assert row is not None and row.external_id == "wu"
    conv = await services.store.latest_conversation("clearsight", page["recalls"][1]["customer_id"])
    assert conv is not None
    t = texts(conv.language)
    months = t.list("format.months")
    expected = t.t(
        "eye_recall.reminder_for",
        shop=services.config.shops["clearsight"].name.get(conv.language),
        name="小明",
        date=t.t("eye.month", year=2026, month=months[4]),
        recall=t.t("eye.month", year=2026, month=months[10]),
    )
    assert row.body["text"] == expected and expected in lines  # the transcript keeps it too

    status, page = await wang.get(f"{BASE}/recalls?shop=clearsight")
    [shown] = [r for r in page["recalls"] if r["record_id"] == ids["xiaoming"]]
    assert shown["reminded_at"] is not None and shown["reminded_at"].startswith("2026-11-21")
    status, again = await wang.post(f"{BASE}/eye_records/{ids['xiaoming']}/recall")
    assert status == 409 and again["error"] == "already_sent"
    status, old = await wang.post(f"{BASE}/eye_records/{ids['lily_june']}/recall")
    assert status == 409 and old["error"] == "not_latest"
    status, lonely = await wang.post(f"{BASE}/eye_records/{ids['sun']}/recall")
    assert status == 422 and lonely["error"] == "no_channel"  # call them instead
    async with services.db.reading() as s:
        reminders = [m for m in await s.scalars(select(OutboxMessage)) if m.body.get("eye_recall")]
    assert len(reminders) == 1  # nothing else was sent

    status, chen_sent = await wang.post(f"{BASE}/eye_records/{ids['lily']}/recall")
    assert status == 200
    async with services.db.reading() as s:
        chen_row = await s.get(OutboxMessage, chen_sent["outbox_id"])
    assert chen_row is not None and chen_row.external_id == "chen" and "Lily" in chen_row.body["text"]

    wu_id = page["recalls"][1]["customer_id"]
    [audited] = [e for e in await trail(services.db, "clearsight", wu_id) if e.action == "eye_record.recall_sent"]
    assert (audited.subject_id, audited.actor_id) == (ids["xiaoming"], "wang")
    assert "-2.00" not in json.dumps(audited.details)  # who and when, never the values


async def test_only_that_shops_staff_see_and_send_and_bad_input_is_named(
    services: Services, desk: tuple[Staff, Staff]
) -> None:
    ids = await seed_recalls(services)
    wang, mei = desk
    assert (await mei.get(f"{BASE}/recalls?shop=clearsight"))[0] == 403
    assert (await mei.post(f"{BASE}/eye_records/{ids['wu']}/recall"))[0] == 403
    assert (await wang.post(f"{BASE}/eye_records/{ids['wu']}/recall", csrf=False))[0] == 403
    assert (await wang.post(f"{BASE}/eye_records/99999/recall"))[0] == 404
    for within in ("366", "-1", "soon", "1e3"):
        status, body = await wang.get(f"{BASE}/recalls?shop=clearsight&within={within}")
        assert status == 400 and body["field"] == "within", within
    status, page = await mei.get(f"{BASE}/recalls?shop=pawspa")
    assert status == 200 and page["shop_kind"] == "pet" and page["recalls"] == []
