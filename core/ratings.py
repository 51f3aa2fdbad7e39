"""Ratings after a visit: the ask (1-5 star buttons), the stars and comment, the low-rating alert.

- **Ask**: when a booking is marked completed, ``queue_rating_request`` (inside that transaction)
  or ``RatingService.request_rating`` (its own) writes one outbox message to the customer's most
  recent chat with five buttons whose payloads are ``rate:<booking_id>:<stars>``, plus the
  transcript line and a ``rating_requested`` audit row. It is sent ``ASK_AFTER`` the completion,
  moved out of the shop's quiet hours; a booking is asked at most once.
- **Answer**: ``record_rating(booking_id, customer_id, stars, comment)`` keeps one rating per
  booking (unique key; a second tap, a redelivered button or a concurrent one changes nothing),
  only for the booking's own customer and only once it is completed, stars 1-5. A comment sent
  after the stars is added with ``add_comment`` (once). Each is in the audit trail.
- **Alert**: a rating of ``LOW_STARS`` or fewer is published at once as a console event
  (``low_rating_alert``); the composition root passes the event bus's ``publish`` (core knows
  nothing of the bus) and, if the shop has one, a staff notification sender.

- **Chat side** (for the engine): ``answer_button(payload, customer, lang)`` for a ``rate:`` tap
  returns the messages to say and, after new stars, the booking whose comment the next free text
  is; the engine keeps that with ``remember_pending`` in the conversation's data and, on the next
  free text, ``take_pending`` + ``answer_comment``.

Customer texts come from core/locales (``rating.*``); ``RatingResult.reply`` is the key to answer with.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.config import AppConfig, ShopConfig
from core.db import Database
from core.i18n import texts
from core.messages import Button, OutgoingMessage
from core.models import (
    ActorKind,
    Booking,
    BookingEvent,
    BookingStatus,
    Conversation,
    OutboxMessage,
    Pet,
    Rating,
    TranscriptEntry,
)
from core.outbox import enqueue
from core.reminders import avoid_quiet, rules_for

PREFIX = "rate"
SKIP = "skip"  # rate:<booking_id>:skip -- "no comment"
ASK_AFTER = timedelta(minutes=30)  # after the visit is marked completed: they have left the shop
LOW_STARS = 2  # this many stars or fewer alerts staff at once
MAX_COMMENT = 1000
STARS = range(1, 6)
_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")

Publisher = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class RatePayload:
    """A parsed ``rate:`` button payload: stars 1-5, or None for "no comment"."""

    booking_id: int
    stars: int | None


def payload(booking_id: int, stars: int | str) -> str:
    return f"{PREFIX}:{booking_id}:{stars}"


def parse_payload(value: str) -> RatePayload | None:
    """``rate:<booking_id>:<1-5|skip>`` -> RatePayload; anything else (forged, out of range) -> None."""
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    booking_id = int(parts[1])
    if parts[2] == SKIP:
        return RatePayload(booking_id, None)
    if parts[2] not in {str(n) for n in STARS}:
        return None
    return RatePayload(booking_id, int(parts[2]))


def compose_ask(booking: Booking, shop: ShopConfig, pet_name: str | None, lang: str) -> OutgoingMessage:
    """The ask with five star buttons (1 ... 5), from the language catalogs."""
    t = texts(lang)
    service = shop.services[booking.service_id].name.get(t.lang) if booking.service_id in shop.services else ""
    text = t.t(
        "rating.ask",
        shop=shop.name.get(t.lang),
        service=service,
        pet=t.t("reminder.pet", pet=pet_name) if pet_name else "",
    )
    buttons = tuple(Button(t.t("rating.button", stars="★" * n, n=n), payload(booking.id, n)) for n in STARS)
    return OutgoingMessage(text, buttons)


def comment_prompt(booking_id: int, stars: int, lang: str) -> OutgoingMessage:
    """What to answer after the stars: ask for an optional comment, with a "no comment" button."""
    t = texts(lang)
    key = "rating.comment_ask_low" if stars <= LOW_STARS else "rating.comment_ask"
    return OutgoingMessage(t.t(key, n=stars), (Button(t.t("rating.skip"), payload(booking_id, SKIP)),))


def clean_comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    text = comment.translate(_CONTROL).strip()[:MAX_COMMENT]
    return text or None


async def latest_chat(s: AsyncSession, shop_id: str, customer_id: int) -> Conversation | None:
    """The customer's most recently active chat with this shop (where follow-ups are sent)."""
    found: Conversation | None = await s.scalar(
        select(Conversation)
        .where(Conversation.shop_id == shop_id, Conversation.customer_id == customer_id)
        .order_by(Conversation.last_inbound_at.desc().nulls_last(), Conversation.id.desc())
        .limit(1)
    )
    return found


def queue_in_chat(
    s: AsyncSession,
    conversation: Conversation,
    message: OutgoingMessage,
    now: datetime,
    *,
    author: str,
    extra: dict[str, Any],
    due: datetime | None = None,
) -> OutboxMessage:
    """A follow-up in the customer's chat outside a turn (the rating ask, a series notice): the
    outbox row (sent from ``due``, default now) and its transcript line, in the caller's transaction."""
    row = enqueue(
        s,
        shop_id=conversation.shop_id,
        channel=conversation.channel,
        external_id=conversation.external_id,
        conversation_id=conversation.id,
        message=message,
        now=now,
        kind="notice",
        extra=extra,
    )
    row.next_attempt_at = due or now
    s.add(
        TranscriptEntry(
            conversation_id=conversation.id,
            direction="out",
            author=author,
            text=message.text,
            payload=message.to_json(),
            at=due or now,
        )
    )
    return row


async def _chat(s: AsyncSession, booking: Booking) -> Conversation | None:
    if booking.customer_id is None:
        return None
    return await latest_chat(s, booking.shop_id, booking.customer_id)


async def queue_rating_request(
    s: AsyncSession, booking: Booking, shop: ShopConfig, now: datetime
) -> OutboxMessage | None:
    """Queue the ask for a completed booking inside the caller's transaction (at most once).

    None when there is nothing to do: not completed, already asked or rated, or no chat to ask in.
    """
    if booking.status != BookingStatus.COMPLETED or booking.customer_id is None:
        return None
    asked = await s.scalar(
        select(BookingEvent.id)
        .where(BookingEvent.booking_id == booking.id, BookingEvent.action == "rating_requested")
        .limit(1)
    )
    rated = await s.scalar(select(Rating.id).where(Rating.booking_id == booking.id))
    if asked is not None or rated is not None:
        return None
    conversation = await _chat(s, booking)
    if conversation is None:
        return None
    pet_name = await s.scalar(select(Pet.name).where(Pet.id == booking.pet_id)) if booking.pet_id else None
    message = compose_ask(booking, shop, pet_name, conversation.language)
    quiet = rules_for(shop, booking.service_id).quiet_hours
    due = avoid_quiet(now + ASK_AFTER, now + timedelta(days=2), shop.tz, quiet)
    extra = {"rating_for": booking.id}
    row = queue_in_chat(s, conversation, message, now, author="bot:rating", extra=extra, due=due)
    s.add(
        BookingEvent(
            booking_id=booking.id,
            at=now,
            actor_kind=ActorKind.SYSTEM,
            actor_id="ratings",
            action="rating_requested",
            details={"due": due.isoformat()},
        )
    )
    return row


class Outcome(enum.StrEnum):
    RECORDED = "recorded"  # new stars
    COMMENTED = "commented"  # a comment added to the stars
    ALREADY = "already"  # rated before: nothing changed
    INVALID = "invalid"  # stars not 1-5
    NOT_FOUND = "not_found"  # no such booking
    NOT_YOURS = "not_yours"  # another customer's booking
    NOT_COMPLETED = "not_completed"  # the visit has not been completed


_REPLY = {
    Outcome.RECORDED: "rating.thanks",
    Outcome.COMMENTED: "rating.thanks_comment",
    Outcome.ALREADY: "rating.already",
    Outcome.INVALID: "rating.unavailable",
    Outcome.NOT_FOUND: "rating.unavailable",
    Outcome.NOT_YOURS: "rating.unavailable",
    Outcome.NOT_COMPLETED: "rating.unavailable",
}


@dataclass(frozen=True)
class RatingView:
    id: int
    booking_id: int
    customer_id: int
    shop_id: str
    stars: int
    comment: str | None
    at: datetime

    @classmethod
    def of(cls, row: Rating) -> RatingView:
        return cls(row.id, row.booking_id, row.customer_id, row.shop_id, row.stars, row.comment, row.at)


@dataclass(frozen=True)
class RatingResult:
    outcome: Outcome
    rating: RatingView | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.RECORDED, Outcome.COMMENTED, Outcome.ALREADY)

    @property
    def reply(self) -> str:
        """The catalog key of the customer's answer."""
        return _REPLY[self.outcome]


@dataclass(frozen=True)
class ChatReply:
    """What the engine says, and the booking whose comment the next free text is (None: not waiting)."""

    messages: tuple[OutgoingMessage, ...]
    comment_for: int | None = None


COMMENT_WINDOW = timedelta(hours=2)  # the next free text within this long after the prompt is the comment
PENDING_KEY = "rating_comment"  # in the conversation's data: {"booking": id, "until": iso time}


def remember_pending(data: dict[str, Any], booking_id: int | None, now: datetime) -> None:
    """Keep (or, with None, forget) the booking whose comment the next free text is."""
    if booking_id is None:
        data.pop(PENDING_KEY, None)
    else:
        data[PENDING_KEY] = {"booking": booking_id, "until": (now + COMMENT_WINDOW).isoformat()}


def take_pending(data: dict[str, Any], now: datetime) -> int | None:
    """The booking awaiting a comment (and forget it): None when none, or the window has passed."""
    pending = data.pop(PENDING_KEY, None)
    if not isinstance(pending, dict) or not isinstance(pending.get("booking"), int):
        return None
    try:
        until = datetime.fromisoformat(str(pending.get("until")))
    except ValueError:
        return None
    return int(pending["booking"]) if now <= until else None


def low_rating_alert(rating: RatingView, *, comment_added: bool = False) -> dict[str, Any] | None:
    """The console event for a low rating (small: consoles fetch the details they may see), or None."""
    if rating.stars > LOW_STARS:
        return None
    return {
        "type": "low_rating",
        "shop": rating.shop_id,
        "booking": rating.booking_id,
        "stars": rating.stars,
        "comment": comment_added,
    }


def valid_stars(stars: object) -> bool:
    return isinstance(stars, int) and not isinstance(stars, bool) and stars in STARS


class RatingService:
    """Ask, record and alert. ``publish`` is the console event bus's; ``notify_staff`` (optional)
    sends an alert to the shop's staff notification channel when one is configured."""

    def __init__(
        self,
        db: Database,
        config: AppConfig,
        clock: Clock,
        *,
        publish: Publisher | None = None,
        notify_staff: Publisher | None = None,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.publish = publish
        self.notify_staff = notify_staff

    async def request_rating(self, booking_id: int) -> bool:
        """Queue the ask for a completed booking (its own transaction); False when nothing was queued."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            booking = await s.get(Booking, booking_id)
            shop = self.config.shop(booking.shop_id) if booking is not None else None
            if booking is None or shop is None:
                return False
            return await queue_rating_request(s, booking, shop, now) is not None

    async def record_rating(
        self, booking_id: int, customer_id: int, stars: int, comment: str | None = None
    ) -> RatingResult:
        """The customer's stars (and comment) for their completed visit: one rating per booking."""
        if not valid_stars(stars):
            return RatingResult(Outcome.INVALID)
        text = clean_comment(comment)
        now = self.clock.now()
        try:
            result = await self._record(booking_id, customer_id, stars, text, now)
        except IntegrityError:  # a concurrent tap on another process won the unique key
            result = RatingResult(Outcome.ALREADY, await self.get(booking_id))
        await self._alert(result)
        return result

    async def _record(
        self, booking_id: int, customer_id: int, stars: int, text: str | None, now: datetime
    ) -> RatingResult:
        async with self.db.transaction() as s:
            booking = await s.scalar(select(Booking).where(Booking.id == booking_id).with_for_update())
            refused = _refusal(booking, customer_id)
            if refused is not None or booking is None:
                return RatingResult(refused or Outcome.NOT_FOUND)
            existing = await s.scalar(select(Rating).where(Rating.booking_id == booking_id))
            if existing is not None:
                if text is not None and existing.comment is None:
                    return self._comment(s, existing, text, now)
                return RatingResult(Outcome.ALREADY, RatingView.of(existing))
            row = Rating(
                booking_id=booking_id,
                customer_id=customer_id,
                shop_id=booking.shop_id,
                stars=stars,
                comment=text,
                at=now,
            )
            s.add(row)
            _audit(s, booking_id, customer_id, now, "rated", stars=stars, comment=text is not None)
            await s.flush()
            return RatingResult(Outcome.RECORDED, RatingView.of(row))

    async def add_comment(self, booking_id: int, customer_id: int, comment: str) -> RatingResult:
        """The optional words after the stars (once; an empty comment changes nothing)."""
        text = clean_comment(comment)
        now = self.clock.now()
        async with self.db.transaction() as s:
            booking = await s.scalar(select(Booking).where(Booking.id == booking_id).with_for_update())
            refused = _refusal(booking, customer_id)
            if refused is not None:
                return RatingResult(refused)
            existing = await s.scalar(select(Rating).where(Rating.booking_id == booking_id))
            if existing is None:
                return RatingResult(Outcome.NOT_FOUND)
            if text is None or existing.comment is not None:
                return RatingResult(Outcome.ALREADY, RatingView.of(existing))
            result = self._comment(s, existing, text, now)
        await self._alert(result)
        return result

    @staticmethod
    def _comment(s: AsyncSession, existing: Rating, text: str, now: datetime) -> RatingResult:
        existing.comment = text
        _audit(s, existing.booking_id, existing.customer_id, now, "rating_comment")
        return RatingResult(Outcome.COMMENTED, RatingView.of(existing))

    async def _alert(self, result: RatingResult) -> None:
        if result.rating is None or result.outcome not in (Outcome.RECORDED, Outcome.COMMENTED):
            return
        event = low_rating_alert(result.rating, comment_added=result.rating.comment is not None)
        if event is None:
            return
        if self.publish is not None:
            await self.publish(event)
        if self.notify_staff is not None:
            await self.notify_staff(event)

    # ------------------------------------------------------------------ the chat side (engine hook)

    async def answer_button(self, value: str, customer_id: int, lang: str) -> ChatReply:
        """A ``rate:`` button tap: record the stars (or "no comment") and say what comes next."""
        t = texts(lang)
        parsed = parse_payload(value)
        if parsed is None:
            return ChatReply((OutgoingMessage(t.t("rating.unavailable")),))
        if parsed.stars is None:  # "no comment"
            return ChatReply((OutgoingMessage(t.t("rating.thanks")),))
        result = await self.record_rating(parsed.booking_id, customer_id, parsed.stars)
        if result.outcome != Outcome.RECORDED or result.rating is None:
            return ChatReply((OutgoingMessage(t.t(result.reply)),))
        prompt = comment_prompt(parsed.booking_id, result.rating.stars, lang)
        return ChatReply((prompt,), comment_for=parsed.booking_id)

    async def answer_comment(self, booking_id: int, customer_id: int, text: str, lang: str) -> ChatReply:
        """The customer's words after the comment prompt."""
        result = await self.add_comment(booking_id, customer_id, text)
        key = result.reply if result.outcome != Outcome.ALREADY else "rating.thanks"
        return ChatReply((OutgoingMessage(texts(lang).t(key)),))

    async def get(self, booking_id: int) -> RatingView | None:
        async with self.db.reading() as s:
            row = await s.scalar(select(Rating).where(Rating.booking_id == booking_id))
            return RatingView.of(row) if row is not None else None

    async def recent(self, shop_id: str, limit: int = 20, *, low_only: bool = False) -> list[RatingView]:
        """The shop's latest ratings, newest first (the console's list)."""
        async with self.db.reading() as s:
            query = select(Rating).where(Rating.shop_id == shop_id)
            if low_only:
                query = query.where(Rating.stars <= LOW_STARS)
            rows = await s.scalars(query.order_by(Rating.at.desc(), Rating.id.desc()).limit(limit))
            return [RatingView.of(r) for r in rows]


def _refusal(booking: Booking | None, customer_id: int) -> Outcome | None:
    if booking is None:
        return Outcome.NOT_FOUND
    if booking.customer_id != customer_id:
        return Outcome.NOT_YOURS
    if booking.status != BookingStatus.COMPLETED:
        return Outcome.NOT_COMPLETED
    return None


def _audit(s: AsyncSession, booking_id: int, customer_id: int, now: datetime, action: str, **details: Any) -> None:
    s.add(
        BookingEvent(
            booking_id=booking_id,
            at=now,
            actor_kind=ActorKind.CUSTOMER,
            actor_id=str(customer_id),
            action=action,
            details=details,
        )
    )
