"""The delivery loop: sends what the outbox holds, through each channel's one send function.

Retries use exponential backoff (5 s, 10 s, 20 s ... capped at an hour) or the wait the network
asked for (HTTP 429 retry_after). When a channel fails for good (bot blocked, WeChat's 48-hour
window closed) the message goes to another channel the customer has; when there is none, or
every attempt is used up, it is marked failed and flagged for staff to call. Nothing fails
silently.

Batches and lanes. ``run`` is the loop of each `serve` process: woken (``wake``: a turn just wrote
replies, in this process; or a NOTIFY from another process on PostgreSQL), or once a second
(retries coming due), it starts a lane. A lane claims a batch (up to ``LANE_BATCH`` rows, at most
``PER_SHOP`` of each channel and shop, oldest first: core/outbox.py ``claim_fair``), sends it
(different chats at once, interleaved across shops; one chat's messages in order; Telegram's
30/s per bot and per-chat pace are the sender's), then settles it and claims the next batch in
ONE commit (``settle_and_claim``), until nothing is due. A full batch starts another lane (up to
``LANES``), so a wave of thousands of reminders goes out as fast as the channels allow: a shop
whose bot sends 30/s never holds up the other shops' messages. One chat's messages stay in order
across lanes and processes: the claim never takes a chat's row while an earlier one of that chat
is being sent or waits for its retry (the rows of a chat after one that failed wait with it).

The outbox's claim decides who sends a row, so several processes never send the same message.
``tick`` is one batch on its own (claim, send, settle: two commits), for tests and tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
from collections.abc import Awaitable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select

from channels.base import ChannelSender, DeliveryError
from core.clock import Clock
from core.customers import CustomerDirectory
from core.db import Database
from core.models import Conversation, OutboxStatus
from core.outbox import LEASE, OUTAGE, Claimed, Outbox, Settlement, claim_fair, settle_and_claim

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=5)
MAX_DELAY = timedelta(hours=1)
BATCH = 50  # rows per claim in ``tick``
LANE_BATCH = 500  # rows per claim in a lane
PER_SHOP = 50  # rows per (channel, shop) in one lane claim: one shop's burst never fills a batch
LANES = 8  # batches of one process in flight at once (each waits only for its own slowest send)
IDLE_SECONDS = 1.0  # the loop looks for retries coming due at least this often
PROBE_SECONDS = 2.0  # while a channel is unreachable, one of its messages is tried this often
SENDS_AT_ONCE = 32  # chats sent to concurrently within a batch
Chat = tuple[str, str, str]  # (channel, shop, external id)


class DeliveryMetrics(Protocol):
    def delivery(self, shop_id: str, channel: str, result: str) -> None: ...


@functools.cache
def _takes_details(sender_type: type) -> bool:
    """Does this sender's ``send`` take the row's ``kind`` and ``details`` (WeChat does: its template
    notices outside the 48-hour window depend on them)? Senders without them get the three arguments."""
    try:
        parameters = inspect.signature(sender_type.send).parameters  # type: ignore[attr-defined]  # every ChannelSender has send
    except (AttributeError, TypeError, ValueError):
        return False
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return "kind" in parameters and "details" in parameters


def send_row(sender: ChannelSender, row: Claimed) -> Awaitable[str | None]:
    """One outbox row through its channel's send function, with the row's kind and body where the
    channel uses them (a reminder outside WeChat's window becomes a template notice)."""
    if _takes_details(type(sender)):
        send: Any = sender.send
        return send(row.shop_id, row.external_id, row.message, kind=row.kind, details=row.body)  # type: ignore[no-any-return]  # checked above
    return sender.send(row.shop_id, row.external_id, row.message)


def carried_details(row: Claimed) -> dict[str, Any]:
    """What a fallback row keeps of the failed one besides the message: the reminder it is (id,
    kind) and the notice's facts, so it is still a service notice on the channel it goes to."""
    message_keys = set(row.message.to_json())
    return {k: v for k, v in row.body.items() if k not in message_keys and k not in ("tried", "fallback_of")}


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
        self._lanes: set[asyncio.Task[int]] = set()
        self._claiming = asyncio.Lock()  # this process's claims one at a time (they serialise anyway)
        self.unsettled: set[int] = set()  # sent by this process, not settled yet: they hold no chat up

    # ------------------------------------------------------------------ the loop

    def wake(self) -> None:
        """New rows are due: the loop runs at once (safe to call from any task of the loop)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self.run(), name="delivery")

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the batches in hand (bounded by ``grace``), then stop."""
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
        try:
            while not self._stopping:
                self._wake.clear()
                # Woken, or a second passed (retries due; rows of a chat whose earlier message a
                # slow batch has sent but not settled): a lane at once, even beside busy ones.
                self.spawn_lane()
                if loop.time() - last_probe >= PROBE_SECONDS:
                    last_probe = loop.time()
                    try:
                        await self.probe()
                    except Exception:
                        log.exception("delivery loop: probing a channel failed; retrying shortly")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_SECONDS)
        finally:
            lanes = list(self._lanes)
            try:
                await asyncio.gather(*lanes, return_exceptions=True)  # they settle what they sent
            finally:
                for lane in lanes:
                    lane.cancel()

    def spawn_lane(self) -> None:
        """Another lane, unless ``LANES`` are running already (or the loop is stopping)."""
        if len(self._lanes) >= LANES or self._stopping:
            return
        lane = asyncio.get_running_loop().create_task(self.lane(), name="delivery-lane")
        self._lanes.add(lane)
        lane.add_done_callback(self._lanes.discard)

    async def lane(self) -> int:
        """Claim, send and settle batches until nothing is due (or the loop stops); each batch's
        settlement commits together with the next claim. Returns how many rows it handled."""
        handled = 0
        batch: _Batch | None = None
        try:
            async with self._claiming:
                claimed = await claim_fair(
                    self.outbox, self.senders, limit=LANE_BATCH, per_shop=PER_SHOP, sent=self.unsettled
                )
                batch = _Batch(self, claimed)
            while claimed:
                if len(claimed) >= LANE_BATCH:
                    self.spawn_lane()  # a backlog: another batch in flight beside this one
                await batch.send_all()
                handled += len(claimed)
                async with self._claiming:
                    claimed = await settle_and_claim(
                        self.outbox,
                        batch.results,
                        batch.extra,
                        batch.recovered(),
                        self.senders,
                        limit=0 if self._stopping else LANE_BATCH,
                        per_shop=PER_SHOP,
                        sent=self.unsettled,
                    )
                    self._settled(batch)
                    batch = _Batch(self, claimed)
        except Exception:
            log.exception("delivery lane: a batch failed; its rows are sent again after their lease")
            if batch is not None:
                self.unsettled.difference_update(batch.ids)
        return handled

    # ------------------------------------------------------------------ one batch

    async def tick(self, limit: int = BATCH) -> int:
        """Claim, send and settle one batch (two commits); returns how many rows were handled."""
        async with self._claiming:
            claimed = await self.outbox.claim(self.senders, limit=limit)
            batch = _Batch(self, claimed)
        if not claimed:
            return 0
        await batch.send_all()
        await self.outbox.settle(batch.results, batch.extra, batch.recovered())
        self._settled(batch)
        return len(claimed)

    def _settled(self, batch: _Batch) -> None:
        self.unsettled.difference_update(batch.ids)
        if batch.recovered():
            self.wake()  # rows that waited out an outage of these channels are due now
        if self.metrics is not None:
            for row, result in batch.counted:
                self.metrics.delivery(row.shop_id, row.channel, result)

    async def probe(self) -> int:
        """Is an unreachable channel back? Its oldest waiting message is sent early (no attempt
        used up); when it goes through, the channel's other waiting messages are due at once, so
        replies arrive within seconds of the network's return, not at the end of their backoff."""
        probes = await self.outbox.claim_probes(self.senders)
        back = 0
        for row in probes:
            try:
                provider_id = await send_row(self.senders[row.channel], row)
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
                    "extra": {**carried_details(row), "tried": sorted(tried), "fallback_of": row.id},
                }
            ]
        return []


class _Batch:
    """One claimed batch: its rows grouped per chat, sent, and the outcome to settle in one commit."""

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
        by_chat: dict[Chat, list[Claimed]] = {}
        for row in claimed:  # one chat's messages in order, different chats at once
            by_chat.setdefault((row.channel, row.shop_id, row.external_id), []).append(row)
        self.groups = _interleaved(by_chat)

    def recovered(self) -> set[tuple[str, str]]:
        """(channel, shop) pairs that sent again after failures: their outage waits end now."""
        if not self.retried:
            return set()
        return {(row.channel, row.shop_id) for row, result in self.counted if result == "sent"}

    async def send_all(self) -> None:
        gate = asyncio.Semaphore(SENDS_AT_ONCE)  # FIFO: the interleaved order is the sending order
        await asyncio.gather(*(self._send_group(gate, rows) for _, rows in self.groups))

    async def _send_group(self, gate: asyncio.Semaphore, rows: list[Claimed]) -> None:
        async with gate:
            for index, row in enumerate(rows):
                if not await self.send(row):
                    blocker = self._outcome(row)
                    for later in rows[index + 1 :]:  # keep the chat's order: wait with it
                        self.defer(later, blocker)
                    return

    def _outcome(self, row: Claimed) -> Settlement:
        found = next((r for r in self.results if r.id == row.id), None)
        return found or Settlement(row.id, OutboxStatus.PENDING, error="taken over by another loop")

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
            provider_id = await send_row(sender, row)
        except DeliveryError as exc:
            await self._failed(row, exc)
            return False
        except Exception as exc:  # a bug in a channel must not stop delivery of everything else
            log.exception("delivery %s via %s crashed", row.id, row.channel)
            await self._failed(row, DeliveryError(f"{type(exc).__name__}: {exc}"))
            return False
        self.results.append(Settlement(row.id, OutboxStatus.SENT, provider_id=provider_id))
        self.d.unsettled.add(row.id)
        self.counted.append((row, "sent"))
        if row.attempts > 1:
            self.retried = True
        return True

    def defer(self, row: Claimed, blocker: Settlement) -> None:
        """An earlier message of the same chat was not sent: this one waits with it (same time)."""
        error = "waiting for an earlier message"
        if blocker.error and blocker.error.startswith(OUTAGE):
            error = OUTAGE + error  # due again with it when the network is back
        at = blocker.next_attempt_at if blocker.status == OutboxStatus.PENDING else None
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


def _interleaved(by_chat: dict[Chat, list[Claimed]]) -> list[tuple[Chat, list[Claimed]]]:
    """Chats in round-robin order of their (channel, shop), oldest first within each: the sends
    at once are spread over the shops' bots instead of queueing on one bot's rate limit."""
    per_bot: dict[tuple[str, str], list[tuple[Chat, list[Claimed]]]] = {}
    for chat, rows in by_chat.items():
        per_bot.setdefault(chat[:2], []).append((chat, rows))
    order: list[tuple[Chat, list[Claimed]]] = []
    queues = list(per_bot.values())
    for depth in range(max((len(q) for q in queues), default=0)):
        order.extend(q[depth] for q in queues if depth < len(q))
    return order
