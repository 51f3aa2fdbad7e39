"""The delivery loop: sends what the outbox holds, through each channel's one send function.

Retries use exponential backoff (5 s, 10 s, 20 s ... capped at an hour) or the wait the network
asked for (HTTP 429 retry_after). When a channel fails for good (bot blocked, WeChat's 48-hour
window closed) the message goes to another channel the customer has; when there is none, or
every attempt is used up, it is marked failed and flagged for staff to call. Nothing fails
silently.

Batches: one claim (one commit), the sends (different chats at once, one chat's messages in
order; Telegram's 30/s per bot and per-chat pace are the sender's), then ONE commit settles the
whole batch. ``run`` is the loop of each `serve` process: it drains whatever is due and then
sleeps until woken (``wake``: a turn just wrote replies, in this process; or a NOTIFY from
another process on PostgreSQL) or a second passes (retries coming due). The outbox's claim
decides who sends a row, so several processes never send the same message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from channels.base import ChannelSender, DeliveryError
from core.clock import Clock
from core.customers import CustomerDirectory
from core.db import Database
from core.models import Conversation, OutboxStatus
from core.outbox import LEASE, OUTAGE, Claimed, Outbox, Settlement

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
BATCH = 50
IDLE_SECONDS = 1.0  # the loop looks for retries coming due at least this often
PROBE_SECONDS = 2.0  # while a channel is unreachable, one of its messages is tried this often
SENDS_AT_ONCE = 32  # chats sent to concurrently within a batch


class DeliveryMetrics(Protocol):
    def delivery(self, shop_id: str, channel: str, result: str) -> None: ...


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    if retry_after is not None:
        return timedelta(seconds=max(retry_after, 0.0))
    factor: int = 2 ** max(attempts - 1, 0)
    return min(BASE_DELAY * factor, MAX_DELAY)


class Delivery:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        senders: Mapping[str, ChannelSender],
        customers: CustomerDirectory,
        clock: Clock,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.senders = dict(senders)
        self.customers = customers
        self.clock = clock
        self.metrics = metrics
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------------ the loop

    def wake(self) -> None:
        """New rows are due: the loop runs at once (safe to call from any task of the loop)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self.run(), name="delivery")

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the batch in hand (bounded by ``grace``), then stop."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        last_probe = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            try:
                while not self._stopping and await self.tick(limit=BATCH) >= BATCH:
                    pass
                if loop.time() - last_probe >= PROBE_SECONDS:
                    last_probe = loop.time()
                    await self.probe()
            except Exception:
                log.exception("delivery loop: a batch failed; retrying shortly")
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_SECONDS)

    # ------------------------------------------------------------------ one batch

    async def tick(self, limit: int = BATCH) -> int:
        """Claim, send and settle one batch; returns how many rows were handled."""
        claimed = await self.outbox.claim(self.senders, limit=limit)
        if not claimed:
            return 0
        batch = _Batch(self, claimed)
        groups: dict[tuple[str, str, str], list[Claimed]] = {}
        for row in claimed:  # one chat's messages in order, different chats at once
            groups.setdefault((row.channel, row.shop_id, row.external_id), []).append(row)
        gate = asyncio.Semaphore(SENDS_AT_ONCE)

        async def send_group(rows: list[Claimed]) -> None:
            async with gate:
                for index, row in enumerate(rows):
                    if not await batch.send(row):
                        for later in rows[index + 1 :]:  # keep the chat's order: wait with it
                            batch.defer(later, row)
                        return

        await asyncio.gather(*(send_group(rows) for rows in groups.values()))
        recovered = {(row.channel, row.shop_id) for row, result in batch.counted if result == "sent"}
        await self.outbox.settle(batch.results, batch.extra, recovered if batch.retried else ())
        if recovered and batch.retried:
            self.wake()  # rows that waited out an outage of these channels are due now
        if self.metrics is not None:
            for row, result in batch.counted:
                self.metrics.delivery(row.shop_id, row.channel, result)
        return len(claimed)

    async def probe(self) -> int:
        """Is an unreachable channel back? Its oldest waiting message is sent early (no attempt
        used up); when it goes through, the channel's other waiting messages are due at once, so
        replies arrive within seconds of the network's return, not at the end of their backoff."""
        probes = await self.outbox.claim_probes(self.senders)
        back = 0
        for row in probes:
            try:
                provider_id = await self.senders[row.channel].send(row.shop_id, row.external_id, row.message)
            except Exception as exc:  # still down (or another failure: the normal retry handles it)
                log.debug("probe of %s via %s: %s", row.id, row.channel, exc)
                await self.outbox.unprobe(row.id)
                continue
            back += 1
            await self.outbox.settle(
                [Settlement(row.id, OutboxStatus.SENT, provider_id=provider_id)], (), [(row.channel, row.shop_id)]
            )
            if self.metrics is not None:
                self.metrics.delivery(row.shop_id, row.channel, "sent")
        if back:
            self.wake()
        return back

    async def _fallback_rows(self, row: Claimed) -> list[dict[str, Any]]:
        """The message queued on another channel the customer has; [] when there is none."""
        if row.conversation_id is None:
            return []
        tried = set(row.body.get("tried", [])) | {row.channel}
        async with self.db.reading() as s:
            customer_id = await s.scalar(select(Conversation.customer_id).where(Conversation.id == row.conversation_id))
        if customer_id is None:
            return []
        for channel, external_id in await self.customers.identities(customer_id):
            if channel in tried or channel not in self.senders:
                continue
            async with self.db.reading() as s:
                conversation_id = await s.scalar(
                    select(Conversation.id).where(
                        Conversation.shop_id == row.shop_id,
                        Conversation.channel == channel,
                        Conversation.external_id == external_id,
                    )
                )
            return [
                {
                    "shop_id": row.shop_id,
                    "channel": channel,
                    "external_id": external_id,
                    "conversation_id": conversation_id,
                    "message": row.message,
                    "now": self.clock.now(),
                    "kind": row.kind,
                    "extra": {"tried": sorted(tried), "fallback_of": row.id},
                }
            ]
        return []


class _Batch:
    """The outcome of one claimed batch, settled in one commit at the end."""

    def __init__(self, delivery: Delivery, claimed: list[Claimed]) -> None:
        self.d = delivery
        self.ids = [row.id for row in claimed]
        self.renewed_at: datetime = delivery.clock.now()
        self.results: list[Settlement] = []
        self.extra: list[dict[str, Any]] = []
        self.counted: list[tuple[Claimed, str]] = []
        self._lock = asyncio.Lock()
        self._ours: set[int] = set(self.ids)
        self.retried = False  # a row that had failed before was sent: its channel is back

    async def _still_ours(self, row: Claimed) -> bool:
        """Before each send: past half the lease, renew it for the whole batch (one statement);
        a row another loop took over meanwhile is not sent by us."""
        async with self._lock:
            if self.d.clock.now() - self.renewed_at >= LEASE / 2:
                self._ours = await self.d.outbox.renew_all(self.ids)
                self.renewed_at = self.d.clock.now()
        return row.id in self._ours

    async def send(self, row: Claimed) -> bool:
        """Send one row; False when it was not sent (the chat's later rows then wait)."""
        if not await self._still_ours(row):
            return False
        sender = self.d.senders[row.channel]
        try:
            provider_id = await sender.send(row.shop_id, row.external_id, row.message)
        except DeliveryError as exc:
            await self._failed(row, exc)
            return False
        except Exception as exc:  # a bug in a channel must not stop delivery of everything else
            log.exception("delivery %s via %s crashed", row.id, row.channel)
            await self._failed(row, DeliveryError(f"{type(exc).__name__}: {exc}"))
            return False
        self.results.append(Settlement(row.id, OutboxStatus.SENT, provider_id=provider_id))
        self.counted.append((row, "sent"))
        if row.attempts > 1:
            self.retried = True
        return True

    def defer(self, row: Claimed, blocker: Claimed) -> None:
        """An earlier message of the same chat was not sent: this one waits with it (same time)."""
        ahead = next((r for r in self.results if r.id == blocker.id), None)
        at = ahead.next_attempt_at if ahead is not None else None
        error = "waiting for an earlier message"
        if ahead is not None and ahead.error and ahead.error.startswith(OUTAGE):
            error = OUTAGE + error  # due again with it when the network is back
        self.results.append(Settlement(row.id, OutboxStatus.PENDING, error=error, next_attempt_at=at))

    async def _failed(self, row: Claimed, error: DeliveryError) -> None:
        if not error.permanent and row.attempts < MAX_ATTEMPTS:
            at = self.d.clock.now() + backoff(row.attempts, error.retry_after)
            reason = error.reason if error.retry_after is not None else OUTAGE + error.reason
            self.results.append(Settlement(row.id, OutboxStatus.PENDING, error=reason, next_attempt_at=at))
            self.counted.append((row, "retried"))
            return
        fallback = await self.d._fallback_rows(row)
        self.counted.append((row, "failed"))
        if fallback:
            self.extra.extend(fallback)
            reason = f"{error.reason}; sent through another channel"
            self.results.append(Settlement(row.id, OutboxStatus.FAILED, error=reason))
            return
        log.warning(
            "message %s for %s could not be delivered: %s (flagged for staff)", row.id, row.shop_id, error.reason
        )
        self.results.append(Settlement(row.id, OutboxStatus.FAILED, error=error.reason, needs_staff=True))
