"""What every channel adapter provides and uses.

Inbound: an adapter turns its network's update into ``core.messages.IncomingMessage`` and
hands it to a ``MessageHandler`` (the engine); the replies it gets back are rendered natively.
Durable path (``ctx.inbox`` set, as ``bot/bootstrap.py`` does): an adapter stores the message
with ``Inbox.accept`` BEFORE acknowledging it to the network; a worker hands it to the engine,
whose replies are written to the outbox in the turn's transaction.

Outbound (messages that are not an inline reply: staff replies, confirmations, reminders): the
delivery loop calls the channel's ``ChannelSender.send``. A send that fails raises
``DeliveryError``, saying whether retrying can help and how long the network asked us to wait
(``code_failure``: a network's error code through its table of permanent ones; ``not_configured``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from core.clock import Clock
from core.config import AppConfig
from core.db import Database
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


def code_failure(code: int | None, permanent: Mapping[int, str], transient: str) -> DeliveryError:
    """The ``DeliveryError`` for an error code a network answered: permanent with its reason when
    the code is in ``permanent`` (code -> reason: retrying cannot help), else transient saying
    ``transient``. The WeChat and WeCom senders classify their codes with it."""
    if code is not None and code in permanent:
        return DeliveryError(permanent[code], permanent=True)
    return DeliveryError(transient, permanent=False)


def not_configured(shop_id: str, account: str) -> DeliveryError:
    """The shop has no ``account`` (e.g. "WeChat account") to send with: permanent."""
    return DeliveryError(f"shop {shop_id} has no {account}", permanent=True)


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


class InboxBusy(Exception):
    """The inbox takes no new message now (the process is stopping, or overloaded): the channel
    must NOT acknowledge it, so the network redelivers it (to this or another process)."""


@dataclass(frozen=True)
class Answer:
    """A handled message's replies, already stored in the outbox (``outbox_ids``). A channel that
    answers inline (WeChat's passive reply, the widget's reply frame) reports back with
    ``Inbox.delivered`` or ``Inbox.undelivered``; otherwise the delivery loop sends them."""

    replies: list[OutgoingMessage]
    outbox_ids: list[int]


class Inbox(Protocol):
    """The durable inbox (bot/inbox.py): ``accept`` returns once the message is committed, so the
    channel may acknowledge it; a worker then handles it exactly once, even after a crash."""

    async def accept(self, msg: IncomingMessage, *, wait: bool = False) -> bool:
        """Store ``msg``; False when its id was stored before (a redelivery). ``wait``: the caller
        will ask for the ``result`` to answer inline. Raises ``InboxBusy`` when not taking work."""
        ...

    async def result(self, msg: IncomingMessage, within: float, *, replay: bool = False) -> Answer | None:
        """The answer to a message this process is handling, or None (not here, or too slow:
        then the outbox delivers the replies). ``replay``: a message handled before gets its
        stored replies (for a client that resends what it got no reply to)."""
        ...

    async def caught_up(self, shop_id: str, channel: str, external_id: str) -> None:
        """The customer was just shown the whole transcript (the widget's history): what was
        still waiting in the outbox for them counts as delivered."""
        ...

    async def delivered(self, answer: Answer) -> None:
        """The channel gave the replies to the customer inline: the outbox must not send them."""
        ...

    async def undelivered(self, answer: Answer) -> None:
        """The inline answer failed: the outbox sends the replies now."""
        ...


@dataclass
class ChannelContext:
    """What the server hands each channel module's ``register(app, ctx)``."""

    config: AppConfig
    engine: MessageHandler
    clock: Clock
    history: History | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    inbox: Inbox | None = None  # set by bootstrap: channels store messages before acknowledging them
    db: Database | None = None  # set by bootstrap: for channels with state of their own (WeCom's sync cursor)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run work after answering the request; the task is kept until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
