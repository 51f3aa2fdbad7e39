"""Steps of a booking conversation that many tests walk through, whatever the channel's test client.

A client is anything with ``press(label_part)`` and the last turn's ``text``: the collecting
channel (tests/support/collecting.py), the Telegram user of tests/channels/test_telegram.py, the
widget socket of tests/channels/test_widget_ws.py.
"""

from __future__ import annotations

from typing import Any, Protocol

from core.i18n import Texts


class ChatClient(Protocol):
    @property
    def text(self) -> str: ...

    async def press(self, label_part: str) -> Any: ...


async def answer_vaccinated(chat: ChatClient, texts: Texts, pet: str) -> None:
    """The vaccination step: the shop asks whether ``pet`` is vaccinated, the customer taps yes,
    and the next question is the day."""
    assert texts.t("ask.vaccinated", pet=pet) in chat.text
    await chat.press(texts.t("btn.affirm"))
    assert chat.text == texts.t("ask.day")
