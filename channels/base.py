"""What every channel adapter provides and uses.

Inbound: an adapter turns its network's update into ``core.messages.IncomingMessage`` and
hands it to a ``MessageHandler`` (the engine); the replies it gets back are rendered natively.
Outbound (messages that are not an inline reply: staff replies, confirmations, reminders): the
delivery loop calls the channel's ``ChannelSender.send``. A send that fails raises
``DeliveryError``, saying whether retrying can help and how long the network asked us to wait.
"""

from __future__ import annotations

from typing import Protocol

from core.messages import IncomingMessage, OutgoingMessage


class MessageHandler(Protocol):
    async def handle(self, msg: IncomingMessage) -> list[OutgoingMessage]: ...


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
