"""Calendar files: one .ics per booking and a feed per shop and per staff member, behind unguessable tokens.

Tokens are derived, not stored: ``HMAC-SHA256(server secret, what the URL shows)``, cut to 128 bits.

- A booking's URL is ``/cal/{shop}/booking/{code}/{token}.ics`` with the token over (shop, code).
  No row per booking: the link exists the moment the booking does (the engine can put it in the
  confirmation inside the booking's own transaction) and nothing has to be backfilled.
- A feed's URL is ``/cal/{shop}/feed/{token}.ics`` (the shop) or ``/cal/{shop}/staff/{staff}/{token}.ics``
  with the token over (shop, staff, generation). ``calendar_feeds`` holds only the generation
  counter; rotating bumps it, so the old URL no longer matches and answers 404.
- The secret is ``${CHATBOOK_SECRET}`` (at least 16 characters). Without it the server generates one
  once and keeps it in ``server_secrets`` (shared by every process on the database); changing
  CHATBOOK_SECRET revokes every calendar URL at once.

A database dump thus reveals no working URL when CHATBOOK_SECRET is set (only counters), and a
guessed code is useless without its token. Tokens are compared in constant time.

The .ics (RFC 5545, built with the icalendar library): a stable UID per booking, SEQUENCE = how
often its time or status changed (reschedules, add-ons, cancellation), STATUS CONFIRMED / TENTATIVE
(waiting for staff) / CANCELLED, DTSTART/DTEND in the shop's zone with its VTIMEZONE, LOCATION the
shop's address, the booking code in the description and a display alarm before the visit. Only
names from config.yaml appear (service, staff, shop, address): no customer-facing sentence is
written here. Feeds cover today (in the shop's zone) to 60 days ahead, without cancelled bookings.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from icalendar import Alarm, Calendar, Event, Timezone
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.config import AppConfig, ShopConfig
from core.db import Database
from core.models import Booking, BookingEvent, BookingStatus, CalendarFeed, Customer, Pet, ServerSecret

SECRET_ENV = "CHATBOOK_SECRET"
MIN_SECRET_CHARS = 16
FEED_DAYS = 60
ALARM_BEFORE = timedelta(hours=1)
PRODID = "-//chatbook//calendar//EN"
# Changes of time or status that a calendar must see as a new version of the event.
VERSION_ACTIONS = ("rescheduled", "addon_added", "cancelled", "declined", "approved", "hold_expired")
SHOP_FEED = ""  # staff_id of the whole shop's feed
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
_STATUS = {
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.COMPLETED: "CONFIRMED",
    BookingStatus.NO_SHOW: "CONFIRMED",
    BookingStatus.PENDING: "TENTATIVE",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.EXPIRED: "CANCELLED",
}
FEED_STATUSES = (BookingStatus.PENDING, BookingStatus.CONFIRMED, BookingStatus.COMPLETED, BookingStatus.NO_SHOW)


# ---------------------------------------------------------------------------------------------- tokens


def _token(secret: bytes, *parts: str) -> str:
    message = "\x1f".join(parts).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def booking_token(secret: bytes, shop_id: str, code: str) -> str:
    return _token(secret, "booking", shop_id, code)


def feed_token(secret: bytes, shop_id: str, staff_id: str, generation: int) -> str:
    return _token(secret, "feed", shop_id, staff_id, str(generation))


def token_ok(given: str, expected: str) -> bool:
    """Constant-time check; anything that is not 32 hex digits is refused before comparing."""
    return bool(_TOKEN.match(given)) and hmac.compare_digest(given, expected)


def booking_calendar_path(secret: bytes, shop_id: str, code: str) -> str:
    """The path of a booking's .ics (prefix ``server.public_url`` for a link customers can open)."""
    return f"/cal/{shop_id}/booking/{code}/{booking_token(secret, shop_id, code)}.ics"


def feed_path(secret: bytes, shop_id: str, staff_id: str, generation: int) -> str:
    token = feed_token(secret, shop_id, staff_id, generation)
    if staff_id == SHOP_FEED:
        return f"/cal/{shop_id}/feed/{token}.ics"
    return f"/cal/{shop_id}/staff/{staff_id}/{token}.ics"


def absolute(config: AppConfig, path: str) -> str:
    """``server.public_url`` + path (the path alone when no public URL is configured)."""
    base = (config.server.public_url or "").rstrip("/")
    return base + path


async def server_secret(db: Database, clock: Clock, environ: Mapping[str, str] | None = None) -> bytes:
    """CHATBOOK_SECRET, or the secret this database's servers generated for themselves."""
    env = os.environ if environ is None else environ
    value = env.get(SECRET_ENV, "")
    if value:
        if len(value) < MIN_SECRET_CHARS:
            raise ValueError(f"{SECRET_ENV} must be at least {MIN_SECRET_CHARS} characters")
        return value.encode("utf-8")
    async with db.reading() as s:
        stored = await s.get(ServerSecret, "calendar")
    if stored is None:
        async with db.transaction() as s:
            stored = await s.get(ServerSecret, "calendar")
            if stored is None:
                stored = ServerSecret(name="calendar", value=secrets.token_hex(32), created_at=clock.now())
                s.add(stored)
    return stored.value.encode("utf-8")


# ---------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class CalendarEntry:
    """What one VEVENT shows, read from the database."""

    shop_id: str
    code: str
    service_id: str
    staff_id: str | None
    start: datetime
    end: datetime
    status: BookingStatus
    sequence: int
    updated_at: datetime
    language: str
    pet_name: str = ""
    customer_name: str = ""


def uid(shop_id: str, code: str) -> str:
    return f"booking-{code}.{shop_id}@chatbook"


def _event(shop: ShopConfig, entry: CalendarEntry, now: datetime, *, for_staff: bool) -> Event:
    lang = entry.language if entry.language in ("zh", "en") else shop.default_language
    tz = shop.tz
    service = shop.services.get(entry.service_id)
    service_name = service.name.get(lang) if service else entry.service_id
    staff = shop.staff.get(entry.staff_id or "")
    staff_name = staff.name.get(lang) if staff else ""
    event = Event()
    event.add("uid", uid(entry.shop_id, entry.code))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("last-modified", entry.updated_at.astimezone(UTC))
    event.add("dtstart", entry.start.astimezone(tz))
    event.add("dtend", entry.end.astimezone(tz))
    event.add("sequence", entry.sequence)
    event.add("status", _STATUS.get(entry.status, "CONFIRMED"))
    if for_staff:
        who = " · ".join(p for p in (entry.pet_name, entry.customer_name) if p)
        summary = f"{service_name} · {who}" if who else service_name
    else:
        summary = f"{service_name} · {shop.name.get(lang)}"
    event.add("summary", summary)
    event.add("location", shop.address.get(lang))
    details = [service_name, staff_name, f"#{entry.code}", shop.phone or ""]
    event.add("description", "\n".join(d for d in details if d))
    if entry.status not in (BookingStatus.CANCELLED, BookingStatus.EXPIRED) and not for_staff:
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("trigger", -ALARM_BEFORE)
        alarm.add("description", summary)
        event.add_component(alarm)
    return event


def render(shop: ShopConfig, entries: Iterable[CalendarEntry], now: datetime, *, name: str, for_staff: bool) -> bytes:
    """A VCALENDAR with the shop's VTIMEZONE (covering the events) and one VEVENT per entry."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", shop.timezone)
    listed = list(entries)
    for entry in listed:
        cal.add_component(_event(shop, entry, now, for_staff=for_staff))
    local_days = [e.start.astimezone(shop.tz).date() for e in listed] or [now.astimezone(shop.tz).date()]
    cal.add_missing_timezones(
        first_date=min(local_days) - timedelta(days=1), last_date=max(local_days) + timedelta(days=FEED_DAYS + 1)
    )
    if not cal.walk("VTIMEZONE"):  # no event: still say which zone the calendar is in
        cal.add_component(Timezone.from_tzid(shop.timezone, first_date=min(local_days), last_date=max(local_days)))
    return bytes(cal.to_ical())


# ---------------------------------------------------------------------------------------------- use cases


async def _sequences(s: AsyncSession, booking_ids: list[int]) -> dict[int, int]:
    if not booking_ids:
        return {}
    rows = await s.execute(
        select(BookingEvent.booking_id, func.count())
        .where(BookingEvent.booking_id.in_(booking_ids), BookingEvent.action.in_(VERSION_ACTIONS))
        .group_by(BookingEvent.booking_id)
    )
    return {int(bid): int(n) for bid, n in rows.all()}


async def _entries(s: AsyncSession, bookings: list[Booking], default_language: str) -> list[CalendarEntry]:
    sequences = await _sequences(s, [b.id for b in bookings])
    customer_ids = {b.customer_id for b in bookings if b.customer_id is not None}
    pet_ids = {b.pet_id for b in bookings if b.pet_id is not None}
    customers: dict[int, tuple[str, str]] = {}
    if customer_ids:
        people = await s.execute(
            select(Customer.id, Customer.language, Customer.display_name).where(Customer.id.in_(customer_ids))
        )
        customers = {int(cid): (lang, name) for cid, lang, name in people.all()}
    pets: dict[int, str] = {}
    if pet_ids:
        animals = await s.execute(select(Pet.id, Pet.name).where(Pet.id.in_(pet_ids)))
        pets = {int(pid): name for pid, name in animals.all()}
    entries = []
    for b in bookings:
        lang, customer_name = customers.get(b.customer_id or -1, (default_language, ""))
        entries.append(
            CalendarEntry(
                shop_id=b.shop_id,
                code=b.code,
                service_id=b.service_id,
                staff_id=b.staff_id,
                start=b.start_at,
                end=b.end_at,
                status=b.status,
                sequence=sequences.get(b.id, 0),
                updated_at=b.updated_at,
                language=lang,
                pet_name=pets.get(b.pet_id or -1, ""),
                customer_name=customer_name,
            )
        )
    return entries


@dataclass(frozen=True)
class FeedLink:
    shop_id: str
    staff_id: str  # "" for the shop's feed
    generation: int
    path: str


class CalendarService:
    """Links, feeds and rotation for every configured shop (the console, the CLI and the routes use it)."""

    def __init__(
        self, db: Database, config: AppConfig, clock: Clock, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.environ = environ
        self._secret: bytes | None = None

    async def secret(self) -> bytes:
        if self._secret is None:
            self._secret = await server_secret(self.db, self.clock, self.environ)
        return self._secret

    async def booking_path(self, shop_id: str, code: str) -> str:
        """The path of a booking's .ics: what the engine links from confirmations and reschedules."""
        return booking_calendar_path(await self.secret(), shop_id, code)

    async def booking_url(self, shop_id: str, code: str) -> str:
        """``server.public_url`` + the booking's path (a relative path when no public URL is set)."""
        return absolute(self.config, await self.booking_path(shop_id, code))

    async def booking_link(self, shop_id: str, code: str) -> str | None:
        """The URL to put behind an "add to calendar" button, or None without ``server.public_url``
        (a chat app cannot open a relative path)."""
        if not self.config.server.public_url:
            return None
        return await self.booking_url(shop_id, code)

    def _feed_ids(self, shop_id: str, staff_id: str | None) -> str:
        shop = self.config.shop(shop_id)
        if shop is None:
            raise LookupError(f"unknown shop '{shop_id}'")
        if staff_id and staff_id not in shop.staff:
            raise LookupError(f"shop '{shop_id}' has no staff member '{staff_id}'")
        return staff_id or SHOP_FEED

    async def _generations(self, s: AsyncSession, shop_id: str) -> dict[str, int]:
        query = select(CalendarFeed.staff_id, CalendarFeed.generation).where(CalendarFeed.shop_id == shop_id)
        rows = await s.execute(query)
        return {staff: int(gen) for staff, gen in rows.all()}

    async def feeds(self, shop_id: str) -> list[FeedLink]:
        """The shop's feed, then one per staff member, with their current paths."""
        self._feed_ids(shop_id, None)
        secret = await self.secret()
        async with self.db.reading() as s:
            generations = await self._generations(s, shop_id)
        shop = self.config.shops[shop_id]
        links = []
        for staff_id in [SHOP_FEED, *shop.staff]:
            generation = generations.get(staff_id, 0)
            links.append(FeedLink(shop_id, staff_id, generation, feed_path(secret, shop_id, staff_id, generation)))
        return links

    async def rotate(self, shop_id: str, staff_id: str | None = None) -> FeedLink:
        """A new URL for the feed; the old one answers 404 from now on."""
        key = self._feed_ids(shop_id, staff_id)
        secret = await self.secret()
        now = self.clock.now()
        async with self.db.transaction() as s:
            row = await s.get(CalendarFeed, (shop_id, key))
            if row is None:
                row = CalendarFeed(shop_id=shop_id, staff_id=key, generation=1, rotated_at=now)
                s.add(row)
            else:
                row.generation += 1
                row.rotated_at = now
            generation = row.generation
        return FeedLink(shop_id, key, generation, feed_path(secret, shop_id, key, generation))

    async def booking_ics(self, shop_id: str, code: str, token: str) -> bytes | None:
        """The booking's .ics, or None (unknown shop/booking, wrong token, a hold not yet booked)."""
        shop = self.config.shop(shop_id)
        if shop is None or len(code) > 12:
            return None
        if not token_ok(token, booking_token(await self.secret(), shop_id, code)):
            return None
        async with self.db.reading() as s:
            booking = await s.scalar(select(Booking).where(Booking.shop_id == shop_id, Booking.code == code))
            if booking is None or booking.status == BookingStatus.HELD:
                return None
            entries = await _entries(s, [booking], shop.default_language)
        lang = entries[0].language if entries[0].language in ("zh", "en") else shop.default_language
        return render(shop, entries, self.clock.now(), name=shop.name.get(lang), for_staff=False)

    async def feed_ics(self, shop_id: str, staff_id: str, token: str) -> bytes | None:
        """A feed (``staff_id`` "" for the shop) for its current token, or None."""
        shop = self.config.shop(shop_id)
        if shop is None or (staff_id and staff_id not in shop.staff) or not _TOKEN.match(token):
            return None
        secret = await self.secret()
        now = self.clock.now()
        async with self.db.reading() as s:
            row = await s.get(CalendarFeed, (shop_id, staff_id))
            generation = row.generation if row is not None else 0
            if not token_ok(token, feed_token(secret, shop_id, staff_id, generation)):
                return None
            local_today = now.astimezone(shop.tz).date()
            start = datetime.combine(local_today, time(0), shop.tz).astimezone(UTC)
            end = now + timedelta(days=FEED_DAYS)
            query = select(Booking).where(
                Booking.shop_id == shop_id,
                Booking.status.in_(FEED_STATUSES),
                Booking.end_at > start,
                Booking.start_at < end,
            )
            if staff_id:
                query = query.where(Booking.staff_id == staff_id)
            bookings = list((await s.scalars(query.order_by(Booking.start_at, Booking.id))).all())
            entries = await _entries(s, bookings, shop.default_language)
        lang = shop.default_language
        name = shop.name.get(lang)
        if staff_id:
            name = f"{name} · {shop.staff[staff_id].name.get(lang)}"
        return render(shop, entries, now, name=name, for_staff=True)
