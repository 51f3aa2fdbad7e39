"""Report figures against a seeded database, checked by a second, plain computation over the
seeded facts (not the same queries): per day, ISO week and month in the shop's zone, across a
DST change; side by side for two shops; and the console's JSON and CSV with auth and bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.bootstrap import Services
from bot.web import build_app
from core import reports
from core.config import ShopConfig
from core.models import (
    ActorKind,
    Booking,
    BookingEvent,
    BookingStatus,
    Conversation,
    ConversationMode,
    Customer,
    FaqAnswer,
    Rating,
    Reminder,
    ReminderStatus,
    TranscriptEntry,
    UnansweredQuestion,
    WaitlistEntry,
    WaitlistStatus,
)
from tests.conftest import CONFIG_PATH
from tests.support.cli import run_chatbook

BERLIN = ZoneInfo("Europe/Berlin")  # pawspa is re-zoned for these tests: the range crosses 25 October
FIRST, LAST = date(2026, 9, 25), date(2026, 11, 5)
SPAN = (datetime(2026, 9, 15, tzinfo=UTC), datetime(2026, 11, 15, tzinfo=UTC))  # seeded wider than the range
SERVICE = {"pawspa": "dog_bath_small", "clearsight": "adult_exam"}
GONE = {"held", "expired"}
PASSWORD = "correct horse battery"


@dataclass
class Seeded:
    """The facts as seeded (plain Python values), for the independent computation."""

    # (shop, conversation, customer, channel, at) of each customer message
    messages: list[tuple[str, int, int, str, datetime]] = field(default_factory=list)
    bookings: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, datetime, int]] = field(default_factory=list)  # shop, action, at, booking
    reminded: set[int] = field(default_factory=set)  # bookings with a queued day-before or same-day reminder
    confirmed: set[int] = field(default_factory=set)  # bookings with a customer_confirmed event
    waitlist: list[tuple[str, str, datetime, datetime]] = field(default_factory=list)  # shop, status, created, updated
    ratings: list[tuple[str, int, datetime]] = field(default_factory=list)
    faq: list[tuple[str, bool, datetime]] = field(default_factory=list)


def _moment(rng: random.Random) -> datetime:
    start, end = SPAN
    if rng.random() < 0.2:  # close to midnight in Berlin (22:00-23:59 UTC), where zones decide the day
        day = start + timedelta(days=rng.randrange((end - start).days))
        return day.replace(hour=rng.choice((21, 22, 23)), minute=rng.randrange(60), second=rng.randrange(60))
    return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))


class _Seeder:
    """Writes one shop's rows in the caller's transaction and notes each fact in ``facts``."""

    def __init__(self, s: AsyncSession, rng: random.Random, facts: Seeded, shop_id: str) -> None:
        self.s, self.rng, self.facts, self.shop_id = s, rng, facts, shop_id
        self.customers: list[tuple[int, list[tuple[int, str]]]] = []  # customer, [(conversation, channel)]

    async def people(self) -> None:
        for n in range(24):
            customer = Customer(shop_id=self.shop_id, display_name=f"c{n}", language="zh", created_at=SPAN[0])
            self.s.add(customer)
            await self.s.flush()
            chats = []
            for channel in self.rng.sample(("telegram", "wechat", "web"), k=0 if n < 3 else self.rng.choice((1, 1, 2))):
                conv = Conversation(
                    shop_id=self.shop_id,
                    channel=channel,
                    external_id=f"{self.shop_id}-{n}-{channel}",
                    customer_id=customer.id,
                    mode=ConversationMode.BOT,
                    created_at=SPAN[0],
                    updated_at=SPAN[0],
                )
                self.s.add(conv)
                await self.s.flush()
                chats.append((conv.id, channel))
            self.customers.append((customer.id, chats))

    def say(self, conv_id: int, customer_id: int, channel: str, at: datetime) -> None:
        self.s.add(TranscriptEntry(conversation_id=conv_id, direction="in", author="customer", text="hi", at=at))
        self.facts.messages.append((self.shop_id, conv_id, customer_id, channel, at))

    def chatter(self) -> None:
        chatty = [(cid, chats) for cid, chats in self.customers if chats]
        for _ in range(160):
            customer_id, chats = self.rng.choice(chatty)
            conv_id, channel = self.rng.choice(chats)
            self.say(conv_id, customer_id, channel, _moment(self.rng))
            if self.rng.random() < 0.3:  # the bot's answers are not chats
                self.s.add(
                    TranscriptEntry(conversation_id=conv_id, direction="out", author="bot", at=_moment(self.rng))
                )

    def event(self, booking_id: int, action: str, at: datetime, kind: ActorKind = ActorKind.CUSTOMER) -> None:
        self.s.add(BookingEvent(booking_id=booking_id, at=at, actor_kind=kind, actor_id="x", action=action, details={}))
        self.facts.events.append((self.shop_id, action, at, booking_id))

    async def booking(self, n: int) -> None:
        rng = self.rng
        customer_id, chats = rng.choice(self.customers)
        created = _moment(rng)
        creator = rng.choice((ActorKind.CUSTOMER,) * 6 + (ActorKind.STAFF,) * 3 + (ActorKind.SYSTEM,))
        if not chats:
            creator = rng.choice((ActorKind.STAFF, ActorKind.SYSTEM))  # a phone customer
        elif creator != ActorKind.STAFF:  # a chat booking: the customer wrote first, on one of their channels
            conv_id, channel = rng.choice(chats)
            self.say(conv_id, customer_id, channel, created - timedelta(minutes=rng.randrange(1, 90)))
        status = rng.choice(list(BookingStatus))
        start = created + timedelta(hours=rng.randrange(1, 24 * 12))
        row = Booking(
            shop_id=self.shop_id,
            code=f"R{n:04d}",
            customer_id=customer_id,
            service_id=SERVICE[self.shop_id],
            start_at=start,
            end_at=start + timedelta(hours=1),
            status=status,
            price_cents=0,
            created_at=created,
            updated_at=created,
        )
        self.s.add(row)
        await self.s.flush()
        fact = {"id": row.id, "customer": customer_id, "created": created, "start": start, "status": status.value}
        self.facts.bookings.append({**fact, "shop": self.shop_id, "creator": creator})
        self.event(row.id, "held" if rng.random() < 0.5 else "booked", created, creator)
        if status == BookingStatus.CANCELLED:
            self.event(row.id, "cancelled", created + timedelta(hours=rng.randrange(1, 24 * 20)), ActorKind.STAFF)
        for _ in range(rng.choice((0, 0, 1, 2))):
            self.event(row.id, "rescheduled", created + timedelta(hours=rng.randrange(1, 24 * 20)))
        self.reminder(row.id, created, start)
        if status == BookingStatus.COMPLETED and rng.random() < 0.7:
            stars, at = rng.randint(1, 5), start + timedelta(hours=rng.randrange(1, 72))
            self.s.add(Rating(booking_id=row.id, customer_id=customer_id, shop_id=self.shop_id, stars=stars, at=at))
            self.facts.ratings.append((self.shop_id, stars, at))

    def reminder(self, booking_id: int, created: datetime, start: datetime) -> None:
        if self.rng.random() < 0.6:
            kind = self.rng.choice(("day_before", "same_day", "confirmation"))
            state = self.rng.choice((ReminderStatus.QUEUED, ReminderStatus.QUEUED, ReminderStatus.PENDING))
            self.s.add(
                Reminder(
                    booking_id=booking_id,
                    kind=kind,
                    for_start=start,
                    due_at=start - timedelta(hours=3),
                    status=state,
                    created_at=created,
                )
            )
            if state == ReminderStatus.QUEUED and kind != "confirmation":
                self.facts.reminded.add(booking_id)
        if self.rng.random() < 0.4:  # also some who confirmed without being reminded: not counted
            self.event(booking_id, "customer_confirmed", start - timedelta(hours=2))
            self.facts.confirmed.add(booking_id)

    def waitlist_and_faq(self) -> None:
        for _ in range(40):
            customer_id, _chats = self.rng.choice(self.customers)
            created = _moment(self.rng)
            status = self.rng.choice(list(WaitlistStatus))
            moved = status != WaitlistStatus.WAITING
            updated = created + timedelta(hours=self.rng.randrange(0, 24 * 6)) if moved else created
            self.s.add(
                WaitlistEntry(
                    shop_id=self.shop_id,
                    customer_id=customer_id,
                    service_id=SERVICE[self.shop_id],
                    day=created.date(),
                    status=status,
                    created_at=created,
                    updated_at=updated,
                )
            )
            self.facts.waitlist.append((self.shop_id, status.value, created, updated))
        for _ in range(90):
            at, answered = _moment(self.rng), self.rng.random() < 0.7
            if answered:
                self.s.add(FaqAnswer(shop_id=self.shop_id, entry_id="hours", at=at))
            else:
                self.s.add(UnansweredQuestion(shop_id=self.shop_id, text="?", normalized="?", at=at))
            self.facts.faq.append((self.shop_id, answered, at))


async def seed(services: Services, rng_seed: int = 15) -> Seeded:
    """Customers, chats, bookings and everything the reports count, for pawspa and clearsight."""
    rng = random.Random(rng_seed)
    facts = Seeded()
    async with services.db.transaction() as s:
        for shop_id in ("pawspa", "clearsight"):
            seeder = _Seeder(s, rng, facts, shop_id)
            await seeder.people()
            seeder.chatter()
            for n in range(70):
                await seeder.booking(n)
            seeder.waitlist_and_faq()
    return facts


# ---------------------------------------------------------------------------------------------- the second computation


def label(moment: datetime | date, tz: ZoneInfo, grain: str) -> str:
    local = moment.astimezone(tz) if isinstance(moment, datetime) else moment
    return local.strftime({"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}[grain])


class _Expected:
    """Every figure per period label, by plain loops over the seeded facts."""

    def __init__(self, facts: Seeded, shop_id: str, tz: ZoneInfo, grain: str) -> None:
        self.facts, self.shop_id, self.tz, self.grain = facts, shop_id, tz, grain
        days = [FIRST + timedelta(days=d) for d in range((LAST - FIRST).days + 1)]
        self.out: dict[str, dict[str, Any]] = {}
        for lab in sorted({label(day, tz, grain) for day in days}):
            self.out[lab] = defaultdict(int)
            self.out[lab]["by_channel"] = Counter()

    def inside(self, moment: datetime) -> bool:
        return FIRST <= moment.astimezone(self.tz).date() <= LAST

    def at(self, moment: datetime) -> dict[str, Any]:
        return self.out[label(moment, self.tz, self.grain)]

    def chats_and_bookings(self) -> None:
        real = [b for b in self.facts.bookings if b["shop"] == self.shop_id and b["status"] not in GONE]
        booked = {(label(b["created"], self.tz, self.grain), b["customer"]) for b in real if self.inside(b["created"])}
        mine = [m for m in self.facts.messages if m[0] == self.shop_id]
        chats = {(label(at, self.tz, self.grain), conv, cust) for _s, conv, cust, _ch, at in mine if self.inside(at)}
        for lab, _conv, customer in chats:
            self.out[lab]["chats"] += 1
            self.out[lab]["chats_converted"] += (lab, customer) in booked
        for b in real:
            if not self.inside(b["created"]):
                continue
            before = [(at, ch) for _s, _c, cust, ch, at in mine if cust == b["customer"] and at <= b["created"]]
            channel = "staff" if b["creator"] == ActorKind.STAFF else max(before)[1] if before else "other"
            self.at(b["created"])["bookings"] += 1
            self.at(b["created"])["by_channel"][channel] += 1

    def changes_and_visits(self) -> None:
        for shop, action, at, _bid in self.facts.events:
            if shop == self.shop_id and self.inside(at) and action in ("cancelled", "rescheduled"):
                self.at(at)[action] += 1
        for b in self.facts.bookings:
            if b["shop"] != self.shop_id or not self.inside(b["start"]):
                continue
            row = self.at(b["start"])
            row["completed"] += b["status"] == "completed"
            row["no_show"] += b["status"] == "no_show"
            if b["id"] in self.facts.reminded and b["status"] not in GONE:
                row["reminded"] += 1
                row["confirmed"] += b["id"] in self.facts.confirmed

    def the_rest(self) -> None:
        for shop, status, created, updated in self.facts.waitlist:
            if shop == self.shop_id and self.inside(created):
                self.at(created)["waitlist_joined"] += 1
            if shop == self.shop_id and status == "booked" and self.inside(updated):
                self.at(updated)["waitlist_filled"] += 1
        for shop, stars, at in self.facts.ratings:
            if shop == self.shop_id and self.inside(at):
                row = self.at(at)
                row["ratings"] += 1
                row["stars_total"] += stars
                row["low_ratings"] += stars <= 2
        for shop, answered, at in self.facts.faq:
            if shop == self.shop_id and self.inside(at):
                self.at(at)["faq_answered" if answered else "faq_unanswered"] += 1


def expected(facts: Seeded, shop_id: str, tz: ZoneInfo, grain: str) -> dict[str, dict[str, Any]]:
    count = _Expected(facts, shop_id, tz, grain)
    count.chats_and_bookings()
    count.changes_and_visits()
    count.the_rest()
    return count.out


def _berlin(services: Services) -> ShopConfig:
    return services.config.shops["pawspa"].model_copy(update={"timezone": "Europe/Berlin"})


@pytest.mark.parametrize("grain", ["day", "week", "month"])
async def test_figures_match_an_independent_count_of_the_seeded_rows(services: Services, grain: reports.Grain) -> None:
    facts = await seed(services)
    shops = {"pawspa": _berlin(services), "clearsight": services.config.shops["clearsight"]}
    found = await reports.compare(services.db, shops, grain, FIRST, LAST)
    assert [r.shop_id for r in found] == ["pawspa", "clearsight"]
    for report, (shop_id, shop) in zip(found, shops.items(), strict=True):
        want = expected(facts, shop_id, shop.tz, grain)
        assert [row.period for row in report.rows] == list(want)  # every period, in order, none missing
        for row in report.rows:
            for name in reports.COUNTS:
                assert getattr(row, name) == want[row.period][name], (shop_id, row.period, name)
            assert row.by_channel == dict(want[row.period]["by_channel"]), (shop_id, row.period)
        total = report.total
        assert total.chats == sum(w["chats"] for w in want.values())
        assert total.bookings == sum(sum(w["by_channel"].values()) for w in want.values())
        assert report.channels == sorted({c for w in want.values() for c in w["by_channel"]})
    for name in reports.COUNTS:  # the seed exercised every figure
        assert getattr(found[0].total, name) > 0, name
    assert {"staff", "other"} <= set(found[0].channels) | set(found[1].channels)


async def test_the_shops_zone_decides_the_day(services: Services) -> None:
    """The same rows give other days in Berlin than in Shanghai (and the seed's midnights show it)."""
    facts = await seed(services)
    shanghai = await reports.figures(services.db, "pawspa", services.config.shops["pawspa"], "day", FIRST, LAST)
    berlin = await reports.figures(services.db, "pawspa", _berlin(services), "day", FIRST, LAST)
    assert [r.chats for r in shanghai.rows] != [r.chats for r in berlin.rows]
    want = expected(facts, "pawspa", ZoneInfo("Asia/Shanghai"), "day")
    assert [r.chats for r in shanghai.rows] == [want[r.period]["chats"] for r in shanghai.rows]


def test_periods_and_rates() -> None:
    assert reports.periods("week", date(2026, 12, 30), date(2027, 1, 5)) == [
        ("2026-W53", date(2026, 12, 28)),
        ("2027-W01", date(2027, 1, 4)),
    ]
    assert [p for p, _ in reports.periods("month", date(2026, 10, 31), date(2026, 12, 1))] == [
        "2026-10",
        "2026-11",
        "2026-12",
    ]
    row = reports.PeriodFigures("2026-11", date(2026, 11, 1), chats=8, chats_converted=2, completed=9, no_show=1)
    assert (row.conversion, row.no_show_rate, row.confirmation_rate, row.average_stars) == (0.25, 0.1, None, None)
    row.ratings, row.stars_total, row.faq_answered, row.faq_unanswered = 4, 14, 3, 1
    assert (row.average_stars, row.faq_answer_rate) == (3.5, 0.75)


async def test_an_empty_shop_has_zero_rows_not_missing_ones(services: Services) -> None:
    report = await reports.figures(services.db, "pawspa", services.config.shops["pawspa"], "week", FIRST, LAST)
    assert len(report.rows) == 7 and all(r.chats == 0 and r.conversion is None for r in report.rows)
    assert report.total.as_dict()["conversion"] is None


async def test_faq_answers_recorded_by_the_engine_hook_are_counted(services: Services) -> None:
    at = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    await reports.record_faq_answer(services.db, "pawspa", "hours", at)
    report = await reports.figures(services.db, "pawspa", services.config.shops["pawspa"], "month", FIRST, LAST)
    assert [r.faq_answered for r in report.rows] == [0, 0, 1]


# ---------------------------------------------------------------------------------------------- console API


class Staff:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base, self.http = base, http

    async def login(self, services: Services, username: str) -> Staff:
        session = await services.accounts.login(username, PASSWORD, "127.0.0.1")
        assert session is not None
        self.http.cookie_jar.update_cookies({"chatbook_session": session.token})
        return self

    async def get(self, path: str) -> tuple[int, str, dict[str, str]]:
        async with self.http.get(self.base + path) as resp:
            return resp.status, await resp.text(), dict(resp.headers)


@pytest.fixture
async def console(services: Services) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    await services.accounts.add("lily", PASSWORD, shops=["pawspa"])
    await services.accounts.add("boss", PASSWORD, shops=["pawspa", "clearsight"], role="admin")
    server = TestServer(build_app(services), host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    yield str(server.make_url("")).rstrip("/"), http
    await http.close()
    await server.close()


async def test_csv_export_needs_a_session_and_the_shop(services: Services, console: Any) -> None:
    base, http = console
    anonymous = Staff(base, http)
    status, _, _ = await anonymous.get("/api/console/reports.csv?shop=pawspa")
    assert status == 401
    lily = await Staff(base, http).login(services, "lily")
    for path in ("/api/console/reports.csv?shop=clearsight", "/api/console/reports?shop=clearsight"):
        status, body, _ = await lily.get(path)
        assert status == 403, path
    status, body, _ = await lily.get("/api/console/reports.csv?shop=all")
    assert status == 200  # "all" is every shop of the account: for lily, pawspa alone
    assert {row["shop"] for row in csv.DictReader(io.StringIO(body.lstrip("\ufeff")))} == {"pawspa"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("grain=year", "grain"),
        ("from=2026-13-01", "from"),
        ("to=tomorrow", "to"),
        ("from=2026-11-10&to=2026-11-01", "from"),
        ("from=1990-01-01", "from"),
        ("grain=day&from=2025-01-01&to=2026-11-20", "from"),  # more days than a chart can show
        ("shop=" + "x" * 300, "shop"),
    ],
)
async def test_bad_report_requests_are_400_naming_the_field(
    services: Services, console: Any, query: str, field: str
) -> None:
    base, http = console
    boss = await Staff(base, http).login(services, "boss")
    for path in ("/api/console/reports", "/api/console/reports.csv"):
        status, body, _ = await boss.get(f"{path}?{'shop=pawspa&' if 'shop=' not in query else ''}{query}")
        assert status == 400, (path, query, body)
        assert f'"field": "{field}"' in body


async def test_json_and_csv_show_the_same_figures_side_by_side(services: Services, console: Any) -> None:
    await seed(services)
    base, http = console
    boss = await Staff(base, http).login(services, "boss")
    query = f"shop=all&grain=week&from={FIRST.isoformat()}&to={LAST.isoformat()}"
    status, body, _ = await boss.get(f"/api/console/reports?{query}")
    assert status == 200
    data = json.loads(body)
    assert [s["id"] for s in data["shops"]] == ["pawspa", "clearsight"]
    status, text, headers = await boss.get(f"/api/console/reports.csv?{query}")
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    assert headers["Content-Disposition"] == 'attachment; filename="chatbook-all-week-2026-09-25-2026-11-05.csv"'
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    for shop in data["shops"]:
        report = shop["report"]
        mine = [r for r in rows if r["shop"] == shop["id"]]
        assert [r["period"] for r in mine] == [r["period"] for r in report["rows"]] + [
            f"{FIRST.isoformat()}..{LAST.isoformat()}"
        ]
        for line, want in zip(mine, [*report["rows"], report["total"]], strict=True):
            for name in reports.COUNTS:
                assert int(line[name]) == want[name], (shop["id"], line["period"], name)
            for channel in report["channels"]:
                assert int(line[f"bookings_{channel}"]) == want["by_channel"].get(channel, 0)
            assert line["conversion"] == ("" if want["conversion"] is None else str(want["conversion"]))
    expected_total = await reports.figures(services.db, "pawspa", services.config.shops["pawspa"], "week", FIRST, LAST)
    assert data["shops"][0]["report"]["total"]["chats"] == expected_total.total.chats


async def test_recent_ratings_and_their_comments_go_out_as_data(services: Services, console: Any) -> None:
    await seed(services)
    async with services.db.transaction() as s:
        rating = await s.scalar(select(Rating).where(Rating.shop_id == "pawspa").order_by(Rating.id.desc()).limit(1))
        assert rating is not None
        rating.comment, rating.at = '<img src=x onerror="alert(1)">', datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
    base, http = console
    lily = await Staff(base, http).login(services, "lily")
    status, body, _ = await lily.get("/api/console/reports?shop=pawspa")
    assert status == 200
    [shop] = json.loads(body)["shops"]
    assert shop["recent_ratings"][0]["comment"] == '<img src=x onerror="alert(1)">'
    assert shop["recent_ratings"][0]["at"].startswith("2026-11-20T12:00")  # in the shop's zone


# ---------------------------------------------------------------------------------------------- CLI


async def _chatbook(url: str, *args: str) -> tuple[int | None, str, str]:
    """``chatbook <args>`` on the demo config and the test's database: exit code, stdout, stderr.
    Runs ``bot.cli.main`` in this process (tests/support/cli.py), in a thread: it runs its own loop."""
    env = {"CHATBOOK_DATABASE_URL": url}
    done = await asyncio.to_thread(run_chatbook, *args, "--config", str(CONFIG_PATH), env=env)
    return done.returncode, done.stdout, done.stderr


async def test_cli_report_csv_prints_the_same_figures(sqlite_services: Services, tmp_path: Any) -> None:
    services = sqlite_services  # the CLI run is the same on both databases; SQLite only, once is enough
    await seed(services)
    want = await reports.figures(services.db, "pawspa", services.config.shops["pawspa"], "month", FIRST, LAST)
    url = services.db.url.render_as_string(hide_password=False)
    period = ["--by", "month", "--from", FIRST.isoformat(), "--to", LAST.isoformat()]
    code, out, err = await _chatbook(url, "report", "--shop", "pawspa", "--csv", *period)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["period"] for r in rows] == ["2026-09", "2026-10", "2026-11", "2026-09-25..2026-11-05"]
    assert [int(r["chats"]) for r in rows] == [r.chats for r in [*want.rows, want.total]]
    code, _, err = await _chatbook(url, "report", "--shop", "pawspa", "--csv", "--from", "soon")
    assert code == 2 and "--from" in err


async def test_the_page_needs_a_session_and_serves_the_chart_library_itself(services: Services, console: Any) -> None:
    base, http = console
    async with http.get(f"{base}/console/reports?shop=pawspa", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"].startswith("/console/login")
    lily = await Staff(base, http).login(services, "lily")
    status, html, headers = await lily.get("/console/reports?shop=pawspa")
    assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
    assert '<script src="/console/static/vendor/uplot/uPlot.iife.min.js' in html
    assert 'value="all"' not in html  # one shop: nothing to put side by side
    status, _, _ = await lily.get("/console/reports?shop=clearsight")
    assert status == 403
    for asset in ("vendor/uplot/uPlot.iife.min.js", "vendor/uplot/uPlot.min.css", "vendor/uplot/LICENSE", "reports.js"):
        async with http.get(f"{base}/console/static/{asset}") as resp:
            assert resp.status == 200, asset
            assert "cdn" not in (await resp.text()).lower(), asset
