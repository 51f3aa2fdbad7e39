"""The outbox: every message to a customer that is not an inline reply is stored first, then sent.

Rows are written in the same transaction as the change that causes them (a staff reply, a
confirmation, a reminder), so a crash between the change and the send loses nothing: the
delivery loop (bot/delivery.py) sends whatever is pending when it starts again.

Claiming is safe with several server processes: a claim moves rows to "sending" with a lease
(on PostgreSQL under FOR UPDATE SKIP LOCKED, so two processes never claim the same row; on
SQLite the write lock serialises claims). A process that dies mid-send leaves the lease to
expire and the row is claimed again. The one unavoidable window: a message sent but not yet
marked sent when the process dies is sent a second time (at most one duplicate).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.db import Database
from core.messages import OutgoingMessage
from core.models import OutboxMessage, OutboxStatus

LEASE = timedelta(seconds=60)


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
        shop_id=shop_id,
        channel=channel,
        external_id=external_id,
        conversation_id=conversation_id,
        kind=kind,
        body={**message.to_json(), **(extra or {})},
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        needs_staff=False,
    )
    session.add(row)
    return row


class Outbox:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.owner = uuid.uuid4().hex  # this delivery loop: only it may settle the rows it claimed

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
            ids = list(await s.scalars(due))
            if not ids:
                return []
            await s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(
                    status=OutboxStatus.SENDING,
                    lease_until=now + lease,
                    claimed_by=self.owner,
                    attempts=OutboxMessage.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            rows = await s.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids)).order_by(OutboxMessage.id))
            return [
                Claimed(
                    id=r.id,
                    shop_id=r.shop_id,
                    channel=r.channel,
                    external_id=r.external_id,
                    conversation_id=r.conversation_id,
                    kind=r.kind,
                    message=OutgoingMessage.from_json(r.body),
                    attempts=r.attempts,
                    body=dict(r.body),
                )
                for r in rows
            ]

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
            return bool(result.rowcount)  # type: ignore[attr-defined]

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
