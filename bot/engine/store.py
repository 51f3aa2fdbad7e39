"""Persistence for the conversation engine: dialog state, dedupe, ordering, transcript, handoff.

- Dedupe: an inbound message id is claimed (unique row) BEFORE it is processed; a redelivery
  gets the stored reply back instead of acting twice, and a redelivery that arrives while the
  first attempt still runs waits for that attempt's reply.
- Ordering: messages of one conversation are handled one at a time. Inside a process an
  asyncio.Lock per conversation queues them in arrival order; across processes a lease on the
  conversation row (lock_owner / locked_until, taken with one guarded UPDATE) does, so several
  `serve` processes on PostgreSQL never interleave one chat. A crashed holder's lease is
  released as soon as its heartbeat says it is dead (bot/inbox.py), else it expires. The state
  is loaded only after the lock is taken, in the same statement (UPDATE ... RETURNING).
- A turn ends in ONE transaction (``finish_turn``): transcript, state, the inbox row done, and
  for the durable inbox path the replies in the outbox (then the delivery loop is woken: here
  directly, in other processes by PostgreSQL NOTIFY).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import TranscriptLine
from core.clock import Clock
from core.db import Database, rowcount
from core.messages import OutgoingMessage
from core.models import (
    Conversation,
    ConversationMode,
    InboundMessage,
    OutboxMessage,
    OutboxStatus,
    TranscriptEntry,
)
from core.outbox import enqueue

LEASE = timedelta(seconds=30)
WAKE_CHANNEL = "chatbook_wake"  # NOTIFY channel: new outbox rows to send
ABANDONED = timedelta(seconds=60)  # a claimed message with no reply after this is processed again
_POLL_SECONDS = 0.02


@dataclass
class ConversationState:
    """A conversation as the engine works on it (saved back after each message)."""

    id: int
    shop_id: str
    channel: str
    external_id: str
    customer_id: int
    language: str
    state: str
    data: dict[str, Any]
    mode: ConversationMode
    handoff_route: str | None = None
    handoff_reason: str | None = None
    assigned_to: str | None = None
    created: bool = False
    lease_released: bool = False


@dataclass(frozen=True)
class Claim:
    """Outcome of claiming an inbound message id."""

    fresh: bool
    reply: list[OutgoingMessage] = field(default_factory=list)


@dataclass(frozen=True)
class HandoffItem:
    conversation_id: int
    shop_id: str
    channel: str
    external_id: str
    customer_id: int
    route: str | None
    reason: str | None
    since: datetime | None
    mode: ConversationMode
    assigned_to: str | None
    last_text: str


class ConversationStore:
    def __init__(self, db: Database, clock: Clock, *, owner: str | None = None) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex
        self._locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self.wake: Callable[[], None] | None = None  # the delivery loop's wake-up (bootstrap sets it)
        self._waiters: dict[tuple[str, str, str], int] = {}

    # ---------------------------------------------------------------- dedupe

    async def claim_inbound(self, shop_id: str, channel: str, message_id: str) -> Claim:
        now = self.clock.now()
        try:
            async with self.db.transaction() as s:
                s.add(InboundMessage(shop_id=shop_id, channel=channel, message_id=message_id, received_at=now))
            return Claim(fresh=True)
        except IntegrityError:
            pass
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            async with self.db.transaction() as s:
                row = await s.scalar(
                    select(InboundMessage).where(
                        InboundMessage.shop_id == shop_id,
                        InboundMessage.channel == channel,
                        InboundMessage.message_id == message_id,
                    )
                )
                if row is None:  # pragma: no cover - rows are never deleted while in use
                    return Claim(fresh=True)
                if row.done:
                    return Claim(fresh=False, reply=[OutgoingMessage.from_json(m) for m in row.reply or []])
                if row.received_at + ABANDONED < self.clock.now():
                    row.received_at = self.clock.now()  # the first attempt died: take it over
                    return Claim(fresh=True)
            if asyncio.get_running_loop().time() > deadline:
                return Claim(fresh=False)  # still being handled elsewhere: that attempt answers
            await asyncio.sleep(0.05)

    # ---------------------------------------------------------------- ordering

    @asynccontextmanager
    async def locked(
        self, shop_id: str, channel: str, external_id: str, conversation_id: int
    ) -> AsyncIterator[ConversationState]:
        """Hold the conversation (in-process lock, then the cross-process lease) and load it."""
        async with self._local((shop_id, channel, external_id)):
            conv = await self._take_lease(conversation_id)
            try:
                yield conv
            finally:
                if not conv.lease_released:
                    await self._drop_lease(conversation_id)

    @asynccontextmanager
    async def opened(
        self, shop_id: str, channel: str, external_id: str, *, customer_id: int, language: str
    ) -> AsyncIterator[ConversationState]:
        """``open`` + ``locked`` in one: a known chat is held and loaded with ONE statement (the
        lease taken by its natural key, UPDATE ... RETURNING); a new one is created first."""
        async with self._local((shop_id, channel, external_id)):
            conv = await self._take_lease_by_key(shop_id, channel, external_id)
            if conv is None:
                made = await self.open(shop_id, channel, external_id, customer_id=customer_id, language=language)
                conv = await self._take_lease(made.id)
                conv.created = made.created
            try:
                yield conv
            finally:
                if not conv.lease_released:
                    await self._drop_lease(conv.id)

    @asynccontextmanager
    async def _local(self, key: tuple[str, str, str]) -> AsyncIterator[None]:
        """This process's lock of one conversation (arrival order), forgotten when unused."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiters[key] -= 1
            if not self._waiters[key]:
                del self._waiters[key]
                self._locks.pop(key, None)

    async def _take_lease_by_key(self, shop_id: str, channel: str, external_id: str) -> ConversationState | None:
        """The lease and the state by natural key; None when the conversation does not exist yet."""
        natural = (
            Conversation.shop_id == shop_id,
            Conversation.channel == channel,
            Conversation.external_id == external_id,
        )
        while True:
            now = self.clock.now()
            async with self.db.transaction() as s:
                row = await s.scalar(self._lease(now, *natural))
                if row is not None:
                    return _state_of(row)
                if await s.scalar(select(Conversation.id).where(*natural)) is None:
                    return None
            await asyncio.sleep(_POLL_SECONDS)

    def _lease(self, now: datetime, *where: Any) -> Any:
        """Take (or renew) the conversation's lease and load it in ONE statement (UPDATE ... RETURNING)."""
        return (
            update(Conversation)
            .where(
                *where,
                or_(
                    Conversation.locked_until.is_(None),
                    Conversation.locked_until < now,
                    Conversation.lock_owner == self.owner,
                ),
            )
            .values(lock_owner=self.owner, locked_until=now + LEASE)
            .returning(Conversation)
            .execution_options(synchronize_session=False)
        )

    async def _take_lease(self, conversation_id: int) -> ConversationState:
        while True:
            now = self.clock.now()
            async with self.db.transaction() as s:
                row = await s.scalar(self._lease(now, Conversation.id == conversation_id))
                if row is not None:
                    return _state_of(row)
            await asyncio.sleep(_POLL_SECONDS)

    async def _drop_lease(self, conversation_id: int) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id, Conversation.lock_owner == self.owner)
                .values(lock_owner=None, locked_until=None)
                .execution_options(synchronize_session=False)
            )

    async def finish_turn(
        self,
        conv: ConversationState,
        message: tuple[str, str, str],
        inbound: tuple[str, dict[str, Any]],
        replies: list[OutgoingMessage],
        *,
        deliver_at: datetime | None = None,
    ) -> list[int]:
        """One transaction ends a turn: transcript in and out, the new state, the stored reply
        for redeliveries, the inbox row done, and the lease given back. With ``deliver_at`` the
        replies are also written to the outbox (due then) and the delivery loop is woken; returns
        their outbox ids."""
        now = self.clock.now()
        shop_id, channel, message_id = message
        rows: list[OutboxMessage] = []
        async with self.db.transaction() as s:
            if deliver_at is not None:
                for reply in replies:
                    row = enqueue(
                        s,
                        shop_id=shop_id,
                        channel=channel,
                        external_id=conv.external_id,
                        conversation_id=conv.id,
                        message=reply,
                        now=now,
                    )
                    row.next_attempt_at = deliver_at
                    rows.append(row)
            s.add(
                TranscriptEntry(
                    conversation_id=conv.id,
                    direction="in",
                    author="customer",
                    text=inbound[0][:4000],
                    payload=inbound[1],
                    at=now,
                )
            )
            for reply in replies:
                s.add(
                    TranscriptEntry(
                        conversation_id=conv.id,
                        direction="out",
                        author="bot",
                        text=reply.text[:4000],
                        payload=reply.to_json(),
                        at=now,
                    )
                )
            await s.execute(
                update(Conversation)
                .where(Conversation.id == conv.id)
                .values(
                    language=conv.language,
                    state=conv.state,
                    data=conv.data,
                    updated_at=now,
                    last_inbound_at=now,
                    lock_owner=None,
                    locked_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            await s.execute(
                update(InboundMessage)
                .where(
                    InboundMessage.shop_id == shop_id,
                    InboundMessage.channel == channel,
                    InboundMessage.message_id == message_id,
                )
                .values(done=True, reply=[m.to_json() for m in replies], done_at=now)
                .execution_options(synchronize_session=False)
            )
            if rows:
                await s.flush()
                await self._notify(s)
        conv.lease_released = True
        if rows:
            self._wake()
        return [row.id for row in rows]

    # ---------------------------------------------------------------- waking the delivery loop

    def _wake(self) -> None:
        if self.wake is not None:
            self.wake()

    async def _notify(self, s: Any) -> None:
        """Other processes' delivery loops wake at commit (PostgreSQL NOTIFY; bot/events.py LISTENs)."""
        if self.db.dialect == "postgresql":
            await s.execute(text("SELECT pg_notify(:c, '')"), {"c": WAKE_CHANNEL})

    # ---------------------------------------------------------------- state

    async def open(
        self, shop_id: str, channel: str, external_id: str, *, customer_id: int, language: str
    ) -> ConversationState:
        """The conversation for a channel identity, created on first contact."""
        now = self.clock.now()
        async with self.db.reading() as s:
            row = await self._find(s, shop_id, channel, external_id)
            if row is not None:
                return _state_of(row)
        try:
            async with self.db.transaction() as s:
                row = Conversation(
                    shop_id=shop_id,
                    channel=channel,
                    external_id=external_id,
                    customer_id=customer_id,
                    language=language,
                    state="idle",
                    data={},
                    mode=ConversationMode.BOT,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                await s.flush()
                state = _state_of(row)
                state.created = True
                return state
        except IntegrityError:
            async with self.db.transaction() as s:
                row = await self._find(s, shop_id, channel, external_id)
                assert row is not None
                return _state_of(row)

    async def load(self, conversation_id: int) -> ConversationState:
        async with self.db.reading() as s:
            row = await s.get(Conversation, conversation_id)
            assert row is not None
            return _state_of(row)

    async def _find(self, s: AsyncSession, shop_id: str, channel: str, external_id: str) -> Conversation | None:
        return await s.scalar(
            select(Conversation).where(
                Conversation.shop_id == shop_id,
                Conversation.channel == channel,
                Conversation.external_id == external_id,
            )
        )

    # ---------------------------------------------------------------- transcript

    async def transcript(self, conversation_id: int, limit: int = 50) -> list[TranscriptEntry]:
        async with self.db.reading() as s:
            rows = await s.scalars(
                select(TranscriptEntry)
                .where(TranscriptEntry.conversation_id == conversation_id)
                .order_by(TranscriptEntry.id.desc())
                .limit(limit)
            )
            return list(reversed(list(rows)))

    # ---------------------------------------------------------------- handoff

    async def set_mode(
        self,
        conversation_id: int,
        mode: ConversationMode,
        *,
        route: str | None = None,
        reason: str | None = None,
        assigned_to: str | None = None,
    ) -> None:
        now = self.clock.now()
        values: dict[str, Any] = {"mode": mode, "updated_at": now, "assigned_to": assigned_to}
        if mode == ConversationMode.HANDOFF:
            values.update(handoff_route=route, handoff_reason=reason, handoff_at=now)
        elif mode == ConversationMode.BOT:
            values.update(handoff_route=None, handoff_reason=None, handoff_at=None)
        async with self.db.transaction() as s:
            await s.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def take(self, conversation_id: int, staff: str) -> str | None:
        """A staff member takes the chat over; returns who already has it when someone else does."""
        now = self.clock.now()
        async with self.db.transaction() as s:
            result = await s.execute(
                update(Conversation)
                .where(
                    Conversation.id == conversation_id,
                    or_(Conversation.assigned_to.is_(None), Conversation.assigned_to == staff),
                )
                .values(mode=ConversationMode.STAFF, assigned_to=staff, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if rowcount(result):
                return None
            holder = await s.scalar(select(Conversation.assigned_to).where(Conversation.id == conversation_id))
            return str(holder or "")

    async def note(self, conversation_id: int, staff: str, text: str) -> None:
        """An internal note: kept in the transcript for staff, never sent to the customer."""
        async with self.db.transaction() as s:
            s.add(
                TranscriptEntry(
                    conversation_id=conversation_id,
                    direction="note",
                    author=f"staff:{staff}",
                    text=text[:4000],
                    payload={},
                    at=self.clock.now(),
                )
            )

    async def recent(self, shop_id: str, limit: int = 30) -> list[HandoffItem]:
        """Conversations the bot is handling, most recently active first (below the escalations)."""
        async with self.db.reading() as s:
            rows = list(
                await s.scalars(
                    select(Conversation)
                    .where(Conversation.shop_id == shop_id, Conversation.mode == ConversationMode.BOT)
                    .order_by(Conversation.last_inbound_at.desc().nulls_last())
                    .limit(limit)
                )
            )
        return [await self._item(row) for row in rows]

    async def latest_conversation(self, shop_id: str, customer_id: int) -> ConversationState | None:
        async with self.db.reading() as s:
            row = await s.scalar(latest_conversation_query(shop_id, customer_id))
            return _state_of(row) if row else None

    async def _item(self, row: Conversation) -> HandoffItem:
        async with self.db.reading() as s:
            last = await s.scalar(
                select(TranscriptEntry.text)
                .where(TranscriptEntry.conversation_id == row.id, TranscriptEntry.direction == "in")
                .order_by(TranscriptEntry.id.desc())
                .limit(1)
            )
        return HandoffItem(
            conversation_id=row.id,
            shop_id=row.shop_id,
            channel=row.channel,
            external_id=row.external_id,
            customer_id=row.customer_id,
            route=row.handoff_route,
            reason=row.handoff_reason,
            since=row.handoff_at or row.last_inbound_at,
            mode=row.mode,
            assigned_to=row.assigned_to,
            last_text=last or "",
        )

    async def handoffs(self, shop_id: str | None = None) -> list[HandoffItem]:
        """Conversations waiting for or held by staff, longest waiting first."""
        async with self.db.reading() as s:
            query = select(Conversation).where(Conversation.mode != ConversationMode.BOT)
            if shop_id:
                query = query.where(Conversation.shop_id == shop_id)
            rows = list(await s.scalars(query.order_by(Conversation.handoff_at)))
        return [await self._item(row) for row in rows]

    # ---------------------------------------------------------------- outbox

    async def enqueue(self, conv: ConversationState | int, message: OutgoingMessage, *, author: str) -> int:
        """Store a message for delivery outside a reply (staff replies, notices) and log it."""
        if isinstance(conv, int):
            conv = await self.load(conv)
        now = self.clock.now()
        async with self.db.transaction() as s:
            row = enqueue(
                s,
                shop_id=conv.shop_id,
                channel=conv.channel,
                external_id=conv.external_id,
                conversation_id=conv.id,
                message=message,
                now=now,
                kind="staff" if author.startswith("staff") else "message",
            )
            s.add(
                TranscriptEntry(
                    conversation_id=conv.id,
                    direction="out",
                    author=author,
                    text=message.text[:4000],
                    payload=message.to_json(),
                    at=now,
                )
            )
            await s.flush()
            await self._notify(s)
            outbox_id = row.id
        self._wake()
        return outbox_id

    async def history(self, shop_id: str, channel: str, external_id: str, limit: int = 30) -> list[TranscriptLine]:
        """The conversation's recent messages, for channels that show history (the widget)."""
        async with self.db.reading() as s:
            conv = await self._find(s, shop_id, channel, external_id)
            if conv is None:
                return []
            rows = list(
                await s.scalars(
                    select(TranscriptEntry)
                    .where(TranscriptEntry.conversation_id == conv.id)
                    .order_by(TranscriptEntry.id.desc())
                    .limit(limit)
                )
            )
        return [
            TranscriptLine(
                direction=r.direction,
                text=r.text,
                message=OutgoingMessage.from_json(r.payload) if r.direction == "out" and r.payload else None,
                at=r.at,
            )
            for r in reversed(rows)
        ]

    async def pending_outbox(self, shop_id: str, channel: str, external_id: str | None = None) -> list[OutboxMessage]:
        async with self.db.reading() as s:
            query = select(OutboxMessage).where(
                OutboxMessage.shop_id == shop_id,
                OutboxMessage.channel == channel,
                OutboxMessage.status == OutboxStatus.PENDING,
            )
            if external_id is not None:
                query = query.where(OutboxMessage.external_id == external_id)
            return list(await s.scalars(query.order_by(OutboxMessage.id)))

    async def mark_sent(self, outbox_id: int, provider_id: str | None = None) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == outbox_id)
                .values(
                    status=OutboxStatus.SENT,
                    sent_at=self.clock.now(),
                    provider_id=provider_id,
                    attempts=OutboxMessage.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )


def latest_conversation_query(shop_id: str, customer_id: int) -> Select[Conversation]:
    """The customer's most recently active chat with the shop: where messages to them go."""
    return (
        select(Conversation)
        .where(Conversation.shop_id == shop_id, Conversation.customer_id == customer_id)
        .order_by(Conversation.last_inbound_at.desc().nulls_last(), Conversation.id.desc())
        .limit(1)
    )


def _state_of(row: Conversation) -> ConversationState:
    return ConversationState(
        id=row.id,
        shop_id=row.shop_id,
        channel=row.channel,
        external_id=row.external_id,
        customer_id=row.customer_id,
        language=row.language,
        state=row.state,
        data=dict(row.data or {}),
        mode=ConversationMode(row.mode),
        handoff_route=row.handoff_route,
        handoff_reason=row.handoff_reason,
        assigned_to=row.assigned_to,
    )
