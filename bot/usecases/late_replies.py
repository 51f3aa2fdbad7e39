"""Replies that missed a channel's inline window (WeChat's 5 seconds) are stored in the outbox,
then delivered like any other message (retries, fallback channel, staff flag)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from core.messages import OutgoingMessage
from core.models import Conversation
from core.outbox import enqueue

if TYPE_CHECKING:
    from bot.bootstrap import Services


async def push_late_replies(
    services: Services, channel: str, shop_id: str, external_id: str, replies: list[OutgoingMessage]
) -> None:
    """One transaction: the replies as outbox rows of the chat they answer."""
    async with services.db.transaction() as s:
        conversation_id = await s.scalar(
            select(Conversation.id).where(
                Conversation.shop_id == shop_id,
                Conversation.channel == channel,
                Conversation.external_id == external_id,
            )
        )
        for reply in replies:
            enqueue(
                s,
                shop_id=shop_id,
                channel=channel,
                external_id=external_id,
                conversation_id=conversation_id,
                message=reply,
                now=services.clock.now(),
            )
