"""`chatbook chat`: talk to the engine in a terminal, no tokens needed.

Buttons are shown numbered; typing the number presses the button (the engine understands
numbers for every channel). Messages staff send with `chatbook handoff reply` arrive here too:
the chat polls its outbox rows while it waits for input.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TextIO

from channels.base import MessageHandler
from core.messages import IncomingMessage, OutgoingMessage

CHANNEL = "terminal"
POLL_SECONDS = 1.0


class QueuedMessage(Protocol):
    """A queued outbox row as the terminal reads it (read-only, so an ORM row satisfies it)."""

    @property
    def id(self) -> int: ...

    @property
    def body(self) -> Mapping[str, Any]: ...


class Outbox(Protocol):
    """Where staff messages for this chat wait (bot's ConversationStore provides it)."""

    async def pending_outbox(
        self, shop_id: str, channel: str, external_id: str | None = None
    ) -> Sequence[QueuedMessage]: ...

    async def mark_sent(self, outbox_id: int, provider_id: str | None = None) -> None: ...


def render(message: OutgoingMessage, out: TextIO) -> None:
    print(message.text, file=out)
    if message.link:
        print(f"  {message.link[0]}: {message.link[1]}", file=out)
    for number, button in enumerate(message.buttons, start=1):
        print(f"  {number}. {button.label}", file=out)
    out.flush()


async def run_terminal_chat(
    engine: MessageHandler,
    outbox: Outbox,
    shop_id: str,
    title: str,
    *,
    user: str | None = None,
    language: str | None = None,
    read_line: Callable[[], str] | None = None,
    out: TextIO = sys.stdout,
) -> None:
    """Run a chat until end of input (Ctrl+D) or "/quit"."""
    user_id = user or f"guest-{uuid.uuid4().hex[:8]}"
    reader = read_line or _read_stdin_line
    loop = asyncio.get_running_loop()
    poller = asyncio.create_task(_deliver_staff_messages(outbox, shop_id, user_id, out))
    print(f"— chatbook · {title} · /quit to leave —", file=out)
    try:
        while True:
            line = await loop.run_in_executor(None, reader)
            if line == "" or line.strip() in ("/quit", "/exit"):
                break
            message = IncomingMessage(
                shop_id=shop_id,
                channel=CHANNEL,
                user_id=user_id,
                message_id=uuid.uuid4().hex,
                text=line.rstrip("\n"),
                language_hint=language,
                display_name=user or "",
            )
            for reply in await engine.handle(message):
                render(reply, out)
    finally:
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller


def _read_stdin_line() -> str:
    try:
        return input("> ") + "\n"
    except EOFError:
        return ""


async def _deliver_staff_messages(outbox: Outbox, shop_id: str, user_id: str, out: TextIO) -> None:
    while True:
        for row in await outbox.pending_outbox(shop_id, CHANNEL, user_id):
            render(OutgoingMessage.from_json(row.body), out)
            await outbox.mark_sent(row.id, provider_id="terminal")
        await asyncio.sleep(POLL_SECONDS)
