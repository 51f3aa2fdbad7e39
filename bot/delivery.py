"""The delivery loop: sends what the outbox holds, through each channel's one send function.

Retries use exponential backoff (5 s, 10 s, 20 s ... capped at an hour) or the wait the network
asked for (HTTP 429 retry_after). When a channel fails for good (bot blocked, WeChat's 48-hour
window closed) the message goes to another channel the customer has; when there is none, or
every attempt is used up, it is marked failed and flagged for staff to call. Nothing fails
silently. APScheduler runs ``tick`` every second in each server process; the outbox's claim
decides who sends a row, so several processes never send the same message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import select

from channels.base import ChannelSender, DeliveryError
from core.clock import Clock
from core.customers import CustomerDirectory
from core.db import Database
from core.models import Conversation
from core.outbox import Claimed, Outbox, enqueue

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    if retry_after is not None:
        return timedelta(seconds=max(retry_after, 0.0))
    return min(BASE_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)


class Delivery:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        senders: Mapping[str, ChannelSender],
        customers: CustomerDirectory,
        clock: Clock,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.senders = dict(senders)
        self.customers = customers
        self.clock = clock

    async def tick(self, limit: int = 50) -> int:
        """Send what is due; returns how many rows were handled."""
        claimed = await self.outbox.claim(self.senders, limit=limit)
        for row in claimed:
            await self._deliver(row)
        return len(claimed)

    async def _deliver(self, row: Claimed) -> None:
        sender = self.senders[row.channel]
        if not await self.outbox.renew(row.id):
            return  # earlier sends in this batch were slow and another loop took this row over
        try:
            provider_id = await sender.send(row.shop_id, row.external_id, row.message)
        except DeliveryError as exc:
            await self._failed(row, exc)
            return
        except Exception as exc:  # a bug in a channel must not stop delivery of everything else
            log.exception("delivery %s via %s crashed", row.id, row.channel)
            await self._failed(row, DeliveryError(f"{type(exc).__name__}: {exc}"))
            return
        await self.outbox.sent(row.id, provider_id)

    async def _failed(self, row: Claimed, error: DeliveryError) -> None:
        if not error.permanent and row.attempts < MAX_ATTEMPTS:
            at = self.clock.now() + backoff(row.attempts, error.retry_after)
            await self.outbox.retry(row.id, error.reason, at)
            return
        if await self._fall_back(row):
            await self.outbox.failed(row.id, f"{error.reason}; sent through another channel", needs_staff=False)
            return
        log.warning(
            "message %s for %s could not be delivered: %s (flagged for staff)", row.id, row.shop_id, error.reason
        )
        await self.outbox.failed(row.id, error.reason, needs_staff=True)

    async def _fall_back(self, row: Claimed) -> bool:
        """Queue the message on another channel the customer has; False when there is none."""
        if row.conversation_id is None:
            return False
        tried = set(row.body.get("tried", [])) | {row.channel}
        async with self.db.reading() as s:
            customer_id = await s.scalar(select(Conversation.customer_id).where(Conversation.id == row.conversation_id))
        if customer_id is None:
            return False
        for channel, external_id in await self.customers.identities(customer_id):
            if channel in tried or channel not in self.senders:
                continue
            async with self.db.transaction() as s:
                conversation_id = await s.scalar(
                    select(Conversation.id).where(
                        Conversation.shop_id == row.shop_id,
                        Conversation.channel == channel,
                        Conversation.external_id == external_id,
                    )
                )
                enqueue(
                    s,
                    shop_id=row.shop_id,
                    channel=channel,
                    external_id=external_id,
                    conversation_id=conversation_id,
                    message=row.message,
                    now=self.clock.now(),
                    kind=row.kind,
                    extra={"tried": sorted(tried), "fallback_of": row.id},
                )
            return True
        return False
