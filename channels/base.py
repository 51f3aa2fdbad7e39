"""What every channel adapter provides and uses.

Inbound: an adapter turns its network's update into ``core.messages.IncomingMessage`` and
hands it to a ``MessageHandler`` (the engine); the replies it gets back are rendered natively.
Outbound (messages that are not an inline reply: staff replies, confirmations, reminders): the
delivery loop calls the channel's ``ChannelSender.send``. A send that fails raises
``DeliveryError``, saying whether retrying can help and how long the network asked us to wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.clock import Clock
from core.config import AppConfig
from core.messages import IncomingMessage, OutgoingMessage


class MessageHandler(Protocol):
    async def handle(self, msg: IncomingMessage, *, replay: bool = True) -> list[OutgoingMessage]:
        """Replies to ``msg``; a redelivery gets the stored reply (or [] with ``replay=False``)."""
        ...


class DeliveryError(Exception):
    """A message could not be delivered.

    ``permanent``: retrying will not help (blocked bot, unknown chat, window closed).
    ``retry_after``: seconds the network asked us to wait (HTTP 429), if it said.
    """

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class ChannelSender(Protocol):
    """Sends one message to one customer on one network; returns the provider's message id."""

    channel: str

    async def send(self, shop_id: str, external_id: str, message: OutgoingMessage) -> str | None: ...


@dataclass(frozen=True)
class TranscriptLine:
    """One earlier message of a conversation, for channels that show history (the widget)."""

    direction: str  # "in" | "out"
    text: str
    message: OutgoingMessage | None  # outgoing messages keep their buttons
    at: datetime


History = Callable[[str, str, str], Awaitable[list[TranscriptLine]]]  # (shop, channel, external id)


@dataclass
class ChannelContext:
    """What the server hands each channel module's ``register(app, ctx)``."""

    config: AppConfig
    engine: MessageHandler
    clock: Clock
    history: History | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work after answering the request; the task is kept until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
