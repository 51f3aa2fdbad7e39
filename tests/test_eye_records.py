"""Eye records: the exam as the optometrist types it is checked field by field (ranges, steps,
acuity formats), summarised in plain words from the catalogs, the recall date follows the age
and the myopia, and records are kept per shop with every change in the audit trail and nothing
in the logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest

from bot.bootstrap import Services
from core.audit import RecordError, trail
from core.eye_records import (
    eye_records_of,
    eye_summary,
    latest_eye_record,
    parse_exam,
    recall_due,
    save_eye_record,
)
from core.i18n import texts
from core.models import OutboxMessage
from core.results import Actor
from tests.support.collecting import CollectingChannel
from tests.test_console_api import Staff
from tests.test_records import console_staff

TODAY = date(2026, 11, 21)
DR = Actor.staff("dr_wang")
EXAM = {
    "od_sphere": "-3.00",
    "od_cylinder": "-0.50",
    "od_axis": "180",
    "od_va": "1.0",
    "os_sphere": "-2.75",
    "os_va": "20/20",
    "pd": "62",
}


def _exam(**changes: Any) -> dict[str, Any]:
    return {**EXAM, **changes}


def test_summary_in_plain_words_in_both_languages() -> None:
    exam = parse_exam(_exam(), today=TODAY)
    zh = eye_summary(exam, "zh")
    en = eye_summary(exam, "en")
    assert "右眼近视约300度，散光50度" in zh and "左眼近视约275度" in zh and "瞳距62毫米" in zh
    assert "Right eye: short-sighted, -3.00; astigmatism -0.50" in en and "Left eye: short-sighted, -2.75" in en
    assert en.startswith(texts("en").t("eye.title", date=texts("en").format_date(TODAY)))
    far = parse_exam({"od_sphere": "+1.25", "od_add": "1.50", "os_sphere": "0"}, today=TODAY)
    assert "远视约125度，看近需加光150度" in eye_summary(far, "zh")
    assert "Left eye: " + texts("en").t("eye.plano") in eye_summary(far, "en")
    recall = eye_summary(exam, "en", recall_on=date(2027, 5, 21))
    assert recall.endswith(texts("en").t("eye.recall", date="May 2027"))
    assert eye_summary(exam, "zh", recall_on=date(2027, 5, 21)).endswith(texts("zh").t("eye.recall", date="2027年5月"))
    child = parse_exam(_exam(patient_name="小明"), today=TODAY)
    assert eye_summary(child, "zh").startswith("小明的验光结果")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"od_sphere": "-30.25"}, "od_sphere"),
        ({"od_sphere": "-3.10"}, "od_sphere"),  # not a 0.25 step
        ({"od_sphere": "abc"}, "od_sphere"),
        ({"os_sphere": "31"}, "os_sphere"),
        ({"od_cylinder": "-10.5"}, "od_cylinder"),
        ({"od_axis": "0"}, "od_axis"),
        ({"od_axis": "181"}, "od_axis"),
        ({"od_axis": "90.5"}, "od_axis"),
        ({"od_axis": ""}, "od_axis"),  # a cylinder needs its axis
        ({"os_axis": "90"}, "os_cylinder"),  # an axis needs a cylinder
        ({"od_add": "4.25"}, "od_add"),
        ({"od_add": "-0.25"}, "od_add"),
        ({"od_va": "1.0.0"}, "od_va"),
        ({"od_va": "2.5"}, "od_va"),
        ({"od_va": "20/0"}, "od_va"),
        ({"od_va": "good"}, "od_va"),
        ({"pd": "90"}, "pd"),
        ({"pd": "62.3"}, "pd"),
        ({"examined_on": "2027-01-01"}, "examined_on"),
        ({"patient_birth_date": "21/11/2016"}, "patient_birth_date"),
        ({"notes": "x" * 2001}, "notes"),
        ({"notes": "a\x00b"}, "notes"),
        ({"od_sphere": "", "od_cylinder": "", "od_axis": "", "od_va": "", "os_sphere": "", "os_va": ""}, "od_sphere"),
        ({"os_sphere": "", "os_va": "1.0"}, "os_sphere"),
    ],
)
def test_bad_values_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(RecordError) as bad:
        parse_exam(_exam(**changes), today=TODAY)
    assert bad.value.field == field


def test_accepted_formats() -> None:
    exam = parse_exam(
        {"od_sphere": "−1.25", "od_va": "0.8", "os_sphere": "plano", "os_va": "5.0", "pd": 63.5}, today=TODAY
    )
    assert (exam.od.sphere, exam.od.va, exam.os.sphere, exam.os.va, exam.pd) == (-125, "0.8", 0, "5.0", 635)
    assert parse_exam({"od_sphere": -6, "od_va": "6/9", "os_sphere": "+30", "os_va": "cf"}, today=TODAY).os.va == "CF"
    assert parse_exam({"od_sphere": "-1", "od_va": "1"}, today=TODAY).od.va == "1.0"


def test_recall_by_age_and_myopia() -> None:
    myopic = parse_exam(_exam(examined_on="2026-11-21"), today=TODAY)
    assert recall_due(myopic, age=35) == date(2027, 11, 21)  # adults yearly
    assert recall_due(myopic) == date(2027, 11, 21)  # age unknown: as an adult
    assert recall_due(myopic, birth_date=date(2016, 6, 1)) == date(2027, 5, 21)  # a short-sighted child: 6 months
    earlier = parse_exam({"od_sphere": "-2.25", "os_sphere": "-2.25"}, today=TODAY)
    assert recall_due(myopic, age=10, previous=earlier) == date(2027, 2, 21)  # grew 0.75 D: 3 months
    steady = parse_exam(
        {"od_sphere": "-3.00", "od_cylinder": "-0.50", "od_axis": "180", "os_sphere": "-2.75"}, today=TODAY
    )
    assert recall_due(myopic, age=10, previous=steady) == date(2027, 5, 21)
    clear = parse_exam({"od_sphere": "+0.50", "os_sphere": "+0.50", "patient_birth_date": "2019-02-03"}, today=TODAY)
    assert recall_due(clear) == date(2027, 11, 21)  # a child who is not short-sighted: yearly
    assert recall_due(myopic, age=17) == date(2027, 5, 21) and recall_due(myopic, age=18) == date(2027, 11, 21)
    end_of_month = parse_exam({"od_sphere": "-1.00", "examined_on": "2026-08-31"}, today=TODAY)
    assert recall_due(end_of_month, age=8) == date(2027, 2, 28)


async def test_records_are_kept_per_shop_audited_and_never_logged(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    customer = await services.customers.identify("clearsight", "web", "eyes-1", display_name="Wu")
    exam = parse_exam(_exam(notes="左眼弱视史"), today=TODAY)
    saved = await save_eye_record(services.db, services.clock, "clearsight", customer.id, exam, DR)
    assert saved.od.sphere == -300 and saved.os.va == "20/20" and saved.pd == 620
    fixed = parse_exam(_exam(os_sphere="-2.50", notes="左眼弱视史"), today=TODAY)
    await save_eye_record(services.db, services.clock, "clearsight", customer.id, fixed, DR, record_id=saved.id)
    latest = await latest_eye_record(services.db, "clearsight", customer.id)
    assert latest is not None and latest.id == saved.id and latest.os.sphere == -250
    assert await eye_records_of(services.db, "pawspa", customer.id) == []  # another shop sees nothing
    with pytest.raises(LookupError):
        await save_eye_record(services.db, services.clock, "pawspa", customer.id, exam, DR)
    with pytest.raises(RecordError) as not_theirs:
        await save_eye_record(
            services.db, services.clock, "clearsight", customer.id, parse_exam(_exam(booking_id=999), today=TODAY), DR
        )
    assert not_theirs.value.field == "booking_id"
    events = await trail(services.db, "clearsight", customer.id)
    assert [(e.action, e.actor_id) for e in events] == [
        ("eye_record.added", "dr_wang"),
        ("eye_record.updated", "dr_wang"),
    ]
    assert events[1].details["fields"] == ["os_sphere"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("-3.00", "-300", "20/20", "弱视"):
        assert secret not in logged and secret not in repr([e.details for e in events])


# ------------------------------------------------------------------------------ the console


@pytest.fixture
async def desk(services: Services) -> AsyncIterator[tuple[Staff, Staff]]:
    """Wang (clearsight staff) and Mei (pawspa staff) logged in to the console's API."""
    async with console_staff(services, ("wang", "clearsight"), ("mei", "pawspa")) as (wang, mei):
        yield wang, mei


async def test_console_exam_form_validates_and_only_the_shop_sees_it(
    services: Services, desk: tuple[Staff, Staff], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wang, mei = desk
    customer = await services.customers.identify("clearsight", "web", "eyes-2", display_name="Wu", language="en")
    path = f"/api/console/records/customers/{customer.id}/eye_records"
    for changes, field in (
        ({"od_sphere": "-3.10"}, "od_sphere"),
        ({"od_axis": "200"}, "od_axis"),
        ({"os_va": "perfect"}, "os_va"),
        ({"pd": "100"}, "pd"),
        ({"od_cylinder": 12}, "od_cylinder"),
        ({"examined_on": "tomorrow"}, "examined_on"),
    ):
        status, body = await wang.post(path, _exam(**changes))
        assert status == 400 and body["field"] == field, (changes, body)
    assert (await wang.post(path, ["not", "an", "object"]))[0] == 400
    status, body = await wang.post(path, _exam())
    assert status == 200
    record = body["record"]
    assert record["od"]["sphere"] == "-3.00" and record["recall_on"] == "2027-11-21"
    assert "Right eye: short-sighted, -3.00; astigmatism -0.50" in record["summary"]  # the customer's language
    status, body = await wang.post(f"/api/console/records/eye_records/{record['id']}", _exam(od_sphere="-3.25"))
    assert status == 200 and body["record"]["od"]["sphere"] == "-3.25" and body["record"]["id"] == record["id"]
    async with wang.http.get(wang.base + f"/api/console/records/customers/{customer.id}") as resp:
        assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
        page = await resp.json()
    assert [r["od"]["sphere"] for r in page["eye_records"]] == ["-3.25"]
    # pawspa's staff see none of it and change none of it
    assert (await mei.get(f"/api/console/records/customers/{customer.id}"))[0] == 403
    assert (await mei.post(path, _exam()))[0] == 403
    assert (await mei.post(f"/api/console/records/eye_records/{record['id']}", _exam()))[0] == 403
    assert (await wang.post(path, _exam(), csrf=False))[0] == 403
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "-3.25" not in logged and "20/20" not in logged


async def test_console_sends_the_summary_to_the_customers_chat(services: Services, desk: tuple[Staff, Staff]) -> None:
    wang, mei = desk
    chat = CollectingChannel(services.engine, "clearsight", user="wu", channel="web")
    await chat.push("hello, do you do eye exams?")
    customer = await services.customers.identify("clearsight", "web", "wu")
    status, body = await wang.post(f"/api/console/records/customers/{customer.id}/eye_records", _exam())
    assert status == 200
    record_id = body["record"]["id"]
    assert (await mei.post(f"/api/console/records/eye_records/{record_id}/send"))[0] == 403
    status, sent = await wang.post(f"/api/console/records/eye_records/{record_id}/send")
    assert status == 200
    async with services.db.reading() as s:
        row = await s.get(OutboxMessage, sent["outbox_id"])
    assert row is not None and row.external_id == "wu"
    conv = await services.store.latest_conversation("clearsight", customer.id)
    assert conv is not None
    language = conv.language
    assert row.body["text"].startswith(texts(language).t("eye.title", date=texts(language).format_date(TODAY)))
    assert texts(language).t("eye.right") in row.body["text"]
    assert "eye_record.sent" in [e.action for e in await trail(services.db, "clearsight", customer.id)]
    lonely = await services.customers.identify("clearsight", "phone", "walk-in:Li")
    status, body = await wang.post(f"/api/console/records/customers/{lonely.id}/eye_records", _exam())
    status, _ = await wang.post(f"/api/console/records/eye_records/{body['record']['id']}/send")
    assert status == 422  # no chat to send it to
