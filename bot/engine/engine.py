"""The conversation engine's entry point: every channel's messages in, replies out.

One message is ONE unit of work (core/db.py), one commit: claim its id (a redelivery gets the
stored reply), identify the customer, hold the conversation (bot/engine/store.py) THEN load its
state, let the dialog policy (bot/engine/policy.py) build the replies and do any booking
operation (a policy that fails leaves nothing half-written: the unit of work is rolled back and
the customer is told something went wrong), save the state, transcript, outbox rows and the
inbox row done. Wake-ups and console events go out only after the commit. While staff have the
chat, the engine records and stays silent. ``handle`` returns the replies (channels that answer
inline: the terminal, CollectingChannel); ``process`` is the durable inbox's entry
(bot/inbox.py): the message is already stored and claimed, and the replies go to the outbox in
the turn's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from bot.engine import policy
from bot.engine.intents import (
    language_of,
    normalise,
)
from bot.engine.store import ConversationStore
from bot.engine.turn import Turn
from bot.events import EventBus
from core import faq_log
from core.bookings import BookingService
from core.clock import Clock
from core.config import AppConfig, ShopConfig
from core.customers import CustomerDirectory
from core.db import Database
from core.i18n import language_tag
from core.messages import IncomingMessage, OutgoingMessage
from core.models import ConversationMode
from core.waitlist import Waitlist
from faq import FaqMatcher, FaqRegistry

if TYPE_CHECKING:
    from core.calendar import CalendarService
    from core.ratings import RatingService

log = logging.getLogger(__name__)
MAX_TEXT = 2000  # longer messages are cut before parsing (nothing we parse needs more)
# Messages handled at once per process. More would only queue on the database (SQLite has one
# writer) while each holds memory; a webhook burst of thousands then stalls instead of flowing.
# On SQLite a turn holds the write lock for its whole unit of work (a few ms of CPU, no waiting),
# so turns queued beyond a few only make the inbox's accept commits (a channel's ack) wait longer.
CONCURRENCY = 16
SQLITE_CONCURRENCY = 4
FAQ_RELOAD_EVERY = timedelta(seconds=2)
HELD_POLL_SECONDS = 0.02  # how often a turn retries a conversation another process holds
TRANSIENT_TRIES = 5  # a turn the database refused this often (deadlocks) fails (the inbox retries it later)


class UnknownShop(LookupError):
    pass


class _HeldElsewhere(Exception):
    """Another process holds the conversation's lease: leave the unit of work and wait."""


class _InFlight(Exception):
    """Another attempt at the same message is still running: leave the unit of work and wait."""


class _PolicyFailed(Exception):
    """The dialog policy raised: the turn is rolled back and answered with an apology."""


class _Transient(Exception):
    """The database refused the turn's transaction for now (deadlock, serialization): again."""


@dataclass(frozen=True)
class _Done:
    replies: list[OutgoingMessage]
    outbox_ids: list[int]
    event: dict[str, Any] | None  # for consoles, published once the turn committed


class Engine:
    calendar: CalendarService | None = None  # built on first use (bot/engine/flows.py calendar_link)
    ratings: RatingService | None = None  # set by bootstrap (core/ratings.py)

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
        self._slots = asyncio.Semaphore(SQLITE_CONCURRENCY if db.dialect == "sqlite" else CONCURRENCY)
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
        failed, transient = False, 0
        async with self.store.ordered(msg.shop_id, msg.channel, msg.user_id):
            while True:
                try:
                    async with self.db.unit_of_work():
                        done = await self._turn(msg, shop, replay=replay, claimed=claimed, hold=hold, failed=failed)
                except _PolicyFailed:  # all it wrote rolled back: the turn again, answering with the error
                    failed = True
                    continue
                except _HeldElsewhere:  # another process's lease: wait outside the transaction
                    await asyncio.sleep(HELD_POLL_SECONDS)
                    continue
                except _InFlight:  # another attempt is on this message: wait for its reply
                    claim = await self.store.claim_inbound(msg.shop_id, msg.channel, msg.message_id)
                    if not claim.fresh:
                        return (claim.reply if replay else []), []
                    claimed = True  # that attempt died: ours now
                    continue
                except _Transient as exc:  # a deadlock or serialization failure (PostgreSQL): again
                    transient += 1
                    if transient >= TRANSIENT_TRIES:
                        raise exc.__cause__ or exc from None
                    await asyncio.sleep(HELD_POLL_SECONDS * transient)
                    continue
                break
        if done.event is not None and self.events is not None:
            await self.events.publish(done.event)  # after the commit: consoles read what it wrote
        return done.replies, done.outbox_ids

    async def _turn(
        self,
        msg: IncomingMessage,
        shop: ShopConfig,
        *,
        replay: bool,
        claimed: bool,
        hold: timedelta | None,
        failed: bool = False,
    ) -> _Done:
        """One message, inside the turn's unit of work: claim, customer, conversation held and
        loaded, the policy, then everything the turn wrote, saved together. ``failed``: the
        policy failed on this message before; the turn records the apology instead."""
        if not claimed:
            claim = await self.store.claim_here(msg.shop_id, msg.channel, msg.message_id)
            if claim is None:
                raise _InFlight
            if not claim.fresh:
                return _Done(claim.reply if replay else [], [], None)
        hint = language_tag(msg.language_hint) or language_of(msg.text) or shop.default_language
        customer = await self.customers.identify(
            msg.shop_id, msg.channel, msg.user_id, display_name=_clean(msg.display_name)[:100], language=hint
        )
        conv = await self.store.hold(
            msg.shop_id, msg.channel, msg.user_id, customer_id=customer.id, language=customer.language
        )
        if conv is None:
            raise _HeldElsewhere
        replies: list[OutgoingMessage] = []
        text = _clean(msg.text)[:MAX_TEXT]
        was_with_staff = conv.mode != ConversationMode.BOT
        if not was_with_staff:
            turn = Turn(self, msg.shop_id, shop, conv, customer, msg, self.clock.now())
            if failed:
                turn.out = [OutgoingMessage(turn.t("misc.error"))]
            else:
                await self._respond(turn, text)
            replies = turn.out
            conv.data["greeted"] = True
            _remember_buttons(conv.data, replies)
        outbox_ids = await self.store.finish_turn(
            conv,
            (msg.shop_id, msg.channel, msg.message_id),
            (text, {"payload": msg.payload} if msg.payload else {}),
            replies,
            deliver_at=None if hold is None else self.clock.now() + hold,
        )
        if was_with_staff:
            kind = "message"  # a customer wrote into a chat staff have
        elif conv.mode != ConversationMode.BOT:
            kind = "escalation"
        else:
            kind = "activity"  # the bot handled it: consoles refresh their "recent" list
        event = {"type": kind, "shop": msg.shop_id, "conversation": conv.id}
        uow = self.db.current()
        # PostgreSQL: the consoles' NOTIFY rides in the turn's own transaction (delivered at its
        # commit), not a transaction of its own per message. Escalations still go through
        # ``publish`` after the commit: the event bus may alert the staff channel for them.
        shared = kind != "escalation" and self.events is not None and uow is not None
        if shared and await self.events.publish_in(uow.conn, event):  # type: ignore[union-attr]  # both checked just above
            return _Done(replies, outbox_ids, None)
        return _Done(replies, outbox_ids, event)

    async def _respond(self, turn: Turn, text: str) -> None:
        """The dialog policy's replies. When the policy fails, the turn's unit of work is rolled
        back (nothing it changed is kept: no half-made booking change) and run again to tell the
        customer something went wrong; the message still counts as answered."""
        try:
            await policy.respond(turn, text)
        except Exception as exc:
            if _transient(exc):
                raise _Transient from exc
            log.exception("engine failed on a message for %s/%s", turn.shop_id, turn.msg.channel)
            raise _PolicyFailed from exc

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
        """Kept for the shop's FAQ review, in the turn's unit of work (one statement)."""
        await faq_log.record_unanswered(self.db, shop_id, text, normalise(text), best, score, self.clock.now())


_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\t")


def _clean(text: str) -> str:
    """Text as stored and parsed: control characters (NUL breaks PostgreSQL) dropped."""
    return text.translate(_CONTROL)


def _remember_buttons(data: dict[str, Any], replies: list[OutgoingMessage]) -> None:
    """Numbers typed later press the buttons of the last message that had any."""
    for reply in reversed(replies):
        if reply.buttons:
            data["buttons"] = [b.payload for b in reply.buttons]
            return


def _transient(exc: BaseException) -> bool:
    """A PostgreSQL deadlock or serialization failure: the whole turn may simply run again."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(getattr(exc, "orig", None), "pgcode", None)
    return isinstance(exc, DBAPIError) and code in ("40001", "40P01")
