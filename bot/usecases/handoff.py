"""Handing a chat to staff and back: take, reply, note, release; the inbox lists and the
conversation's detail (transcript, customer, bookings).

The console and ``chatbook handoff`` call the same functions, so a reply behaves the same from
both: replying takes the chat, and a chat another staff member holds is refused (``Taken``).
The engine hands a chat to staff with ``hand_to_staff``. Every change publishes a console
event (a no-op where no console listens, as in the CLI on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from bot.engine.store import ConversationState, ConversationStore, HandoffItem
from core import staff_alerts
from core.config import ShopConfig
from core.customers import CustomerView
from core.i18n import texts
from core.messages import OutgoingMessage
from core.models import Booking, BookingStatus, Conversation, ConversationMode, Customer, TranscriptEntry
from core.results import BookingView

if TYPE_CHECKING:
    from bot.bootstrap import Services

FRONT_DESK = "front_desk"
RECENT_BOOKINGS = 20
TRANSCRIPT_LIMIT = 200


@dataclass(frozen=True)
class Taken:
    """Another staff member has the chat."""

    by: str


@dataclass(frozen=True)
class Staff:
    """Who acts: the login (kept in the transcript) and the name customers see."""

    username: str
    display_name: str = ""

    @property
    def author(self) -> str:
        return f"staff:{self.username}"


@dataclass(frozen=True)
class Inbox:
    waiting: list[HandoffItem]  # front desk first, then the longest waiting
    recent: list[HandoffItem]
    names: dict[int, str]


@dataclass(frozen=True)
class ConversationDetail:
    conversation: ConversationState
    transcript: list[TranscriptEntry]
    customer: CustomerView | None
    channels: list[str]
    bookings: list[BookingView]  # the latest first, lapsed holds left out
    no_shows: int


async def find(services: Services, conversation_id: int) -> ConversationState | None:
    """The conversation, or None when there is no such id."""
    async with services.db.reading() as s:
        exists = await s.get(Conversation, conversation_id)
    return await services.store.load(conversation_id) if exists is not None else None


async def take(services: Services, conv: ConversationState, staff: Staff) -> Taken | None:
    """Staff take the chat over; the customer is told once who joined (not on every click)."""
    holder = await services.store.take(conv.id, staff.username)
    if holder is not None:
        return Taken(holder)
    if conv.assigned_to != staff.username:
        joined = texts(conv.language).t("handoff.joined", name=staff.display_name or staff.username)
        await services.store.enqueue(conv, OutgoingMessage(joined), author=staff.author)
    await services.events.publish({"type": "taken", "shop": conv.shop_id, "conversation": conv.id})
    return None


async def reply(services: Services, conv: ConversationState, staff: Staff, message: OutgoingMessage) -> int | Taken:
    """Staff write to the customer; replying takes the chat (refused when another has it).
    Returns the outbox id."""
    holder = await services.store.take(conv.id, staff.username)
    if holder is not None:
        return Taken(holder)
    outbox_id = await services.store.enqueue(conv, message, author=staff.author)
    await services.events.publish({"type": "reply", "shop": conv.shop_id, "conversation": conv.id})
    return outbox_id


async def note(services: Services, conv: ConversationState, staff: Staff, text: str) -> None:
    """An internal note: in the transcript for staff, never sent to the customer."""
    await services.store.note(conv.id, staff.username, text)
    await services.events.publish({"type": "note", "shop": conv.shop_id, "conversation": conv.id})


async def release(services: Services, conv: ConversationState) -> None:
    """The chat goes back to the bot, and the customer is told so."""
    await services.store.set_mode(conv.id, ConversationMode.BOT)
    back = texts(conv.language).t("handoff.released")
    await services.store.enqueue(conv, OutgoingMessage(back), author="bot")
    await services.events.publish({"type": "released", "shop": conv.shop_id, "conversation": conv.id})


async def hand_to_staff(
    store: ConversationStore,
    conversation_id: int,
    *,
    route: str | None,
    reason: str,
    shop_id: str | None = None,
    shop: ShopConfig | None = None,
) -> int:
    """The bot hands the chat to staff (``route`` picks who: front desk unless said otherwise);
    it stays silent until staff release it. For the engine (``flows.escalate``).

    With the shop given, the staff alert (core/staff_alerts.py, where the shop configured one)
    is queued in the same transaction as the handoff: inside the engine's turn that is the
    turn's unit of work, so the alert exists exactly when the handoff does (a crash after the
    commit loses neither, a failed turn keeps neither). Returns how many alerts were queued."""
    route = route or FRONT_DESK
    async with store.db.unit_of_work() as uow:  # in a turn: the turn's own; else one for both rows
        await store.set_mode(conversation_id, ConversationMode.HANDOFF, route=route, reason=reason)
        if shop is None or shop_id is None:
            return 0
        async with store.db.transaction() as s:
            rows = await staff_alerts.queue_handoff(s, shop_id, shop, conversation_id, route, store.clock.now())
        if rows and store.wake is not None:
            uow.after_commit(store.wake)  # the delivery loop sends it once it is committed
    return len(rows)


async def inbox(services: Services, shop_id: str) -> Inbox:
    """Waiting chats (handed over first, the front desk's first, then the longest waiting) and
    the bot's recent ones, with the customers' names."""
    waiting = await services.store.handoffs(shop_id)
    recent = await services.store.recent(shop_id)
    names = await customer_names(services, {i.customer_id for i in (*waiting, *recent)})
    now = services.clock.now()
    route_order = {FRONT_DESK: 0}
    waiting.sort(key=lambda i: (i.mode != ConversationMode.HANDOFF, route_order.get(i.route or "", 1), i.since or now))
    return Inbox(waiting=waiting, recent=recent, names=names)


async def waiting(services: Services, shop_id: str | None = None) -> list[HandoffItem]:
    """Chats waiting for or held by staff, longest waiting first (all shops without ``shop_id``)."""
    return await services.store.handoffs(shop_id)


async def detail(services: Services, conv: ConversationState) -> ConversationDetail:
    """What staff see beside the chat: transcript, customer, reachable channels, bookings."""
    entries = await services.store.transcript(conv.id, limit=TRANSCRIPT_LIMIT)
    customer = await services.customers.get(conv.customer_id)
    async with services.db.reading() as s:
        rows = list(
            await s.scalars(
                select(Booking)
                .where(Booking.customer_id == conv.customer_id, Booking.status != BookingStatus.EXPIRED)
                .order_by(Booking.start_at.desc())
                .limit(RECENT_BOOKINGS)
            )
        )
        no_shows = await s.scalar(
            select(func.count()).where(Booking.customer_id == conv.customer_id, Booking.status == BookingStatus.NO_SHOW)
        )
    channels = [channel for channel, _ in await services.customers.identities(conv.customer_id)]
    return ConversationDetail(
        conversation=conv,
        transcript=entries,
        customer=customer,
        channels=channels,
        bookings=[BookingView.of(b) for b in rows],
        no_shows=int(no_shows or 0),
    )


async def customer_names(services: Services, ids: set[int]) -> dict[int, str]:
    """Customer id -> display name, in one query."""
    if not ids:
        return {}
    async with services.db.reading() as s:
        rows = await s.execute(select(Customer.id, Customer.display_name).where(Customer.id.in_(ids)))
        return {cid: name for cid, name in rows}


def waited_min(since: datetime | None, now: datetime) -> int | None:
    """Whole minutes since the chat started waiting."""
    return int((now - since).total_seconds() // 60) if since else None
