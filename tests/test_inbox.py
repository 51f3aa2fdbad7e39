"""The durable inbox in-process: group commit, redelivery, order per conversation, take-over of a
dead worker's rows (by pid on this host, by heartbeat elsewhere), and a stop that leaves the rest."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.bootstrap import Services
from bot.inbox import HOST, message_to_json, wall_now
from channels.base import InboxBusy
from core.messages import IncomingMessage
from core.models import Conversation, InboundMessage, TranscriptEntry, Worker


def msg(i: int, user: str = "u1", text: str = "营业时间是几点？") -> IncomingMessage:
    return IncomingMessage(shop_id="pawspa", channel="test", user_id=user, message_id=f"t:{i}", text=text)


async def rows(services: Services) -> list[InboundMessage]:
    async with services.db.reading() as s:
        return list(await s.scalars(select(InboundMessage).order_by(InboundMessage.id)))


async def settled(services: Services, count: int) -> None:
    for _ in range(500):
        done = [r for r in await rows(services) if r.done]
        if len(done) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the inbox did not finish in time")


async def test_concurrent_accepts_are_stored_once_and_each_chat_is_answered_in_order(services: Services) -> None:
    inbox = services.inbox
    first = await asyncio.gather(*(inbox.accept(msg(i, user=f"u{i % 3}")) for i in range(12)))
    again = await asyncio.gather(*(inbox.accept(msg(i, user=f"u{i % 3}")) for i in range(12)))  # redelivered
    assert all(first) and not any(again)
    await settled(services, 12)
    assert len(await rows(services)) == 12
    async with services.db.reading() as s:
        entries = list(await s.execute(select(TranscriptEntry.conversation_id, TranscriptEntry.direction)))
    for conv in {c for c, _ in entries}:  # one chat: each message followed by its replies
        directions = [d for c, d in entries if c == conv]
        collapsed = [d for i, d in enumerate(directions) if i == 0 or d != directions[i - 1]]
        assert collapsed == ["in", "out"] * 4


async def test_rows_of_a_dead_worker_and_unclaimed_rows_are_taken_over_at_start(services: Services) -> None:
    now = wall_now()
    customer = await services.customers.identify("pawspa", "test", "c0", display_name="", language="zh")
    conv = await services.store.open("pawspa", "test", "c0", customer_id=customer.id, language="zh")
    async with services.db.transaction() as s:  # it died in the middle of this chat's turn: lease held for long
        row = await s.get(Conversation, conv.id)
        assert row is not None
        row.lock_owner, row.locked_until = "crashed", services.clock.now() + timedelta(hours=1)
    async with services.db.transaction() as s:
        s.add(Worker(id="crashed", host=HOST, pid=2**22 + 7, started_at=now, heartbeat_at=now))  # no such pid
        s.add(Worker(id="far-alive", host="elsewhere", pid=1, started_at=now, heartbeat_at=now))
        s.add(Worker(id="far-dead", host="elsewhere", pid=1, started_at=now, heartbeat_at=now - timedelta(minutes=1)))
        for i, owner in enumerate(["crashed", None, "far-alive", "far-dead"]):
            m = msg(100 + i, user=f"c{i}")
            s.add(
                InboundMessage(
                    shop_id=m.shop_id,
                    channel=m.channel,
                    message_id=m.message_id,
                    received_at=services.clock.now(),
                    done=False,
                    conv_key=f"pawspa|test|c{i}",
                    message=message_to_json(m),
                    claimed_by=owner,
                    attempts=0,
                )
            )
    await services.inbox.start()
    await settled(services, 3)
    await asyncio.sleep(0.2)
    state = {r.message_id: (r.done, r.claimed_by) for r in await rows(services)}
    assert state["t:100"][0] and state["t:101"][0] and state["t:103"][0]  # dead by pid, unclaimed, by heartbeat
    assert state["t:102"] == (False, "far-alive")  # a live worker elsewhere keeps its row
    async with services.db.reading() as s:
        assert set(await s.scalars(select(Worker.id))) == {"far-alive", services.workers.id}


async def test_stop_refuses_new_messages_and_leaves_unstarted_rows_for_the_next_process(services: Services) -> None:
    inbox = services.inbox
    gate = asyncio.Event()
    real = services.engine.process

    async def slow(m: IncomingMessage, **kw: Any) -> Any:
        await gate.wait()
        return await real(m, **kw)

    services.inbox.engine = type("Slow", (), {"process": staticmethod(slow)})()
    for i in range(3):
        assert await inbox.accept(msg(200 + i, user="same"))  # one chat: handled one after another
    stopping = asyncio.create_task(inbox.stop(grace=5.0))
    await asyncio.sleep(0.05)
    gate.set()  # the one in hand finishes
    await stopping
    state = {r.message_id: (r.done, r.claimed_by) for r in await rows(services)}
    assert state["t:200"][0]  # finished within the grace period
    assert state["t:201"] == (False, None) and state["t:202"] == (False, None)  # released, not lost
    with pytest.raises(InboxBusy):  # the channel answers 503: the network redelivers elsewhere
        await inbox.accept(msg(300))


async def test_an_older_released_message_of_the_chat_is_handled_before_a_newer_one(services: Services) -> None:
    await services.inbox.start()  # its first sweep has run: nothing to take yet
    older = msg(600, user="o1", text="你好")
    async with services.db.transaction() as s:  # left unclaimed by a process that stopped (SIGTERM)
        s.add(
            InboundMessage(
                shop_id=older.shop_id,
                channel=older.channel,
                message_id=older.message_id,
                received_at=services.clock.now(),
                done=False,
                conv_key="pawspa|test|o1",
                message=message_to_json(older),
                claimed_by=None,
                attempts=0,
            )
        )
    assert await services.inbox.accept(msg(601, user="o1", text="营业时间是几点？"))  # before the next sweep
    await settled(services, 2)
    async with services.db.reading() as s:
        said = list(await s.scalars(select(TranscriptEntry.text).where(TranscriptEntry.direction == "in")))
    assert said == ["你好", "营业时间是几点？"]  # in the order the customer sent them
