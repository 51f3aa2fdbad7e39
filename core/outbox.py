"""The outbox: every message to a customer that is not an inline reply is stored first, then sent.

Rows are written in the same transaction as the change that causes them (a staff reply, a
confirmation, a reminder), so a crash between the change and the send loses nothing: the
delivery loop (bot/delivery.py) sends whatever is pending when it starts again.

Claiming is safe with several server processes: a claim moves rows to "sending" with a lease
(on PostgreSQL under FOR UPDATE SKIP LOCKED, so two processes never claim the same row; on
SQLite the write lock serialises claims). A process that dies mid-send is noticed by its
heartbeat (bot/inbox.py Workers) and its rows are claimed again at once; the lease is the
backstop for a process that is alive but stuck. The one unavoidable window: a message sent but not yet
marked sent when the process dies is sent a second time (at most one duplicate).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db import Database, Prepared, prepared_insert, rowcount
from core.messages import OutgoingMessage
from core.models import OutboxMessage, OutboxStatus, TranscriptEntry

LEASE = timedelta(seconds=60)
OUTAGE = "unreachable: "  # error prefix of a retry waiting out a network outage (not a rate limit)


@dataclass(frozen=True)
class Claimed:
    id: int
    shop_id: str
    channel: str
    external_id: str
    conversation_id: int | None
    kind: str
    message: OutgoingMessage
    attempts: int
    body: dict[str, Any]

    @classmethod
    def of(cls, row: OutboxMessage) -> Claimed:
        """From an ORM row (its body copied: the row stays with its session)."""
        return replace(cls.of_row(row), body=dict(row.body))

    @classmethod
    def of_row(cls, row: Any) -> Claimed:
        """From a Core row of (id, shop_id, channel, external_id, conversation_id, kind, body, attempts)."""
        body: dict[str, Any] = row.body
        return cls(
            id=row.id,
            shop_id=row.shop_id,
            channel=row.channel,
            external_id=row.external_id,
            conversation_id=row.conversation_id,
            kind=row.kind,
            message=OutgoingMessage.from_json(body),
            attempts=row.attempts,
            body=body,
        )


_TABLE = cast(Table, OutboxMessage.__table__)
# An inline answer marked sent (WeChat's passive reply, the widget's frame): once per reply.
_SENT_INLINE = Prepared(
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("b_id"), _TABLE.c.status == OutboxStatus.PENDING)
    .values(status=OutboxStatus.SENT, sent_at=bindparam("b_now"), provider_id=bindparam("b_provider"), attempts=1)
)


# The statements that queue a message in a unit of work (core/db.py ``Prepared``, compiled once on
# SQLite): its outbox row (returning its id) and its transcript line. Used by a chat turn
# (bot/engine/store.py) and by a reminder wave (bot/notifier.py).
OUTBOX_COLUMNS = (
    "shop_id",
    "channel",
    "external_id",
    "conversation_id",
    "kind",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "needs_staff",
)
OUTBOX_INSERT = prepared_insert(
    cast(Table, OutboxMessage.__table__), OUTBOX_COLUMNS, returning=[cast(Table, OutboxMessage.__table__).c.id]
)
TRANSCRIPT_INSERT = prepared_insert(
    cast(Table, TranscriptEntry.__table__), ("conversation_id", "direction", "author", "text", "payload", "at")
)


def outbox_row(
    *,
    shop_id: str,
    channel: str,
    external_id: str,
    conversation_id: int | None,
    message: OutgoingMessage,
    now: datetime,
    kind: str = "message",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The column values of a new outbox row (for a Core INSERT in the caller's transaction)."""
    return {
        "shop_id": shop_id,
        "channel": channel,
        "external_id": external_id,
        "conversation_id": conversation_id,
        "kind": kind,
        "body": {**message.to_json(), **(extra or {})},
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "needs_staff": False,
    }


def enqueue(
    session: AsyncSession,
    *,
    shop_id: str,
    channel: str,
    external_id: str,
    conversation_id: int | None,
    message: OutgoingMessage,
    now: datetime,
    kind: str = "message",
    extra: dict[str, Any] | None = None,
) -> OutboxMessage:
    """Add a message to the outbox inside the caller's transaction."""
    row = OutboxMessage(
        **outbox_row(
            shop_id=shop_id,
            channel=channel,
            external_id=external_id,
            conversation_id=conversation_id,
            message=message,
            now=now,
            kind=kind,
            extra=extra,
        )
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class Settlement:
    """How one claimed row ends its attempt (bot/delivery.py settles a batch in one commit)."""

    id: int
    status: OutboxStatus  # SENT, PENDING (retry at ``next_attempt_at``) or FAILED
    provider_id: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    needs_staff: bool = False


class Outbox:
    def __init__(self, db: Database, clock: Clock, *, owner: str | None = None) -> None:
        self.db = db
        self.clock = clock
        # This process's worker id (bot/inbox.py Workers): only it may settle the rows it claimed,
        # and when its heartbeat stops its claimed rows are taken over at once.
        self.owner = owner or uuid.uuid4().hex

    async def claim(self, channels: Iterable[str], limit: int = 20, lease: timedelta = LEASE) -> list[Claimed]:
        """Take up to ``limit`` due rows for the given channels (pending, or sending with a dead lease)."""
        wanted = list(channels)
        if not wanted:
            return []
        now = self.clock.now()
        async with self.db.transaction() as s:
            due = (
                select(OutboxMessage.id)
                .where(
                    OutboxMessage.channel.in_(wanted),
                    or_(
                        and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now),
                        and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now),
                    ),
                )
                .order_by(OutboxMessage.id)
                .limit(limit)
            )
            if self.db.dialect == "postgresql":
                due = due.with_for_update(skip_locked=True)
            return await _take(s, list(await s.scalars(due)), self.owner, now + lease)

    async def renew(self, outbox_id: int, lease: timedelta = LEASE) -> bool:
        """Extend our lease right before sending; False when another loop has taken the row over
        (our lease ran out while earlier rows of the batch were slow): then we must not send it."""
        async with self.db.transaction() as s:
            result = await s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == outbox_id,
                    OutboxMessage.status == OutboxStatus.SENDING,
                    OutboxMessage.claimed_by == self.owner,
                )
                .values(lease_until=self.clock.now() + lease)
                .execution_options(synchronize_session=False)
            )
            return bool(rowcount(result))

    async def renew_all(self, ids: Iterable[int], lease: timedelta = LEASE) -> set[int]:
        """Extend our lease on a batch still being sent (one statement); returns the ids still ours."""
        wanted = list(ids)
        if not wanted:
            return set()
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(wanted),
                    OutboxMessage.status == OutboxStatus.SENDING,
                    OutboxMessage.claimed_by == self.owner,
                )
                .values(lease_until=self.clock.now() + lease)
                .execution_options(synchronize_session=False)
            )
            ours = await s.scalars(
                select(OutboxMessage.id).where(OutboxMessage.id.in_(wanted), OutboxMessage.claimed_by == self.owner)
            )
            return set(ours)

    async def settle(
        self,
        results: Iterable[Settlement],
        extra: Iterable[dict[str, Any]] = (),
        recovered: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Settle a whole batch in ONE transaction (rows another loop took over are left to it);
        ``extra``: rows to enqueue with it (fallbacks to another channel), as ``enqueue`` kwargs;
        ``recovered``: (channel, shop) pairs that sent again after failures: their rows waiting
        out an outage are due now (not at the end of their backoff; a flood-control wait stays)."""
        results = list(results)
        extra = list(extra)
        recovered = list(recovered)
        if not results and not extra:
            return
        now = self.clock.now()
        sent = [r for r in results if r.status == OutboxStatus.SENT]
        async with self.db.transaction() as s:
            for channel, shop_id in recovered:
                await s.execute(
                    update(OutboxMessage)
                    .where(
                        OutboxMessage.channel == channel,
                        OutboxMessage.shop_id == shop_id,
                        OutboxMessage.status == OutboxStatus.PENDING,
                        OutboxMessage.next_attempt_at > now,
                        OutboxMessage.error.like(f"{OUTAGE}%"),
                    )
                    .values(next_attempt_at=now)
                    .execution_options(synchronize_session=False)
                )
            mine = and_(OutboxMessage.claimed_by == self.owner, OutboxMessage.status == OutboxStatus.SENDING)
            plain = [r.id for r in sent if r.provider_id is None]
            if plain:
                await s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(plain), mine)
                    .values(status=OutboxStatus.SENT, sent_at=now, error=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )
            for r in results:
                if r.status == OutboxStatus.SENT and r.provider_id is None:
                    continue
                values: dict[str, Any] = {"status": r.status, "lease_until": None}
                if r.status == OutboxStatus.SENT:
                    values.update(sent_at=now, provider_id=r.provider_id, error=None)
                elif r.status == OutboxStatus.PENDING:
                    values.update(next_attempt_at=r.next_attempt_at or now, error=(r.error or "")[:1000])
                else:
                    values.update(error=(r.error or "")[:1000], needs_staff=r.needs_staff)
                await s.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == r.id, mine)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
            for row in extra:
                enqueue(s, **row)

    async def release_dead(self, owners: Iterable[str]) -> int:
        """Rows claimed by dead workers go back to pending at once (no waiting for the lease)."""
        dead = list(owners)
        if not dead:
            return 0
        async with self.db.transaction() as s:
            result = await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.claimed_by.in_(dead))
                .values(
                    status=OutboxStatus.PENDING, claimed_by=None, lease_until=None, next_attempt_at=self.clock.now()
                )
                .execution_options(synchronize_session=False)
            )
            return rowcount(result)

    async def delivered_inline(self, ids: Iterable[int], provider_id: str) -> None:
        """Replies a channel gave inline (WeChat's passive reply, the widget's reply frame): sent,
        so the delivery loop never sends them (only rows nobody has claimed yet are changed)."""
        wanted = list(ids)
        if not wanted:
            return
        uow = self.db.current()
        if uow is not None and uow.raw is not None:  # SQLite, in the inbox's group commit: prepared, one per row
            now = self.clock.now()
            for row_id in wanted:
                await uow.run(_SENT_INLINE, {"b_id": row_id, "b_now": now, "b_provider": provider_id})
            return
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(wanted), OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENT, sent_at=self.clock.now(), provider_id=provider_id, attempts=1)
                .execution_options(synchronize_session=False)
            )

    async def claim_probes(self, channels: Iterable[str], lease: timedelta = LEASE) -> list[Claimed]:
        """The oldest row waiting out an outage, per (channel, shop), claimed early and without
        using up an attempt: sending it tells whether the network is back (``unprobe`` if not)."""
        wanted = list(channels)
        if not wanted:
            return []
        now = self.clock.now()
        async with self.db.reading() as s:
            candidates = list(
                await s.execute(
                    select(OutboxMessage.id, OutboxMessage.channel, OutboxMessage.shop_id)
                    .where(
                        OutboxMessage.channel.in_(wanted),
                        OutboxMessage.status == OutboxStatus.PENDING,
                        OutboxMessage.next_attempt_at > now,
                        OutboxMessage.error.like(f"{OUTAGE}%"),
                    )
                    .order_by(OutboxMessage.id)
                    .limit(200)
                )
            )
        firsts: dict[tuple[str, str], int] = {}
        for row_id, channel, shop_id in candidates:
            firsts.setdefault((channel, shop_id), row_id)
        if not firsts:
            return []
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(list(firsts.values())), OutboxMessage.status == OutboxStatus.PENDING)
                .values(status=OutboxStatus.SENDING, lease_until=now + lease, claimed_by=self.owner)
                .execution_options(synchronize_session=False)
            )
            rows = await s.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.id.in_(list(firsts.values())), OutboxMessage.claimed_by == self.owner
                )
            )
            return [
                Claimed.of(r)
                for r in rows
                if r.status == OutboxStatus.SENDING
            ]

    async def unprobe(self, outbox_id: int) -> None:
        """A probe found the network still down: the row waits as before (no attempt used)."""
        await self._set(outbox_id, status=OutboxStatus.PENDING, lease_until=None)

    async def retry_outages_now(self) -> int:
        """At start-up: rows waiting out a network outage are tried at once (the network may well
        be back: a restart is often how an outage ends); rate-limit waits are kept."""
        async with self.db.transaction() as s:
            result = await s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    OutboxMessage.next_attempt_at > self.clock.now(),
                    OutboxMessage.error.like(f"{OUTAGE}%"),
                )
                .values(next_attempt_at=self.clock.now())
                .execution_options(synchronize_session=False)
            )
            return rowcount(result)

    async def caught_up(self, shop_id: str, channel: str, external_id: str) -> None:
        """Rows waiting for a customer who was just shown the whole transcript: delivered."""
        waiting = and_(
            OutboxMessage.shop_id == shop_id,
            OutboxMessage.channel == channel,
            OutboxMessage.external_id == external_id,
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        async with self.db.reading() as s:  # most connects have nothing waiting: no write lock for them
            if await s.scalar(select(OutboxMessage.id).where(waiting).limit(1)) is None:
                return
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(waiting)
                .values(status=OutboxStatus.SENT, sent_at=self.clock.now(), provider_id="history")
                .execution_options(synchronize_session=False)
            )

    async def due_now(self, ids: Iterable[int]) -> None:
        """Held replies whose inline answer did not happen: the delivery loop may send them now."""
        wanted = list(ids)
        if not wanted:
            return
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(wanted), OutboxMessage.status == OutboxStatus.PENDING)
                .values(next_attempt_at=self.clock.now())
                .execution_options(synchronize_session=False)
            )

    async def backlog(self) -> list[tuple[str, str, int, datetime | None]]:
        """(shop, channel, rows not yet sent, oldest created_at) for metrics and `chatbook status`."""
        async with self.db.reading() as s:
            rows = await s.execute(
                select(
                    OutboxMessage.shop_id,
                    OutboxMessage.channel,
                    func.count(),
                    func.min(OutboxMessage.created_at),
                )
                .where(OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
                .group_by(OutboxMessage.shop_id, OutboxMessage.channel)
            )
            return [(shop, channel, int(n), _aware(oldest)) for shop, channel, n, oldest in rows]

    async def sent(self, outbox_id: int, provider_id: str | None) -> None:
        await self._set(
            outbox_id, status=OutboxStatus.SENT, sent_at=self.clock.now(), provider_id=provider_id, error=None
        )

    async def retry(self, outbox_id: int, error: str, at: datetime) -> None:
        await self._set(
            outbox_id, status=OutboxStatus.PENDING, next_attempt_at=at, lease_until=None, error=error[:1000]
        )

    async def failed(self, outbox_id: int, error: str, *, needs_staff: bool) -> None:
        await self._set(
            outbox_id, status=OutboxStatus.FAILED, error=error[:1000], needs_staff=needs_staff, lease_until=None
        )

    async def _set(self, outbox_id: int, **values: Any) -> None:
        """Settle a row we claimed (a row another loop took over is left to that loop)."""
        async with self.db.transaction() as s:
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == outbox_id, OutboxMessage.claimed_by == self.owner)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    async def needing_staff(self, shop_id: str | None = None) -> list[OutboxMessage]:
        """Messages nothing could deliver: a person should call these customers."""
        async with self.db.reading() as s:
            query = select(OutboxMessage).where(OutboxMessage.needs_staff.is_(True))
            if shop_id:
                query = query.where(OutboxMessage.shop_id == shop_id)
            return list(await s.scalars(query.order_by(OutboxMessage.id)))


# ---------------------------------------------------------------------------------------------- batches
# (bot/delivery.py's lanes: a fair claim, and a batch's settlement committed with the next claim)


async def claim_fair(
    outbox: Outbox,
    channels: Iterable[str],
    *,
    limit: int,
    per_shop: int,
    sent: Collection[int] = (),
    lease: timedelta = LEASE,
) -> list[Claimed]:
    """Like ``Outbox.claim``, with two more rules for a loop that has several batches in flight:

    - at most ``per_shop`` rows of each (channel, shop) per claim, taken round robin over the
      shops (each one's oldest first), so a wave of one shop's messages (paced by its bot's own
      limit) never fills a batch that other shops' messages then wait behind, and batches in
      flight together spread over every shop's bot;
    - a chat's row is not taken while an earlier row of that chat is still being sent (by any
      process) or waiting for its retry, nor when an earlier one is locked by another claim right
      now (PostgreSQL): one chat's messages go out in order, whichever batch or process sends them.
      ``sent``: rows this process has sent but not settled yet (they hold nothing up).
    """
    wanted = list(channels)
    if not wanted or limit <= 0:
        return []
    db = outbox.db
    now = outbox.clock.now()
    due = or_(
        and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until < now),
    )
    rank = func.row_number().over(
        partition_by=(OutboxMessage.channel, OutboxMessage.shop_id), order_by=OutboxMessage.id
    )
    chat = (OutboxMessage.channel, OutboxMessage.shop_id, OutboxMessage.external_id)
    ranked_q = (
        select(OutboxMessage.id.label("id"), *chat, rank.label("rank"))
        .where(OutboxMessage.channel.in_(wanted), due)
        .subquery()
    )
    picked = (
        select(ranked_q.c.id, ranked_q.c.channel, ranked_q.c.shop_id, ranked_q.c.external_id)
        .where(ranked_q.c.rank <= per_shop)
        .order_by(ranked_q.c.rank, ranked_q.c.id)  # round robin over the shops, oldest first in each
        .limit(limit)
    )
    async with db.transaction() as s:
        candidates = [(int(i), (c, sh, e)) for i, c, sh, e in (await s.execute(picked)).all()]
        if not candidates:
            return []
        held = await s.execute(  # earlier rows of these chats in flight or waiting for a retry
            select(*chat, OutboxMessage.id)
            .where(
                OutboxMessage.external_id.in_({key[2] for _, key in candidates}),
                OutboxMessage.channel.in_(wanted),
                or_(
                    and_(OutboxMessage.status == OutboxStatus.SENDING, OutboxMessage.lease_until >= now),
                    and_(OutboxMessage.status == OutboxStatus.PENDING, OutboxMessage.next_attempt_at > now),
                ),
            )
        )
        first_held: dict[tuple[str, str, str], int] = {}
        for c, sh, e, held_id in held.all():
            if held_id not in sent:
                first_held[(c, sh, e)] = min(int(held_id), first_held.get((c, sh, e), int(held_id)))
        got = {i for i, _ in candidates}
        if db.dialect == "postgresql":  # lock what was picked; rows another claim holds are skipped
            locking = (
                select(OutboxMessage.id)
                .where(OutboxMessage.id.in_(got), due)  # still due: another claim may have just committed it
                .order_by(OutboxMessage.id)
                .with_for_update(skip_locked=True)
            )
            got = set(await s.scalars(locking))
        return await _take(s, _in_chat_order(candidates, first_held, got), outbox.owner, now + lease)


async def _take(s: AsyncSession, ids: list[int], owner: str, lease_until: datetime) -> list[Claimed]:
    """Mark the picked rows as being sent by ``owner`` (one attempt used) and return them in id
    order: one UPDATE ... RETURNING of the columns a send needs (no ORM objects)."""
    if not ids:
        return []
    c = _TABLE.c
    taken = await s.execute(
        update(_TABLE)
        .where(c.id.in_(ids))
        .values(status=OutboxStatus.SENDING, lease_until=lease_until, claimed_by=owner, attempts=c.attempts + 1)
        .returning(c.id, c.shop_id, c.channel, c.external_id, c.conversation_id, c.kind, c.body, c.attempts)
        .execution_options(synchronize_session=False)
    )
    return sorted((Claimed.of_row(row) for row in taken), key=lambda claimed: claimed.id)


def _in_chat_order(
    candidates: list[tuple[int, tuple[str, str, str]]], first_held: dict[tuple[str, str, str], int], got: set[int]
) -> list[int]:
    """Per chat, in id order, the rows up to the first one we may not take (one held earlier in
    flight or waiting, or one we could not lock): a chat's later rows never overtake its earlier."""
    ids: list[int] = []
    stopped: set[tuple[str, str, str]] = set()
    for row_id, key in candidates:
        if key in stopped:
            continue
        if row_id not in got or row_id > first_held.get(key, row_id):
            stopped.add(key)
            continue
        ids.append(row_id)
    return ids


async def settle_and_claim(
    outbox: Outbox,
    results: Iterable[Settlement],
    extra: Iterable[dict[str, Any]],
    recovered: Iterable[tuple[str, str]],
    channels: Iterable[str],
    *,
    limit: int,
    per_shop: int,
    sent: Collection[int] = (),
) -> list[Claimed]:
    """A sent batch's settlement and the next batch's claim in ONE transaction (one commit per
    batch): ``Outbox.settle`` and ``claim_fair`` as savepoints of one unit of work. ``limit`` 0:
    settle only."""
    async with outbox.db.unit_of_work():
        await outbox.settle(results, extra, recovered)
        return await claim_fair(outbox, channels, limit=limit, per_shop=per_shop, sent=sent)

def _aware(value: datetime | str | None) -> datetime | None:
    """Aggregates bypass the column type on SQLite (naive text): UTC-aware datetimes either way."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
