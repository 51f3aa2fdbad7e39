"""The durable inbox: nothing a channel acknowledged is lost, and each message is handled once.

    channel receives -> Inbox.accept (row committed, dedupe key unique) -> channel acknowledges
    -> a worker hands the row to Engine.process (per conversation, in order)
    -> ONE transaction: state, transcript, outbox rows, inbox row done -> delivery loop woken

Rows live in ``inbound_messages`` (the engine's dedupe table): the serialised IncomingMessage
with the raw payload, its key (``tg:<update_id>``, ``wx:<MsgId>`` or ``wx:<openid>:<CreateTime>``,
``web:<session>:<client id>``), ``claimed_by`` (the worker holding it) and ``done``.

Accepting: concurrent ``accept`` calls are committed together (a small group-commit queue: while
one commit runs, the next requests gather and go in the next one), with INSERT ... ON CONFLICT
DO NOTHING, so a redelivered message is one that inserts nothing. A row is inserted already
claimed by this process and handed to its local worker at once: no polling on the hot path.
Inline answers (WeChat's passive reply, the widget's frame) are marked sent in the same group
commits, not one transaction each.

Workers: every process that takes rows has a row in ``workers`` with a heartbeat (each second).
A worker is dead when its heartbeat is older than ``DEAD_AFTER``, or at once when it ran on this
host and its pid is gone (kill -9, a crash). Every second, and at start-up, each process takes
over the inbox and outbox rows and the conversation leases of dead workers and any unclaimed inbox rows (FOR UPDATE SKIP
LOCKED on PostgreSQL; SQLite's single writer serialises). A conversation's rows are handled one
after another in id order; a row whose conversation still has an older row held by another live
worker waits for it.

Stopping (SIGTERM): ``accept`` refuses new messages (``InboxBusy``: the channel answers 503 and
the network redelivers elsewhere), the rows in hand are finished within ``grace`` seconds, the
rest are released (unclaimed) for the next process, and the worker row is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from channels.base import Answer, InboxBusy
from core.db import Database, Prepared
from core.messages import IncomingMessage, OutgoingMessage
from core.models import Conversation, InboundMessage, Worker
from core.outbox import Outbox

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 1.0
DEAD_AFTER = timedelta(seconds=10)  # a worker on another host with no heartbeat this long is dead
SWEEP_SECONDS = 1.0
GRACE_SECONDS = 10.0
HOLD = timedelta(seconds=6)  # replies a channel may answer inline are not sent by the outbox before this
GROUP_MAX = 500  # accepts committed together at most
MAX_ATTEMPTS = 5  # a row whose handling fails this often is given up (logged), not retried forever
TAKE_BATCH = 200
ORDER_WAIT_SECONDS = 30.0
HOST = socket.gethostname()[:200]


def wall_now() -> datetime:
    """Liveness is measured on the real clock (the engine's clock may be fixed in tests)."""
    return datetime.now(UTC)


# ----------------------------------------------------------------------------- serialisation


def message_to_json(msg: IncomingMessage) -> dict[str, Any]:
    return {
        "shop_id": msg.shop_id,
        "channel": msg.channel,
        "user_id": msg.user_id,
        "message_id": msg.message_id,
        "text": msg.text,
        "payload": msg.payload,
        "kind": msg.kind,
        "language_hint": msg.language_hint,
        "display_name": msg.display_name,
        "received_at": msg.received_at.isoformat() if msg.received_at else None,
        "raw": dict(msg.raw),
    }


def message_from_json(body: dict[str, Any]) -> IncomingMessage:
    received = body.get("received_at")
    return IncomingMessage(
        shop_id=body["shop_id"],
        channel=body["channel"],
        user_id=body["user_id"],
        message_id=body["message_id"],
        text=body.get("text") or "",
        payload=body.get("payload"),
        kind=body.get("kind") or "text",
        language_hint=body.get("language_hint"),
        display_name=body.get("display_name") or "",
        received_at=datetime.fromisoformat(received) if received else None,
        raw=body.get("raw") or {},
    )


def conversation_key(msg: IncomingMessage) -> str:
    return f"{msg.shop_id}|{msg.channel}|{msg.user_id}"[:200]


# ----------------------------------------------------------------------------- workers


class Workers:
    """This process's worker row (heartbeat) and who among the others is dead."""

    def __init__(self, db: Database, *, worker_id: str | None = None, dead_after: timedelta = DEAD_AFTER) -> None:
        self.db = db
        self.id = worker_id or uuid.uuid4().hex
        self.dead_after = dead_after
        self.registered = False

    async def register(self) -> None:
        now = wall_now()
        async with self.db.transaction() as s:
            s.add(Worker(id=self.id, host=HOST, pid=os.getpid(), started_at=now, heartbeat_at=now))
        self.registered = True

    async def beat(self) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(Worker)
                .where(Worker.id == self.id)
                .values(heartbeat_at=wall_now())
                .execution_options(synchronize_session=False)
            )

    async def dead(self) -> list[str]:
        """Workers whose rows may be taken over now."""
        async with self.db.reading() as s:
            rows = list(await s.execute(select(Worker.id, Worker.host, Worker.pid, Worker.heartbeat_at)))
        stale = wall_now() - self.dead_after
        return [
            worker_id
            for worker_id, host, pid, beat in rows
            if worker_id != self.id and (beat < stale or (host == HOST and not _pid_alive(pid)))
        ]

    async def forget(self, ids: list[str]) -> None:
        async with self.db.transaction() as s:
            await s.execute(delete(Worker).where(Worker.id.in_(ids)))

    async def retire(self) -> None:
        if self.registered:
            await self.forget([self.id])
            self.registered = False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# ----------------------------------------------------------------------------- the inbox


class Processor(Protocol):
    async def process(
        self, msg: IncomingMessage, *, hold: timedelta | None = None
    ) -> tuple[list[OutgoingMessage], list[int]]: ...


class InboxMetrics(Protocol):
    def turn(self, shop_id: str, channel: str, seconds: float) -> None: ...


@dataclass
class _Item:
    row_id: int
    msg: IncomingMessage
    first: bool = False  # known to have no older unfinished row of its chat (checked as stored)


@dataclass
class _Waiter:
    future: asyncio.Future[Answer]
    abandoned: bool = False


@dataclass
class _Accept:
    msg: IncomingMessage
    future: asyncio.Future[tuple[int, bool] | None] = field(repr=False)  # (row id, first of its chat)


@dataclass
class _Delivered:
    """Outbox rows a channel answered inline, to be marked sent with the next group commit."""

    outbox_ids: list[int]
    future: asyncio.Future[tuple[int, bool] | None] = field(repr=False)


class Inbox:
    """Accepts messages durably and runs them through the engine (``channels.base.Inbox``)."""

    def __init__(
        self,
        db: Database,
        engine: Processor,
        outbox: Outbox,
        workers: Workers,
        *,
        wake_delivery: Callable[[], None] | None = None,
        metrics: InboxMetrics | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.outbox = outbox
        self.workers = workers
        self.wake_delivery = wake_delivery
        self.metrics = metrics
        self._queue: asyncio.Queue[_Accept | _Delivered] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._chains: dict[str, deque[_Item]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._waiters: dict[tuple[str, str, str], _Waiter] = {}
        self._holding: set[int] = set()  # row ids handed to a chain and not finished
        self._stopping = False
        self._committing = False
        self._start_lock = asyncio.Lock()
        self.started = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Register this worker, take over what dead workers left, then keep sweeping."""
        async with self._start_lock:
            if self.started:
                return
            self._stopping = False
            if not self.workers.registered:
                await self.workers.register()
            self._queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self._committer = loop.create_task(self._commit_loop(), name="inbox-commit")
            self.started = True
            await self.outbox.retry_outages_now()
            await self.sweep()
            self._sweeper = loop.create_task(self._sweep_loop(), name="inbox-sweep")

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop taking work, finish what is in hand within ``grace``, leave the rest for others."""
        if not self.started:
            return
        self._stopping = True
        for chain in self._chains.values():  # rows not yet started go back to the inbox
            while len(chain) > 1:
                chain.pop()
        running = set(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await self._flush()
        for background in (self._sweeper, self._committer):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
        self._sweeper = self._committer = None
        await self._release_mine()
        await self.workers.retire()
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.cancel()
        self._waiters.clear()
        self.started = False

    async def _flush(self, within: float = 2.0) -> None:
        """Let the group commit store what is queued (inline answers marked sent) before stopping."""
        deadline = asyncio.get_running_loop().time() + within
        while (self._queue is not None and not self._queue.empty()) or self._committing:
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.01)

    async def _release_mine(self) -> None:
        async with self.db.transaction() as s:
            await s.execute(
                update(InboundMessage)
                .where(InboundMessage.claimed_by == self.workers.id, InboundMessage.done.is_(False))
                .values(claimed_by=None)
                .execution_options(synchronize_session=False)
            )

    # ------------------------------------------------------------------ accepting

    async def accept(self, msg: IncomingMessage, *, wait: bool = False) -> bool:
        if self._stopping:
            raise InboxBusy("stopping")
        if not self.started:
            await self.start()
        assert self._queue is not None
        key = _key(msg)
        if wait and key not in self._waiters:
            self._waiters[key] = _Waiter(asyncio.get_running_loop().create_future())
        future: asyncio.Future[tuple[int, bool] | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Accept(msg, future))
        try:
            stored = await future
        except BaseException:
            self._drop_waiter(key)
            raise
        if stored is None:  # stored before: a redelivery
            waiter = self._waiters.get(key)
            if waiter is not None and not waiter.future.done() and key not in self._in_flight_keys():
                self._drop_waiter(key)
            return False
        self._dispatch(_Item(stored[0], msg, first=stored[1]))
        return True

    def _in_flight_keys(self) -> set[tuple[str, str, str]]:
        return {_key(item.msg) for chain in self._chains.values() for item in chain}

    async def _commit_loop(self) -> None:
        assert self._queue is not None
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < GROUP_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[_Accept | _Delivered]) -> None:
        """ONE commit for what gathered while the last one ran: new messages (their ids back to
        the channels waiting to acknowledge them) and inline answers marked sent."""
        accepts = [a for a in batch if isinstance(a, _Accept)]
        sent = [i for d in batch if isinstance(d, _Delivered) for i in d.outbox_ids]
        self._committing = True
        try:
            async with self.db.unit_of_work():
                ids = await self._insert([a.msg for a in accepts]) if accepts else {}
                if sent:
                    await self.outbox.delivered_inline(sent, provider_id="inline")
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("inbox: storing %d message(s) failed", len(batch))
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(InboxBusy(f"could not store the message: {type(exc).__name__}"))
            if isinstance(exc, Exception):
                return
            raise
        finally:
            self._committing = False
        for item in batch:
            if not item.future.done():
                item.future.set_result(ids.get(_key(item.msg)) if isinstance(item, _Accept) else None)

    async def _insert(self, msgs: list[IncomingMessage]) -> dict[tuple[str, str, str], tuple[int, bool]]:
        """In the group commit: the batch's new rows (a redelivery inserts nothing), each with
        its id and whether it is the oldest unfinished message of its chat (then the worker need
        not look for older ones before handling it: the common case, no extra read per message)."""
        seen: set[tuple[str, str, str]] = set()
        values = []
        for msg in msgs:
            key = _key(msg)
            if key in seen:
                continue  # the same message twice in one batch: the second is a redelivery
            seen.add(key)
            values.append(
                {
                    "shop_id": msg.shop_id,
                    "channel": msg.channel,
                    "message_id": msg.message_id,
                    "received_at": msg.received_at or _now_for(self.outbox),
                    "done": False,
                    "conv_key": conversation_key(msg),
                    "message": message_to_json(msg),
                    "claimed_by": self.workers.id,
                    "attempts": 0,
                }
            )
        dialect_insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        table = cast(Table, InboundMessage.__table__)
        statement = (
            dialect_insert(table)
            .values(values)
            .on_conflict_do_nothing(index_elements=["shop_id", "channel", "message_id"])
            .returning(table.c.id, table.c.shop_id, table.c.channel, table.c.message_id, table.c.conv_key)
        )
        async with self.db.unit_of_work() as uow:
            if uow.raw is not None:  # SQLite: one prepared statement per row is cheaper than a varying one
                rows = [r for value in values for r in await uow.run(_STORE_ONE, value)]
                if not rows:
                    return {}
                oldest = {}
                for conv_key in {r.conv_key for r in rows}:
                    oldest[conv_key] = (await uow.run(_OLDEST_OF_CHAT, {"b_conv": conv_key}))[0][0]
                return _firsts(rows, oldest)
            rows = list(await uow.conn.execute(statement))
            if not rows:
                return {}
            oldest = dict(
                (
                    await uow.conn.execute(
                        select(table.c.conv_key, func.min(table.c.id))
                        .where(
                            table.c.conv_key.in_({r.conv_key for r in rows}),
                            table.c.done.is_(False),
                            table.c.message.is_not(None),
                        )
                        .group_by(table.c.conv_key)
                    )
                ).all()
            )
        return _firsts(rows, oldest)

    # ------------------------------------------------------------------ answers for inline channels

    async def result(self, msg: IncomingMessage, within: float, *, replay: bool = False) -> Answer | None:
        key = _key(msg)
        waiter = self._waiters.get(key)
        if waiter is None:
            return await self._stored(msg) if replay else None
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), max(within, 0.0))
        except TimeoutError:
            waiter.abandoned = True  # the outbox sends the replies once they exist
            done = waiter.future
            if done.done() and not done.cancelled() and done.exception() is None:
                # the turn finished while the wait was being given up: nobody else will make its
                # held replies due, so do it here (else they would wait out the whole hold)
                await self.undelivered(done.result())
            return None
        except asyncio.CancelledError:
            if waiter.future.cancelled():  # the handling failed or the inbox stopped
                return None
            raise
        finally:
            if waiter.future.done() or waiter.abandoned:
                self._waiters.pop(key, None)

    async def _stored(self, msg: IncomingMessage) -> Answer | None:
        async with self.db.reading() as s:
            row = await s.scalar(
                select(InboundMessage).where(
                    InboundMessage.shop_id == msg.shop_id,
                    InboundMessage.channel == msg.channel,
                    InboundMessage.message_id == msg.message_id,
                )
            )
        if row is None or not row.done:
            return None
        return Answer([OutgoingMessage.from_json(m) for m in row.reply or []], [])

    async def caught_up(self, shop_id: str, channel: str, external_id: str) -> None:
        await self.outbox.caught_up(shop_id, channel, external_id)

    async def delivered(self, answer: Answer) -> None:
        """Marked sent with the next group commit (with the accepts gathering meanwhile)."""
        if not answer.outbox_ids:
            return
        if self._queue is None or self._committer is None:
            await self.outbox.delivered_inline(answer.outbox_ids, provider_id="inline")
            return
        future: asyncio.Future[tuple[int, bool] | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Delivered(list(answer.outbox_ids), future))
        try:
            await future
        except InboxBusy:  # not marked: the outbox sends them after the hold (one duplicate at worst)
            log.warning("inbox: %d inline answer(s) not marked sent", len(answer.outbox_ids))

    async def undelivered(self, answer: Answer) -> None:
        await self.outbox.due_now(answer.outbox_ids)
        if self.wake_delivery is not None:
            self.wake_delivery()

    def _drop_waiter(self, key: tuple[str, str, str]) -> None:
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.future.done():
            waiter.future.cancel()

    # ------------------------------------------------------------------ working

    def _dispatch(self, item: _Item) -> None:
        if item.row_id in self._holding:
            return
        self._holding.add(item.row_id)
        key = conversation_key(item.msg)
        chain = self._chains.get(key)
        if chain is None:
            chain = self._chains[key] = deque()
            self._running[key] = asyncio.get_running_loop().create_task(self._run_chain(key), name="inbox-chain")
        position = len(chain)  # in id order behind the one being handled (taken-over rows are older)
        while position > 1 and chain[position - 1].row_id > item.row_id:
            position -= 1
        chain.insert(position, item)

    async def _run_chain(self, key: str) -> None:
        chain = self._chains[key]
        try:
            while chain:
                item = chain[0]
                try:
                    await self._process(item)
                finally:
                    chain.popleft()
                    self._holding.discard(item.row_id)
                if self._stopping:
                    return
        finally:
            self._chains.pop(key, None)
            self._running.pop(key, None)

    async def _process(self, item: _Item) -> None:
        if not item.first:
            await self._older_first(item)
        await self._handle_one(item)

    async def _handle_one(self, item: _Item) -> None:
        msg = item.msg
        key = _key(msg)
        waiter = self._waiters.get(key)
        try:
            started = time.perf_counter()
            hold = HOLD if waiter is not None and not waiter.abandoned else None
            replies, outbox_ids = await self.engine.process(msg, hold=hold)
            if self.metrics is not None:
                self.metrics.turn(msg.shop_id, msg.channel, time.perf_counter() - started)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("inbox: handling %s/%s failed", msg.shop_id, msg.channel)
            await self._failed(item)
            if waiter is not None and not waiter.future.done():
                waiter.future.cancel()
            return
        answer = Answer(replies, outbox_ids)
        if waiter is not None and not waiter.future.done():
            if waiter.abandoned:
                self._waiters.pop(key, None)
                await self.undelivered(answer)
            else:
                waiter.future.set_result(answer)

    async def _older_first(self, item: _Item) -> None:
        """Per conversation in order, across processes and take-overs: older unfinished rows of
        the same chat go first. Unclaimed ones (released by a stopping process, or by a failure)
        and ours are handled here and now; one held by another live worker is waited for."""
        deadline = asyncio.get_running_loop().time() + ORDER_WAIT_SECONDS
        key = conversation_key(item.msg)
        while True:
            async with self.db.reading() as s:
                older = list(
                    await s.execute(
                        select(InboundMessage.id, InboundMessage.claimed_by, InboundMessage.message)
                        .where(
                            InboundMessage.conv_key == key,
                            InboundMessage.done.is_(False),
                            InboundMessage.id < item.row_id,
                            InboundMessage.message.is_not(None),
                        )
                        .order_by(InboundMessage.id)
                    )
                )
            if not older:
                return
            free = [row_id for row_id, owner, _ in older if owner is None]
            taken: set[int] = set()
            if free:  # claimed here and now (exactly those this UPDATE got: no one else handles them)
                async with self.db.transaction() as s:
                    taken = set(
                        await s.scalars(
                            update(InboundMessage)
                            .where(InboundMessage.id.in_(free), InboundMessage.claimed_by.is_(None))
                            .values(claimed_by=self.workers.id)
                            .returning(InboundMessage.id)
                            .execution_options(synchronize_session=False)
                        )
                    )
            blocked = False
            for row_id, _owner, body in older:
                chain = self._chains.get(key)
                queued = next((q for q in list(chain or ())[1:] if q.row_id == row_id), None)
                if row_id not in taken and queued is None:
                    blocked = True  # another live worker has it, or our own sweep is handing it over
                    break
                if queued is not None and chain is not None:
                    chain.remove(queued)  # queued behind us: handled now instead, not twice
                self._holding.add(row_id)
                try:
                    await self._handle_one(queued or _Item(row_id, message_from_json(body)))
                finally:
                    self._holding.discard(row_id)
            if not blocked:
                return
            if asyncio.get_running_loop().time() > deadline:
                log.warning("inbox: %s waited too long for an older message of its chat", item.msg.message_id)
                return
            await asyncio.sleep(0.05)

    async def _failed(self, item: _Item) -> None:
        """Released for another try (by the next sweep), or given up after MAX_ATTEMPTS."""
        async with self.db.transaction() as s:
            row = await s.get(InboundMessage, item.row_id)
            if row is None:
                return
            row.attempts = (row.attempts or 0) + 1
            if row.attempts >= MAX_ATTEMPTS:
                log.error("inbox: giving up on %s after %d attempts", row.message_id, row.attempts)
                row.done, row.done_at, row.claimed_by = True, self.outbox.clock.now(), None
            else:
                row.claimed_by = None

    # ------------------------------------------------------------------ sweeping

    async def _sweep_loop(self) -> None:
        last_beat = 0.0
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                    await self.workers.beat()
                    last_beat = time.monotonic()
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("inbox: sweep failed")

    async def sweep(self) -> int:
        """Take over the rows of dead workers and unclaimed rows; returns how many were taken."""
        dead = await self.workers.dead()
        if dead:
            async with self.db.transaction() as s:
                await s.execute(
                    update(InboundMessage)
                    .where(InboundMessage.claimed_by.in_(dead), InboundMessage.done.is_(False))
                    .values(claimed_by=None)
                    .execution_options(synchronize_session=False)
                )
                await s.execute(  # the conversations it was in the middle of: their leases too
                    update(Conversation)
                    .where(Conversation.lock_owner.in_(dead))
                    .values(lock_owner=None, locked_until=None)
                    .execution_options(synchronize_session=False)
                )
            released = await self.outbox.release_dead(dead)
            await self.workers.forget(dead)
            log.warning("took over the work of %d stopped server process(es)", len(dead))
            if released and self.wake_delivery is not None:
                self.wake_delivery()
        if self._stopping:
            return 0
        taken = await self._take_unclaimed()
        for item in taken:
            self._dispatch(item)
        return len(taken)

    async def _take_unclaimed(self) -> list[_Item]:
        async with self.db.reading() as s:  # cheap check first: most sweeps find nothing
            any_row = await s.scalar(
                select(InboundMessage.id)
                .where(
                    InboundMessage.done.is_(False),
                    InboundMessage.claimed_by.is_(None),
                    InboundMessage.message.is_not(None),
                )
                .limit(1)
            )
        if any_row is None:
            return []
        async with self.db.transaction() as s:
            query = (
                select(InboundMessage.id, InboundMessage.message)
                .where(
                    and_(
                        InboundMessage.done.is_(False),
                        InboundMessage.claimed_by.is_(None),
                        InboundMessage.message.is_not(None),
                    )
                )
                .order_by(InboundMessage.id)
                .limit(TAKE_BATCH)
            )
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(await s.execute(query))
            if not rows:
                return []
            await s.execute(
                update(InboundMessage)
                .where(InboundMessage.id.in_([r[0] for r in rows]))
                .values(claimed_by=self.workers.id)
                .execution_options(synchronize_session=False)
            )
        return [_Item(row_id, message_from_json(body)) for row_id, body in rows]

    # ------------------------------------------------------------------ figures

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def in_hand(self) -> int:
        return len(self._holding)


def _firsts(rows: list[Any], oldest: dict[str, int]) -> dict[tuple[str, str, str], tuple[int, bool]]:
    """Each stored row's id, and whether it is the oldest unfinished one of its chat."""
    ours: dict[str, int] = {}
    for r in rows:
        ours[r.conv_key] = min(ours.get(r.conv_key, r.id), r.id)
    return {(r.shop_id, r.channel, r.message_id): (r.id, oldest.get(r.conv_key) == ours[r.conv_key]) for r in rows}


_INBOUND = cast(Table, InboundMessage.__table__)
_INBOUND_COLUMNS = (
    "shop_id",
    "channel",
    "message_id",
    "received_at",
    "done",
    "conv_key",
    "message",
    "claimed_by",
    "attempts",
)
# SQLite's accept path, prepared once (core/db.py): one new row, and the oldest unfinished row of a chat.
_STORE_ONE = Prepared(
    sqlite.insert(_INBOUND)
    .values({name: bindparam(name) for name in _INBOUND_COLUMNS})
    .on_conflict_do_nothing(index_elements=["shop_id", "channel", "message_id"])
    .returning(_INBOUND.c.id, _INBOUND.c.shop_id, _INBOUND.c.channel, _INBOUND.c.message_id, _INBOUND.c.conv_key)
)
_OLDEST_OF_CHAT = Prepared(
    select(func.min(_INBOUND.c.id)).where(
        _INBOUND.c.conv_key == bindparam("b_conv"),
        _INBOUND.c.done.is_(False),
        _INBOUND.c.message.is_not(None),
    )
)


def _key(msg: IncomingMessage) -> tuple[str, str, str]:
    return (msg.shop_id, msg.channel, msg.message_id)


def _now_for(outbox: Outbox) -> datetime:
    return outbox.clock.now()
