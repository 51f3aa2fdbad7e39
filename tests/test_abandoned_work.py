"""Work another process left behind (bot/engine/store.py), without the durable inbox's sweep:

- a conversation lease is respected while it is valid and taken over once it has expired; the
  waiting turn then runs exactly once and gives the lease back;
- a claimed inbound message with no reply is processed again once the claim is abandoned, and a
  redelivery that arrives while the first attempt still runs gets that attempt's reply.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.bootstrap import Services
from bot.engine.store import ABANDONED, LEASE
from core.clock import FixedClock
from core.i18n import texts
from core.messages import IncomingMessage, OutgoingMessage
from core.models import Conversation, InboundMessage, TranscriptEntry
from tests.support.collecting import CollectingChannel

USER = "lease-user"


async def _conversation(services: Services) -> Conversation:
    async with services.db.reading() as s:
        row = await s.scalar(
            select(Conversation).where(Conversation.shop_id == "pawspa", Conversation.external_id == USER)
        )
        assert row is not None
        return row


async def test_an_abandoned_lease_is_waited_for_then_taken_over_when_it_expires(
    services: Services, clock: FixedClock
) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user=USER)
    await chat.push("你好")
    conv = await _conversation(services)
    async with services.db.transaction() as s:  # another process took the chat and died mid-turn
        row = await s.get(Conversation, conv.id)
        assert row is not None
        row.lock_owner, row.locked_until = "vanished-process", clock.now() + LEASE

    turn = asyncio.create_task(chat.push("我的预约"))
    await asyncio.sleep(0.3)  # the store polls every 20 ms: many tries, all refused by the live lease
    assert not turn.done()

    clock.advance(LEASE + timedelta(seconds=1))
    await asyncio.wait_for(turn, timeout=15)
    assert chat.text == texts("zh").t("manage.none")

    after = await _conversation(services)
    assert (after.lock_owner, after.locked_until) == (None, None)  # given back at the end of the turn
    async with services.db.reading() as s:
        inbound = await s.scalar(
            select(func.count())
            .select_from(TranscriptEntry)
            .where(TranscriptEntry.conversation_id == conv.id, TranscriptEntry.direction == "in")
        )
    assert inbound == 2  # "你好" and "我的预约", each once


async def test_a_lease_of_this_process_is_not_waited_for(services: Services, clock: FixedClock) -> None:
    chat = CollectingChannel(services.engine, "pawspa", user=USER)
    await chat.push("你好")
    conv = await _conversation(services)
    async with services.db.transaction() as s:  # e.g. left by a turn of ours that was cancelled
        row = await s.get(Conversation, conv.id)
        assert row is not None
        row.lock_owner, row.locked_until = services.store.owner, clock.now() + LEASE

    await asyncio.wait_for(chat.push("我的预约"), timeout=15)
    assert chat.text == texts("zh").t("manage.none")


def _message(message_id: str, text: str) -> IncomingMessage:
    return IncomingMessage(shop_id="pawspa", channel="test", user_id=USER, message_id=message_id, text=text)


async def _claimed_elsewhere(services: Services, message_id: str, *, age: timedelta) -> None:
    """Another process claimed this message ``age`` ago and has not answered (yet)."""
    async with services.db.transaction() as s:
        s.add(
            InboundMessage(
                shop_id="pawspa", channel="test", message_id=message_id, received_at=services.clock.now() - age
            )
        )


async def test_an_abandoned_claim_is_processed_again(services: Services) -> None:
    await _claimed_elsewhere(services, "tg-abandoned", age=ABANDONED + timedelta(seconds=1))
    replies = await asyncio.wait_for(services.engine.handle(_message("tg-abandoned", "我的预约")), timeout=15)
    assert [r.text for r in replies] == [texts("zh").t("manage.none")]
    again = await services.engine.handle(_message("tg-abandoned", "我的预约"))  # now done: the stored reply
    assert again == replies


async def test_a_redelivery_during_the_first_attempt_gets_its_reply(services: Services) -> None:
    await _claimed_elsewhere(services, "tg-running", age=timedelta(seconds=1))
    redelivery = asyncio.create_task(services.engine.handle(_message("tg-running", "我的预约")))
    await asyncio.sleep(0.3)
    assert not redelivery.done()  # neither processed a second time nor answered empty
    first_attempt = [OutgoingMessage("the first attempt's answer")]
    async with services.db.transaction() as s:
        row = await s.scalar(select(InboundMessage).where(InboundMessage.message_id == "tg-running"))
        assert row is not None
        row.done, row.reply = True, [m.to_json() for m in first_attempt]
    assert await asyncio.wait_for(redelivery, timeout=15) == first_attempt
