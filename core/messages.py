"""The messages every channel speaks: one frozen inbound type, one outbound type.

Channels turn their network's update into an IncomingMessage (the raw payload is kept aside
in ``raw`` and never parsed downstream) and render an OutgoingMessage natively. Buttons carry
short payloads (Telegram allows 64 bytes of callback data) and fall back to numbered text on
channels without buttons; typing the number presses the button.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

MAX_PAYLOAD_BYTES = 64
MessageKind = Literal["text", "button", "image", "sticker", "event"]


@dataclass(frozen=True)
class Button:
    label: str
    payload: str

    def __post_init__(self) -> None:
        if len(self.payload.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"button payload over {MAX_PAYLOAD_BYTES} bytes: {self.payload!r}")


@dataclass(frozen=True)
class IncomingMessage:
    """One message from a customer, whatever the network."""

    shop_id: str
    channel: str  # "telegram" | "wechat" | "web" | "terminal" | ...
    user_id: str  # the customer's id on that channel (chat id, openid, widget session)
    message_id: str  # unique per channel: redeliveries carry the same id
    text: str = ""
    payload: str | None = None  # set when a button was pressed
    kind: MessageKind = "text"
    language_hint: str | None = None  # e.g. Telegram's language_code
    display_name: str = ""
    received_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class OutgoingMessage:
    """One reply: text, optional quick-reply buttons, an optional image and link."""

    text: str
    buttons: tuple[Button, ...] = ()
    image_url: str | None = None
    link: tuple[str, str] | None = None  # (label, url)

    def numbered_text(self) -> str:
        """Plain-text rendering for channels without buttons: options become numbered lines."""
        lines = [self.text]
        if self.link:
            lines.append(f"{self.link[0]}: {self.link[1]}")
        lines.extend(f"{i}. {b.label}" for i, b in enumerate(self.buttons, start=1))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"text": self.text}
        if self.buttons:
            body["buttons"] = [{"label": b.label, "payload": b.payload} for b in self.buttons]
        if self.image_url:
            body["image_url"] = self.image_url
        if self.link:
            body["link"] = list(self.link)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> OutgoingMessage:
        link = body.get("link")
        return cls(
            text=str(body.get("text", "")),
            buttons=tuple(Button(b["label"], b["payload"]) for b in body.get("buttons", ())),
            image_url=body.get("image_url"),
            link=(link[0], link[1]) if link else None,
        )
