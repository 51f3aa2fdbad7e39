"""The conversation engine: every channel's messages in, replies out.

One message is handled as: claim its id (a redelivery gets the stored reply), identify the
customer, take the conversation's lock, THEN load its state, dispatch, save, record the
transcript. Dispatch order: a pressed button (or its number typed) goes to the global buttons
and then to the current state; typed text goes to global commands (cancel, back, human, menu,
language, my bookings, reschedule, cancel booking), then to the current state, then to
booking intents ("周六上午10点给豆豆洗澡"), then to the FAQ. Not being understood twice in a
row hands the chat to staff. While staff have it, the engine records and stays silent.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.engine import flows
from bot.engine.intents import (
    Command,
    bath_for_species,
    command_in,
    language_of,
    looks_like_question,
    normalise,
    pet_in,
    service_in,
    wants_addon,
    when_in,
)
from bot.engine.states import STATES
from bot.engine.store import ConversationStore
from bot.engine.turn import Turn
from bot.events import EventBus
from bot.reminders import compose_shop_change
from core.bookings import BookingService
from core.clock import Clock
from core.config import AppConfig
from core.customers import CustomerDirectory
from core.db import Database
from core.messages import IncomingMessage, OutgoingMessage
from core.models import ConversationMode, UnansweredQuestion
from core.pets import breed_in, size_in, species_in
from core.results import Actor, Booked
from core.waitlist import Waitlist
from faq import FaqMatcher, FaqRegistry

log = logging.getLogger(__name__)
MAX_TEXT = 2000  # longer messages are cut before parsing (nothing we parse needs more)
MISUNDERSTOOD_LIMIT = 2
# Messages handled at once per process. More would only queue on the database (SQLite has one
# writer) while each holds memory; a webhook burst of thousands then stalls instead of flowing.
CONCURRENCY = 16
FAQ_RELOAD_EVERY = timedelta(seconds=2)


class UnknownShop(LookupError):
    pass


class Engine:
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
        """Handle one inbound message; a redelivered one gets its stored reply again, or nothing
        with ``replay=False`` (for channels that would otherwise show the customer a repeat)."""
        async with self._slots:
            return await self._handle(msg, replay=replay)

    async def _handle(self, msg: IncomingMessage, *, replay: bool) -> list[OutgoingMessage]:
        shop = self.config.shop(msg.shop_id)
        if shop is None:
            raise UnknownShop(msg.shop_id)
        claim = await self.store.claim_inbound(msg.shop_id, msg.channel, msg.message_id)
        if not claim.fresh:
            return claim.reply if replay else []
        hint = _language_hint(msg.language_hint) or language_of(msg.text) or shop.default_language
        customer = await self.customers.identify(
            msg.shop_id, msg.channel, msg.user_id, display_name=_clean(msg.display_name)[:100], language=hint
        )
        conv = await self.store.open(
            msg.shop_id, msg.channel, msg.user_id, customer_id=customer.id, language=customer.language
        )
        replies: list[OutgoingMessage] = []
        text = _clean(msg.text)[:MAX_TEXT]
        inbound = (text, {"payload": msg.payload} if msg.payload else {})
        created = conv.created
        async with self.store.locked(msg.shop_id, msg.channel, msg.user_id, conv.id) as conv:
            conv.created = created
            was_with_staff = conv.mode != ConversationMode.BOT
            if conv.mode == ConversationMode.BOT:
                turn = Turn(self, msg.shop_id, shop, conv, customer, msg, self.clock.now())
                snapshot = _copy(conv.data), conv.state, conv.language
                try:
                    await self._dispatch(turn, text)
                except Exception:
                    log.exception("engine failed on a message for %s/%s", msg.shop_id, msg.channel)
                    conv.data, conv.state, conv.language = snapshot
                    turn.out = [OutgoingMessage(turn.t("misc.error"))]
                replies = turn.out
                conv.data["greeted"] = True
                _remember_buttons(conv.data, replies)
            await self.store.finish_turn(conv, (msg.shop_id, msg.channel, msg.message_id), inbound, replies)
        if self.events is not None:
            if was_with_staff:
                kind = "message"  # a customer wrote into a chat staff have
            elif conv.mode != ConversationMode.BOT:
                kind = "escalation"
            else:
                kind = "activity"  # the bot handled it: consoles refresh their "recent" list
            await self.events.publish({"type": kind, "shop": msg.shop_id, "conversation": conv.id})
        return replies

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, t: Turn, text: str) -> None:
        payload = t.msg.payload
        stripped = text.strip()
        if payload is None and stripped.isascii() and stripped.isdigit():  # not "²" or "٣"
            buttons = t.data.get("buttons", [])
            number = int(stripped) if len(stripped) < 4 else 0
            if 1 <= number <= len(buttons):
                payload = buttons[number - 1]
        state = STATES.get(t.conv.state) or STATES["idle"]
        if payload is not None:
            if await self._global_button(t, payload) or await state.on_payload(t, payload):
                t.data["misses"] = 0
                return
            t.say(t.t("misc.stale_button"))
            await t.reprompt()
            return
        if not stripped:
            t.say(t.t("misc.no_text"))
            await t.reprompt()
            return
        command = command_in(stripped)
        if command is not None and await self._command(t, command, stripped):
            t.data["misses"] = 0
            return
        if await state.on_text(t, stripped):
            t.data["misses"] = 0
            return
        if await self._intent(t, stripped):
            t.data["misses"] = 0
            return
        if await flows.answer_from_faq(t, stripped):
            t.data["misses"] = 0
            return
        await self._not_understood(t, stripped)

    async def _global_button(self, t: Turn, payload: str) -> bool:
        if payload.startswith("faq:"):
            matcher = self.faq_matcher(t.shop_id)
            entry = matcher.faq.entry(payload[4:]) if matcher else None
            if entry is None:
                return False
            t.say(entry.answer.for_language(t.lang) + "".join(f"\n{link}" for link in entry.links))
            if entry.handoff:
                await flows.escalate(t, route=entry.route, reason=f"faq:{entry.id}")
            elif t.conv.state != "idle":
                t.say(t.t("faq.followup"))
                await t.reprompt()
            return True
        if payload[:3] in ("rc:", "rr:", "rx:"):
            return await self._reminder_button(t, payload)
        if payload.startswith("sc:"):
            return await self._shop_change_button(t, payload)
        if payload[:3] in ("wa:", "wn:", "wl:"):
            return await self._waitlist_button(t, payload)
        if payload == "m:book":
            await flows.start_booking(t, {})
            return True
        if payload == "m:my":
            await flows.start_manage(t, None)
            return True
        if payload == "m:human":
            await self._leave(t)
            await flows.escalate(t, route=None, reason="asked")
            return True
        if payload == "x":
            await self._cancel_flow(t)
            return True
        if payload in ("n:on", "n:off"):
            await self.customers.update(t.customer.id, notices=payload == "n:on")
            t.say(t.t("notices.subscribed" if payload == "n:on" else "notices.unsubscribed"))
            return True
        if payload in ("lang:en", "lang:zh"):
            await self._switch_language(t, payload[5:])
            return True
        return False

    async def _reminder_button(self, t: Turn, payload: str) -> bool:
        """Confirm / Reschedule / Cancel pressed on a reminder."""
        try:
            booking_id = int(payload[3:])
        except ValueError:
            return False
        booking = await self.bookings.get(t.shop_id, booking_id)
        if booking is None or booking.customer_id != t.customer.id:
            return False
        if payload.startswith("rc:"):
            result = await self.bookings.acknowledge(t.shop_id, booking_id, flows.actor(t))
            t.say(t.t("reminder.thanks") if result.ok else t.t("manage.not_active"))
            return True
        await flows.release_hold(t)
        t.clear_draft()
        t.draft.update(mode="manage", action="reschedule" if payload.startswith("rr:") else "cancel")
        await flows.run_action(t, booking)
        return True

    async def _waitlist_button(self, t: Turn, payload: str) -> bool:
        kind, _, value = payload.partition(":")
        if kind == "wl":  # join the waitlist for the day the draft is about
            day_text, _, period = value.partition(":")
            service = t.draft.get("service")
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                return False
            if not service:
                return False
            await self.waitlist.join(
                t.shop_id, t.customer.id, service, day, period=period or None, pet_id=t.draft.get("pet_id")
            )
            t.say(t.t("waitlist.joined", day=t.day_text(day)))
            t.settle()
            return True
        try:
            booking_id = int(value)
        except ValueError:
            return False
        if kind == "wn":
            await self.waitlist.decline(t.shop_id, booking_id, t.customer.id)
            t.say(t.t("waitlist.passed"))
            return True
        result = await self.waitlist.accept(t.shop_id, booking_id, t.customer.id)
        if isinstance(result, Booked):
            t.say(t.t("waitlist.taken", code=result.booking.code, when=t.when(result.booking.start)))
        else:
            t.say(t.t("waitlist.missed"), [t.button("btn.book", "m:book")])
        return True

    async def _shop_change_button(self, t: Turn, payload: str) -> bool:
        """The customer picked one of the alternatives the shop offered when it had to move them."""
        try:
            _, booking_part, minutes_part, staff_part = payload.split(":", 3)
            booking_id, minutes = int(booking_part), int(minutes_part)
        except ValueError:
            return False
        booking = await self.bookings.get(t.shop_id, booking_id)
        if booking is None or booking.customer_id != t.customer.id:
            return False
        start = datetime.fromtimestamp(minutes * 60, tz=UTC)
        result = await self.bookings.reschedule(
            t.shop_id,
            booking_id,
            start,
            Actor.system(f"customer:{t.customer.id} accepted the shop's offer"),
            staff_id=staff_part or None,
        )
        if isinstance(result, Booked):
            b = result.booking
            staff = t.shop.staff[b.staff_id].name.get(t.lang) if b.staff_id in t.shop.staff else ""
            t.say(t.t("reminder.rebooked", code=b.code, when=t.when(b.start), staff=staff))
            return True
        options = await self.bookings.change_options(t.shop_id, booking_id)
        pet = t.pet(booking.pet_id)
        offer = compose_shop_change(booking, t.shop, pet.name if pet else None, t.lang, options)
        t.say(t.t("booked.taken").rstrip("：:") + "\n" + offer.text, list(offer.buttons))
        return True

    async def _command(self, t: Turn, command: Command, text: str) -> bool:
        today = t.today
        match command:
            case Command.CANCEL_FLOW:
                if t.conv.state == "idle":
                    await flows.start_manage(t, "cancel")
                else:
                    await self._cancel_flow(t)
            case Command.BACK:
                stack: list[str] = t.data.get("stack", [])
                if not stack:
                    t.say(t.t("misc.at_start"))
                    await t.reprompt()
                    return True
                await STATES[t.conv.state].leave(t)
                previous = stack.pop()
                await t.go(previous, push=False)
            case Command.HUMAN:
                await self._leave(t)
                await flows.escalate(t, route=None, reason="asked")
            case Command.MENU:
                await self._leave(t)
                t.clear_draft()
                t.conv.state = "idle"
                await t.reprompt()
            case Command.GREET:
                await t.reprompt()
            case Command.MY_BOOKINGS:
                await flows.start_manage(t, None)
            case Command.RESCHEDULE:
                when = when_in(text, today)
                await flows.start_manage(
                    t,
                    "reschedule",
                    want_day=when.date.isoformat() if when.date else None,
                    want_time=when.time.strftime("%H:%M") if when.date and when.time else None,
                    want_period=when.period,
                )
            case Command.CANCEL_BOOKING:
                await flows.start_manage(t, "cancel")
            case Command.NOTICES_ON | Command.NOTICES_OFF:
                wanted = command == Command.NOTICES_ON
                await self.customers.update(t.customer.id, notices=wanted)
                t.say(t.t("notices.subscribed" if wanted else "notices.unsubscribed"))
            case Command.BOOK:
                await flows.start_booking(t, {})
            case Command.LEAVE_WAITLIST:
                left = await self.waitlist.leave(t.shop_id, t.customer.id)
                t.say(t.t("waitlist.left") if left else t.t("waitlist.nothing"))
            case Command.TO_ENGLISH | Command.TO_CHINESE:
                await self._switch_language(t, "en" if command == Command.TO_ENGLISH else "zh")
            case _:
                return False
        return True

    async def _intent(self, t: Turn, text: str) -> bool:
        """Booking and add-on requests in one sentence, whatever the state."""
        shop = t.shop
        addon = wants_addon(text, shop)
        if addon is not None:
            await flows.start_manage(t, "addon", addon=addon)
            return True
        pet = pet_in(text, t.customer.pets)
        species = species_in(text) or (pet.species if pet else None)
        mention = service_in(text, shop) or bath_for_species(text, shop, species)
        when = when_in(text, t.today)
        asks = looks_like_question(text) and not flows.wants_booking(text) and when.date is None
        if mention is None or asks:
            return False
        prefill: dict[str, Any] = {"service": mention.service_id, "category": mention.category}
        if pet is not None:
            prefill.update(pet_id=pet.id, pet_name=pet.name, species=pet.species, size=pet.size)
        elif species:
            prefill["species"] = species
            breed = breed_in(text)
            if breed:  # "给我家金毛洗澡": a golden retriever is a large dog, no need to ask
                prefill.update(breed=breed, size=size_in(text))
        if when.date is not None:
            prefill["want_day"] = when.date.isoformat()
            prefill["want_time"] = when.time.strftime("%H:%M") if when.time else None
        prefill["want_period"] = when.period
        await flows.start_booking(t, prefill)
        return True

    async def _not_understood(self, t: Turn, text: str) -> None:
        misses = int(t.data.get("misses", 0)) + 1
        t.data["misses"] = misses
        if misses >= MISUNDERSTOOD_LIMIT:
            t.data["misses"] = 0
            await self._leave(t)
            await flows.escalate(t, route=None, reason="not_understood")
            return
        if t.conv.state == "idle" and not t.data.get("greeted"):
            await t.reprompt()  # a first message we cannot place: introduce ourselves
            return
        t.say(t.t("faq.none") if looks_like_question(text) else t.t("misc.not_understood"))
        await t.reprompt()

    async def _cancel_flow(self, t: Turn) -> None:
        await self._leave(t)
        t.clear_draft()
        t.conv.state = "idle"
        t.say(t.t("misc.flow_cancelled"), [t.button("btn.book", "m:book"), t.button("btn.my_bookings", "m:my")])

    async def _leave(self, t: Turn) -> None:
        await STATES[t.conv.state].leave(t)

    async def _switch_language(self, t: Turn, lang: str) -> None:
        t.conv.language = lang
        await self.customers.update(t.customer.id, language=lang)
        t.say(t.t("misc.lang_switched"))
        await t.reprompt()

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
