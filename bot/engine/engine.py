"""The conversation engine's entry point: every channel's messages in, replies out.

One message is handled as: claim its id (a redelivery gets the stored reply), identify the
customer, take the conversation's lock, THEN load its state, let the dialog policy
(bot/engine/policy.py) build the replies, save, record the transcript. While staff have the
chat, the engine records and stays silent. ``handle`` returns the replies (channels that answer
inline: the terminal, CollectingChannel); ``process`` is the durable inbox's entry (bot/inbox.py):
the message is already stored and claimed, and the replies go to the outbox in the turn's own
transaction.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from bot.engine import policy
from bot.engine.intents import (
    language_of,
    normalise,
)
from bot.engine.store import ConversationStore
from bot.engine.turn import Turn
from bot.events import EventBus
from core.bookings import BookingService
from core.clock import Clock
from core.config import AppConfig
from core.customers import CustomerDirectory
from core.db import Database
from core.messages import IncomingMessage, OutgoingMessage
from core.models import ConversationMode, UnansweredQuestion
from core.waitlist import Waitlist
from faq import FaqMatcher, FaqRegistry

if TYPE_CHECKING:
    from core.calendar import CalendarService

log = logging.getLogger(__name__)
MAX_TEXT = 2000  # longer messages are cut before parsing (nothing we parse needs more)
# Messages handled at once per process. More would only queue on the database (SQLite has one
# writer) while each holds memory; a webhook burst of thousands then stalls instead of flowing.
CONCURRENCY = 16
FAQ_RELOAD_EVERY = timedelta(seconds=2)


class UnknownShop(LookupError):
    pass


class Engine:
    calendar: CalendarService | None = None  # built on first use (bot/engine/flows.py calendar_link)

    def __init__(
        self,
        config: AppConfig,
        db: Database,
        clock: Clock,
        bookings: BookingService,
        customers: CustomerDirectory,
        store: ConversationStore,
        faq: FaqRegistry | None,
        waitlist: Waitlist,
        events: EventBus | None = None,
    ) -> None:
        self.config = config
        self.db = db
        self.clock = clock
        self.bookings = bookings
        self.customers = customers
        self.store = store
        self.faq = faq
        self.waitlist = waitlist
        self.events = events
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._faq_checked = clock.now()

    # ------------------------------------------------------------------ entry point

    async def handle(self, msg: IncomingMessage, *, replay: bool = True) -> list[OutgoingMessage]:
        """Handle one inbound message and return the replies (channels that answer inline: the
        terminal, CollectingChannel); a redelivered one gets its stored reply again, or nothing
        with ``replay=False`` (for channels that would otherwise show the customer a repeat)."""
        async with self._slots:
            replies, _ = await self._handle(msg, replay=replay)
            return replies

    async def process(
        self, msg: IncomingMessage, *, hold: timedelta | None = None
    ) -> tuple[list[OutgoingMessage], list[int]]:
        """Handle a message the durable inbox already stored and gave to this worker: the replies
        go to the outbox in the turn's transaction (not due before ``hold``: the channel may
        answer inline meanwhile). Returns the replies and their outbox ids."""
        async with self._slots:
            return await self._handle(msg, replay=False, claimed=True, hold=hold or timedelta(0))

    async def _handle(
        self, msg: IncomingMessage, *, replay: bool, claimed: bool = False, hold: timedelta | None = None
    ) -> tuple[list[OutgoingMessage], list[int]]:
        shop = self.config.shop(msg.shop_id)
        if shop is None:
            raise UnknownShop(msg.shop_id)
        if not claimed:
            claim = await self.store.claim_inbound(msg.shop_id, msg.channel, msg.message_id)
            if not claim.fresh:
                return (claim.reply if replay else []), []
        hint = _language_hint(msg.language_hint) or language_of(msg.text) or shop.default_language
        customer = await self.customers.identify(
            msg.shop_id, msg.channel, msg.user_id, display_name=_clean(msg.display_name)[:100], language=hint
        )
        replies: list[OutgoingMessage] = []
        text = _clean(msg.text)[:MAX_TEXT]
        inbound = (text, {"payload": msg.payload} if msg.payload else {})
        async with self.store.opened(
            msg.shop_id, msg.channel, msg.user_id, customer_id=customer.id, language=customer.language
        ) as conv:  # created on first contact; held (lease) and loaded in one statement
            was_with_staff = conv.mode != ConversationMode.BOT
            if conv.mode == ConversationMode.BOT:
                turn = Turn(self, msg.shop_id, shop, conv, customer, msg, self.clock.now())
                snapshot = _copy(conv.data), conv.state, conv.language
                try:
                    await policy.respond(turn, text)
                except Exception:
                    log.exception("engine failed on a message for %s/%s", msg.shop_id, msg.channel)
                    conv.data, conv.state, conv.language = snapshot
                    turn.out = [OutgoingMessage(turn.t("misc.error"))]
                replies = turn.out
                conv.data["greeted"] = True
                _remember_buttons(conv.data, replies)
            outbox_ids = await self.store.finish_turn(
                conv,
                (msg.shop_id, msg.channel, msg.message_id),
                inbound,
                replies,
                deliver_at=None if hold is None else self.clock.now() + hold,
            )
        if self.events is not None:
            if was_with_staff:
                kind = "message"  # a customer wrote into a chat staff have
            elif conv.mode != ConversationMode.BOT:
                kind = "escalation"
            else:
                kind = "activity"  # the bot handled it: consoles refresh their "recent" list
            await self.events.publish({"type": kind, "shop": msg.shop_id, "conversation": conv.id})
        return replies, outbox_ids

    # ------------------------------------------------------------------ FAQ

    def faq_matcher(self, shop_id: str) -> FaqMatcher | None:
        if self.faq is None:
            return None
        now = self.clock.now()
        if now - self._faq_checked >= FAQ_RELOAD_EVERY or now < self._faq_checked:
            self._faq_checked = now
            self.faq.reload_if_changed()
        return self.faq.get(shop_id)

    async def record_unanswered(self, shop_id: str, text: str, best: str | None, score: int) -> None:
        async with self.db.transaction() as s:
            s.add(
                UnansweredQuestion(
                    shop_id=shop_id,
                    text=text[:500],
                    normalized=normalise(text)[:500],
                    best_entry=best,
                    score=score,
                    at=self.clock.now(),
                )
            )

    async def unanswered(self, shop_id: str, limit: int = 50) -> list[tuple[str, int]]:
        """What customers asked that the FAQ could not answer, most frequent first."""
        async with self.db.reading() as s:
            rows = await s.execute(
                select(UnansweredQuestion.normalized, func.count(), func.max(UnansweredQuestion.text))
                .where(UnansweredQuestion.shop_id == shop_id)
                .group_by(UnansweredQuestion.normalized)
                .order_by(func.count().desc(), UnansweredQuestion.normalized)
                .limit(limit)
            )
            return [(text, int(count)) for _, count, text in rows]


_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")


def _clean(text: str) -> str:
    """Text as stored and parsed: control characters (NUL breaks PostgreSQL) dropped."""
    return text.translate(_CONTROL)


def _language_hint(hint: str | None) -> str | None:
    if not hint:
        return None
    hint = hint.lower()
    if hint.startswith("zh"):
        return "zh"
    if hint.startswith("en"):
        return "en"
    return None


def _remember_buttons(data: dict[str, Any], replies: list[OutgoingMessage]) -> None:
    """Numbers typed later press the buttons of the last message that had any."""
    for reply in reversed(replies):
        if reply.buttons:
            data["buttons"] = [b.payload for b in reply.buttons]
            return


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    import copy

    return copy.deepcopy(data)
