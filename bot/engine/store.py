"""Persistence for the conversation engine: dialog state, dedupe, ordering, transcript, handoff.

A turn runs in ONE unit of work (``Database.unit_of_work``, opened by bot/engine/engine.py):
the dedupe claim, the conversation held and loaded, the policy's booking operations, then
``finish_turn``; one commit.

- Dedupe: an inbound message id is claimed (unique row) BEFORE it is processed; a redelivery
  gets the stored reply back instead of acting twice, and a redelivery that arrives while the
  first attempt still runs waits for that attempt's reply (``claim_here`` in the unit of work,
  ``claim_inbound`` outside it to wait).
- Ordering: messages of one conversation are handled one at a time. Inside a process an
  asyncio.Lock per conversation (``ordered``) queues them in arrival order; across processes
  ``hold`` locks the conversation row for the unit of work (SELECT ... FOR UPDATE on
  PostgreSQL; SQLite has one writer), so several `serve` processes never interleave one chat.
  The state is loaded only after the row is held, in the same statement. A lease left in the
  row (lock_owner / locked_until, by an older process) is respected until it expires or its
  holder is known dead (bot/inbox.py).
- A turn ends with ``finish_turn``: transcript, state, the inbox row done, and for the durable
  inbox path the replies in the outbox (the delivery loop is woken once the unit of work
  committed: here directly, in other processes by PostgreSQL NOTIFY).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from channels.base import TranscriptLine
from core.clock import Clock
from core.db import Database, Prepared, UnitOfWork, rowcount
from core.messages import OutgoingMessage
from core.models import (
    Conversation,
    ConversationMode,
    InboundMessage,
    OutboxMessage,
    OutboxStatus,
    TranscriptEntry,
)
from core.outbox import OUTBOX_INSERT, TRANSCRIPT_INSERT, enqueue, outbox_row

# The tables the hot turn writes with Core statements (no ORM unit-of-work flush per turn).
CONVERSATIONS = cast(Table, Conversation.__table__)
INBOUND = cast(Table, InboundMessage.__table__)
TRANSCRIPT = cast(Table, TranscriptEntry.__table__)
OUTBOX = cast(Table, OutboxMessage.__table__)
LEASE = timedelta(seconds=30)
WAKE_CHANNEL = "chatbook_wake"  # NOTIFY channel: new outbox rows to send
ABANDONED = timedelta(seconds=60)  # a claimed message with no reply after this is processed again

# The hot turn's statements, built once (core/db.py ``Prepared``: compiled once on SQLite).
_STATE_SAVED = Prepared(
    update(CONVERSATIONS)
    .where(CONVERSATIONS.c.id == bindparam("b_id"))
    .values(
        language=bindparam("b_language"),
        state=bindparam("b_state"),
        data=bindparam("b_data"),
        updated_at=bindparam("b_now"),
        last_inbound_at=bindparam("b_now"),
        lock_owner=None,
        locked_until=None,
    )
)
_INBOUND_DONE = Prepared(
    update(INBOUND)
    .where(
        INBOUND.c.shop_id == bindparam("b_shop"),
        INBOUND.c.channel == bindparam("b_channel"),
        INBOUND.c.message_id == bindparam("b_message"),
    )
    .values(done=True, reply=bindparam("b_reply"), done_at=bindparam("b_now"))
)
_CONVERSATION_BY_KEY = (
    CONVERSATIONS.c.shop_id == bindparam("b_shop"),
    CONVERSATIONS.c.channel == bindparam("b_channel"),
    CONVERSATIONS.c.external_id == bindparam("b_external"),
)
_NEW_CONVERSATION = {
    "shop_id": bindparam("b_shop"),
    "channel": bindparam("b_channel"),
    "external_id": bindparam("b_external"),
    "customer_id": bindparam("b_customer"),
    "language": bindparam("b_language"),
    "state": "idle",
    "data": bindparam("b_data"),
    "mode": ConversationMode.BOT,
    "created_at": bindparam("b_now"),
    "updated_at": bindparam("b_now"),
}


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
        self._held: tuple[Prepared, Prepared] | None = None

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
    async def ordered(self, shop_id: str, channel: str, external_id: str) -> AsyncIterator[None]:
        """This process's lock of one conversation: its messages are handled in arrival order,
        one at a time (forgotten when unused). Across processes: ``hold``."""
        key = (shop_id, channel, external_id)
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

    async def claim_here(self, shop_id: str, channel: str, message_id: str) -> Claim | None:
        """``claim_inbound`` inside the turn's unit of work, without waiting: fresh (new, or
        abandoned by an attempt that died), the stored reply, or None when another attempt is
        still on it (the caller leaves the unit of work and waits with ``claim_inbound``)."""
        now = self.clock.now()
        inbound = INBOUND
        values = {"shop_id": shop_id, "channel": channel, "message_id": message_id, "received_at": now}
        async with self.db.unit_of_work() as uow:
            statement = (
                self._insert(inbound)
                .values(done=False, attempts=0, **values)
                .on_conflict_do_nothing(index_elements=["shop_id", "channel", "message_id"])
                .returning(inbound.c.id)
            )
            if (await uow.conn.execute(statement)).first() is not None:
                return Claim(fresh=True)
            key = (inbound.c.shop_id == shop_id, inbound.c.channel == channel, inbound.c.message_id == message_id)
            found = select(inbound.c.done, inbound.c.reply, inbound.c.received_at).where(*key)
            row = (await uow.conn.execute(found)).first()
            if row is None:  # pragma: no cover - rows are never deleted while in use
                return Claim(fresh=True)
            if row.done:
                return Claim(fresh=False, reply=[OutgoingMessage.from_json(m) for m in row.reply or []])
            if row.received_at + ABANDONED < now:  # the first attempt died: take it over
                await uow.conn.execute(update(inbound).where(*key).values(received_at=now))
                return Claim(fresh=True)
            return None

    async def hold(
        self, shop_id: str, channel: str, external_id: str, *, customer_id: int, language: str
    ) -> ConversationState | None:
        """Inside the turn's unit of work: the conversation held until the work commits, and
        loaded; created on first contact. Held by a row lock on PostgreSQL (SELECT ... FOR
        UPDATE: another process's turn of the same chat waits for this one's commit), by the
        single writer on SQLite. None when another process holds the older lease (``lock_owner``,
        still valid): the caller leaves the unit of work and tries again shortly."""
        now = self.clock.now()
        key = {"b_shop": shop_id, "b_channel": channel, "b_external": external_id}
        find, create = self._hold_statements()
        async with self.db.unit_of_work() as uow:
            rows = await uow.run(find, key)
            created = False
            if not rows:
                values = {**key, "b_customer": customer_id, "b_language": language, "b_data": {}, "b_now": now}
                rows = await uow.run(create, values)
                created = bool(rows)
                if not rows:  # another process made it meanwhile
                    rows = await uow.run(find, key)
                    assert rows
        row = rows[0]
        if row.lock_owner not in (None, self.owner) and row.locked_until is not None and row.locked_until >= now:
            return None
        state = _state_of(row)
        state.created = created
        return state

    def _insert(self, table: Any) -> Any:
        return postgresql.insert(table) if self.db.dialect == "postgresql" else sqlite.insert(table)

    def _hold_statements(self) -> tuple[Prepared, Prepared]:
        """``hold``'s find (FOR UPDATE on PostgreSQL) and create statements, for this dialect."""
        if self._held is None:
            find = select(CONVERSATIONS).where(*_CONVERSATION_BY_KEY)
            if self.db.dialect == "postgresql":
                find = find.with_for_update()
            create = (
                self._insert(CONVERSATIONS)
                .values(_NEW_CONVERSATION)
                .on_conflict_do_nothing(index_elements=["shop_id", "channel", "external_id"])
                .returning(*CONVERSATIONS.c)
            )
            self._held = (Prepared(find), Prepared(create))
        return self._held

    async def finish_turn(
        self,
        conv: ConversationState,
        message: tuple[str, str, str],
        inbound: tuple[str, dict[str, Any]],
        replies: list[OutgoingMessage],
        *,
        deliver_at: datetime | None = None,
    ) -> list[int]:
        """The end of a turn, in its unit of work: transcript in and out, the new state, the
        stored reply for redeliveries, the inbox row done, and any lease of ours given back.
        With ``deliver_at`` the replies are also written to the outbox (due then) and the
        delivery loop is woken once the work commits; returns their outbox ids."""
        now = self.clock.now()
        shop_id, channel, message_id = message
        transcript = [
            {
                "conversation_id": conv.id,
                "direction": "in",
                "author": "customer",
                "text": inbound[0][:4000],
                "payload": inbound[1],
                "at": now,
            }
        ]
        transcript += [
            {
                "conversation_id": conv.id,
                "direction": "out",
                "author": "bot",
                "text": reply.text[:4000],
                "payload": reply.to_json(),
                "at": now,
            }
            for reply in replies
        ]
        outbox_ids: list[int] = []
        async with self.db.unit_of_work() as uow:
            if deliver_at is not None and replies:
                rows = [
                    {
                        **outbox_row(
                            shop_id=shop_id,
                            channel=channel,
                            external_id=conv.external_id,
                            conversation_id=conv.id,
                            message=reply,
                            now=now,
                        ),
                        "next_attempt_at": deliver_at,
                    }
                    for reply in replies
                ]
                outbox_ids = await self._outbox_rows(uow, rows)
            await uow.run_many(TRANSCRIPT_INSERT, transcript)
            state = {"b_id": conv.id, "b_language": conv.language, "b_state": conv.state, "b_data": conv.data}
            await uow.run(_STATE_SAVED, {**state, "b_now": now})
            done = {"b_shop": shop_id, "b_channel": channel, "b_message": message_id}
            await uow.run(_INBOUND_DONE, {**done, "b_reply": [m.to_json() for m in replies], "b_now": now})
            # Replies held for an inline answer (``deliver_at`` later: WeChat's passive reply,
            # the widget's frame) are not due yet: nobody is woken for them (a claim that finds
            # nothing would cost a write transaction per message). If the inline answer does not
            # happen, the channel makes them due and wakes the loop (``Inbox.undelivered``), or
            # the loop's idle pass finds them once their hold is over.
            if outbox_ids and deliver_at is not None and deliver_at <= now:
                if self.db.dialect == "postgresql":
                    await uow.conn.execute(text("SELECT pg_notify(:c, '')"), {"c": WAKE_CHANNEL})
                uow.after_commit(self._wake)
        return outbox_ids

    async def _outbox_rows(self, uow: UnitOfWork, rows: list[dict[str, Any]]) -> list[int]:
        """The replies' outbox rows, their ids in order (SQLite: one cheap INSERT each;
        elsewhere one executemany with RETURNING: one round trip)."""
        if uow.raw is not None:
            return [(await uow.run(OUTBOX_INSERT, row))[0][0] for row in rows]
        result = await uow.conn.execute(insert(OUTBOX).returning(OUTBOX.c.id, sort_by_parameter_order=True), rows)
        return [row_id for (row_id,) in result]

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


def _state_of(row: Conversation | Any) -> ConversationState:
    """From an ORM row or a Core row of the conversations table (the same attribute names)."""
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
