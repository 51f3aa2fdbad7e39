"""The opticians' daily check-up recalls (bot/usecases/recalls.py, core/eye_records.py
``send_due_recalls``), on SQLite and PostgreSQL.

The people are those of tests/test_eye_recalls.py (``seed_recalls``), today Saturday 21 Nov 2026
in Shanghai. With the defaults (7 days before the recall date, at most 90 days overdue, from
10:00 to 19:00 shop time) the run writes to:

- Wu (adult, due 10 Nov, overdue 11 days): yes, in Wu's chat.
- Wu's son 小明 (due 25 Nov, in 4 days): yes, in Wu's chat, naming 小明.
- Lily (due 30 Nov, in 9 days): not yet (a later day's run).
- Sun (due 1 Sep, overdue 81 days): no chat with us, left for staff to phone.
- Zhao (due June 2027): no.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.bootstrap import Services
from bot.usecases.recalls import DailyRecalls
from core.audit import trail
from core.bookings import BookingRequest
from core.clock import FixedClock
from core.config import ShopConfig
from core.eye_records import RecallRefused, send_due_recalls, send_recall
from core.i18n import texts
from core.models import OutboxMessage, Reminder, ReminderStatus
from core.results import Actor, Booked
from tests.test_eye_recalls import seed_recalls

SHOP = "clearsight"
TEN_LOCAL = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
WORKER = Path(__file__).resolve().parent / "recall_worker.py"
ROOT = WORKER.parent.parent


async def _recall_rows(services: Services) -> list[OutboxMessage]:
    async with services.db.reading() as s:
        rows = await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return [m for m in rows if m.body.get("eye_recall")]


def _with(services: Services, monkeypatch: pytest.MonkeyPatch, **rules: Any) -> ShopConfig:
    shop = services.config.shops[SHOP]
    changed = shop.model_copy(update={"eye_recall": shop.eye_recall.model_copy(update=rules)})
    monkeypatch.setitem(services.config.shops, SHOP, changed)
    return changed


async def test_the_daily_run_writes_once_to_each_person_due(services: Services, clock: FixedClock) -> None:
    ids = await seed_recalls(services)
    job = DailyRecalls()
    clock.set(TEN_LOCAL - timedelta(minutes=1))  # 09:59: not yet
    assert SHOP not in await job.tick(services)
    assert await _recall_rows(services) == []

    clock.set(TEN_LOCAL)
    run = (await job.tick(services))[SHOP]
    assert run.sent == (ids["wu"], ids["xiaoming"])
    assert run.left == {"no_channel": (ids["sun"],)}
    rows = await _recall_rows(services)
    assert [(m.external_id, m.body["eye_recall"]) for m in rows] == [("wu", ids["wu"]), ("wu", ids["xiaoming"])]

    conv = await services.store.latest_conversation(SHOP, await _wu(services))
    assert conv is not None
    t = texts(conv.language)
    months = t.list("format.months")
    expected = t.t(
        "recalls.auto_for",
        shop=services.config.shops[SHOP].name.get(t.lang),
        name="小明",
        date=t.t("eye.month", year=2026, month=months[4]),
        recall=t.t("eye.month", year=2026, month=months[10]),
    )
    assert rows[1].body["text"] == expected
    assert [b["payload"] for b in rows[1].body["buttons"]] == ["m:book"]
    assert [b["label"] for b in rows[1].body["buttons"]] == [t.t("recalls.book")]

    clock.advance(timedelta(hours=2))  # the same day again: nothing (not even the list is read)
    assert SHOP not in await job.tick(services)
    restarted = DailyRecalls()  # a restart the same day reads the list again and sends nothing twice
    again = (await restarted.tick(services))[SHOP]
    assert again.sent == () and set(again.left["already_sent"]) == {ids["wu"], ids["xiaoming"]}
    assert len(await _recall_rows(services)) == 2

    with pytest.raises(RecallRefused) as refused:  # staff's one-tap reminder after the run: refused too
        await send_recall(
            services.db, services.clock, services.config.shops[SHOP], SHOP, ids["xiaoming"], Actor.staff("wang")
        )
    assert refused.value.reason == "already_sent"

    audited = [e for e in await trail(services.db, SHOP, await _wu(services)) if e.action == "eye_record.recall_sent"]
    assert [(e.actor_id, e.details) for e in audited] == [("recall", {"automatic": True})] * 2

    clock.advance(timedelta(days=3))  # 24 Nov: Lily's recall (30 Nov) is now 6 days away
    later = (await job.tick(services))[SHOP]
    assert later.sent == (ids["lily"],)
    assert [m.external_id for m in await _recall_rows(services)] == ["wu", "wu", "chen"]


async def _wu(services: Services) -> int:
    wu = await services.customers.identify(SHOP, "web", "wu")
    return wu.id


async def test_switched_off_outside_the_window_and_other_shops(
    services: Services, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_recalls(services)
    clock.set(TEN_LOCAL)
    _with(services, monkeypatch, auto_send=False)
    assert SHOP not in await DailyRecalls().tick(services)
    _with(services, monkeypatch, auto_send=True, send_at=time(8, 0), send_until=time(9, 30))
    assert SHOP not in await DailyRecalls().tick(services)  # 10:00 is after the window
    assert await _recall_rows(services) == []
    _with(services, monkeypatch, send_at=time(9, 0), send_until=time(19, 0))
    runs = await DailyRecalls().tick(services)
    assert runs[SHOP].sent and runs["pawspa"].sent == ()  # a pet shop has no exams to recall


async def test_consent_a_visit_booked_and_too_old_hold_back(
    services: Services, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await seed_recalls(services)
    clock.set(TEN_LOCAL)
    shop = _with(services, monkeypatch, consent="notices")
    run = await send_due_recalls(services.db, services.clock, shop, SHOP)
    assert run.sent == () and set(run.left["no_consent"]) == {ids["wu"], ids["xiaoming"], ids["sun"]}

    wu = await _wu(services)
    await services.customers.update(wu, notices=True)  # Wu opted in to the shop's news
    shop = _with(services, monkeypatch, consent="notices", max_overdue_days=5)
    run = await send_due_recalls(services.db, services.clock, shop, SHOP)
    assert run.sent == (ids["xiaoming"],)  # Wu's own recall is 11 days overdue: staff phone
    assert run.left["too_old"] == (ids["sun"], ids["wu"])

    chen = (await services.customers.identify(SHOP, "web", "chen")).id
    clock.advance(timedelta(days=3))  # Lily due in 6 days, but Chen has booked an exam already
    booked = await services.bookings.book(
        BookingRequest(SHOP, "child_exam", datetime(2026, 11, 28, 3, 0, tzinfo=UTC), customer_id=chen),
        Actor.customer(chen),
    )
    assert isinstance(booked, Booked)
    shop = _with(services, monkeypatch, consent="service", max_overdue_days=90)
    run = await send_due_recalls(services.db, services.clock, shop, SHOP)
    assert run.sent == (ids["wu"],) and run.left["booked"] == (ids["lily"],)


async def test_two_processes_at_once_send_each_recall_once(services: Services, db_url: str) -> None:
    """Two real `serve` processes start the day's run at the same moment; a third comes later
    (a restart). Each exam's reminder is in the outbox exactly once."""
    ids = await seed_recalls(services)
    url = db_url
    now = TEN_LOCAL.isoformat()

    def spawn() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(WORKER), "--database-url", url, "--now", now],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    async def ready(p: subprocess.Popen[str]) -> None:
        assert p.stdout is not None
        line = await asyncio.to_thread(p.stdout.readline)
        assert line.strip() == "ready", line

    async def result(p: subprocess.Popen[str]) -> list[int]:
        out, _ = await asyncio.to_thread(p.communicate, "go\n", 120)
        assert p.returncode == 0
        return list(json.loads(out.strip().splitlines()[-1]).get(SHOP, []))

    first, second = spawn(), spawn()
    try:
        await asyncio.gather(ready(first), ready(second))
        sent_a, sent_b = await asyncio.gather(result(first), result(second))
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
    assert sorted(sent_a + sent_b) == sorted([ids["wu"], ids["xiaoming"]])  # between them, each once
    third = spawn()
    await ready(third)
    assert await result(third) == []
    rows = await _recall_rows(services)
    assert sorted(m.body["eye_recall"] for m in rows) == sorted([ids["wu"], ids["xiaoming"]])


async def test_a_recent_rebook_nudge_stands_in_for_the_recall(services: Services, clock: FixedClock) -> None:
    """The service's own "time for the next one?" nudge (rebook_after_days) went to Wu last week:
    the run does not write to Wu again; once the nudge is 30 days old it does."""
    ids = await seed_recalls(services)
    wu = await _wu(services)
    clock.set(TEN_LOCAL - timedelta(days=40))
    old = await services.bookings.book(
        BookingRequest(SHOP, "adult_exam", datetime(2026, 10, 20, 3, 0, tzinfo=UTC), customer_id=wu),
        Actor.staff("wang"),
    )
    assert isinstance(old, Booked)
    await services.bookings.cancel(SHOP, old.booking.id, Actor.staff("wang"))  # no visit ahead
    clock.set(TEN_LOCAL)
    async with services.db.transaction() as s:
        s.add(
            Reminder(
                booking_id=old.booking.id,
                kind="rebook",
                for_start=old.booking.start,
                due_at=TEN_LOCAL - timedelta(days=6),
                status=ReminderStatus.QUEUED,
                queued_at=TEN_LOCAL - timedelta(days=6),
                created_at=TEN_LOCAL - timedelta(days=40),
            )
        )
    run = await send_due_recalls(services.db, services.clock, services.config.shops[SHOP], SHOP)
    assert run.sent == () and set(run.left["nudged"]) == {ids["wu"], ids["xiaoming"]}
    clock.advance(timedelta(days=25))  # the nudge is 31 days old
    run = await send_due_recalls(services.db, services.clock, services.config.shops[SHOP], SHOP)
    assert set(run.sent) >= {ids["wu"], ids["xiaoming"]}
