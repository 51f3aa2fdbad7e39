"""A real channel for tests and benchmarks (test support, not shipped): feeds the engine and
collects every reply.

    chat = CollectingChannel(engine, "pawspa", user="alice")
    await chat.push("洗澡")
    assert "哪天" in chat.text
    await chat.press("明天")     # presses the button whose label contains "明天"

Each push gets a fresh message id (``redeliver`` resends the last one with the same id).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from channels.base import MessageHandler
from core.messages import Button, IncomingMessage, MessageKind, OutgoingMessage

_ids = itertools.count(1)


@dataclass
class CollectingChannel:
    engine: MessageHandler
    shop_id: str
    user: str = "tester"
    channel: str = "test"
    language_hint: str | None = None
    display_name: str = ""
    replies: list[OutgoingMessage] = field(default_factory=list)
    last_sent: IncomingMessage | None = None

    async def push(
        self, text: str = "", *, payload: str | None = None, kind: MessageKind = "text"
    ) -> list[OutgoingMessage]:
        msg = IncomingMessage(
            shop_id=self.shop_id,
            channel=self.channel,
            user_id=self.user,
            message_id=f"m{next(_ids)}",
            text=text,
            payload=payload,
            kind="button" if payload else kind,
            language_hint=self.language_hint,
            display_name=self.display_name,
        )
        return await self.send(msg)

    async def send(self, msg: IncomingMessage) -> list[OutgoingMessage]:
        self.last_sent = msg
        self.replies = await self.engine.handle(msg)
        return self.replies

    async def redeliver(self) -> list[OutgoingMessage]:
        assert self.last_sent is not None
        return await self.engine.handle(self.last_sent)

    async def press(self, label_part: str) -> list[OutgoingMessage]:
        """Press the first button (of the latest replies) whose label contains ``label_part``."""
        button = self.button(label_part)
        return await self.push(button.label, payload=button.payload)

    def button(self, label_part: str) -> Button:
        for reply in reversed(self.replies):
            for button in reply.buttons:
                if label_part in button.label:
                    return button
        raise AssertionError(f"no button with {label_part!r} in {self.labels}")

    @property
    def text(self) -> str:
        """All reply texts of the last turn, joined."""
        return "\n".join(r.text for r in self.replies)

    @property
    def labels(self) -> list[str]:
        return [b.label for r in self.replies for b in r.buttons]
