"""One turn of a conversation: the context a state works with and the replies it builds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from bot.engine.draft import Draft, StateName
from bot.engine.store import ConversationState
from core.config import ShopConfig
from core.customers import CustomerView, PetView
from core.i18n import Texts, texts
from core.messages import Button, IncomingMessage, OutgoingMessage

if TYPE_CHECKING:
    from bot.engine.engine import Engine


@dataclass
class Turn:
    engine: Engine
    shop_id: str
    shop: ShopConfig
    conv: ConversationState
    customer: CustomerView
    msg: IncomingMessage
    now: datetime
    out: list[OutgoingMessage] = field(default_factory=list)
    _draft: Draft | None = None

    # ------------------------------------------------------------ language and text

    @property
    def lang(self) -> str:
        return self.conv.language

    @property
    def texts(self) -> Texts:
        return texts(self.lang)

    def t(self, key: str, **values: Any) -> str:
        return self.texts.t(key, **values)

    def say(
        self, text: str, buttons: list[Button] | tuple[Button, ...] = (), *, link: tuple[str, str] | None = None
    ) -> None:
        self.out.append(OutgoingMessage(text=text, buttons=tuple(buttons), link=link))

    def button(self, key: str, payload: str, **values: Any) -> Button:
        return Button(self.t(key, **values), payload)

    # ------------------------------------------------------------ state

    @property
    def data(self) -> dict[str, Any]:
        return self.conv.data

    @property
    def draft(self) -> Draft:
        if self._draft is None:
            self._draft = Draft.from_json(self.conv.data.get("draft"))
        return self._draft

    def save_draft(self) -> None:
        """Write the typed draft back into the conversation data (done once per turn)."""
        if self._draft is not None:
            self.conv.data["draft"] = self._draft.to_json()

    def clear_draft(self) -> None:
        self._draft = Draft()
        self.conv.data["draft"] = {}
        self.conv.data["stack"] = []

    @property
    def state(self) -> StateName:
        try:
            return StateName(self.conv.state)
        except ValueError:
            return StateName.IDLE

    @property
    def today(self) -> date:
        return self.now.astimezone(self.shop.tz).date()

    def when(self, moment: datetime) -> str:
        return self.texts.format_when(moment, self.shop.tz)

    def day_text(self, day: date) -> str:
        return self.texts.format_date(day)

    def service_name(self, service_id: str) -> str:
        service = self.shop.services.get(service_id)
        return service.name.get(self.lang) if service else service_id

    def staff_name(self, staff_id: str) -> str:
        staff = self.shop.staff.get(staff_id)
        return staff.name.get(self.lang) if staff else staff_id

    def category_name(self, category_id: str) -> str:
        category = self.shop.categories.get(category_id)
        return category.name.get(self.lang) if category else category_id

    def pet(self, pet_id: int | None) -> PetView | None:
        return next((p for p in self.customer.pets if p.id == pet_id), None)

    async def go(self, state: StateName, *, push: bool = True) -> None:
        """Move to ``state`` and show its prompt (the previous state is remembered for "back")."""
        from bot.engine.states import STATES

        if push and self.conv.state != state:
            stack: list[str] = self.conv.data.setdefault("stack", [])
            stack.append(self.conv.state)
            del stack[:-10]
        self.conv.state = state.value
        await STATES[state].enter(self)

    async def reprompt(self) -> None:
        from bot.engine.states import STATES

        await STATES[self.state].enter(self)

    def settle(self, state: StateName = StateName.IDLE) -> None:
        """End a flow quietly (its last message already says what happened)."""
        self.conv.state = state.value
        self.clear_draft()
