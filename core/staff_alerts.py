"""The staff notification channel: a shop's staff are told at once, where the shop configured it
(``staff_alerts:`` in config.yaml: a Telegram staff group through the shop's own bot, and/or a
WeCom group chat through one of the corp's apps), when a chat is handed to them and when a visit
gets a low rating.

Every alert is an outbox row (core/outbox.py ``enqueue``: stored in the causing transaction when
there is one, then sent, retried and flagged by the delivery loop like any message), of kind
``staff_alert``, addressed to the configured chat (no conversation: it is nobody's chat with the
shop). What an alert says is from the catalogs (``staff_alert.*``, in the shop's or the
configured language) and never holds a phone number, a comment, a name or health data: it says
what happened (a handoff and its route, or N stars for booking CODE of a service) and where to
look in the console, where staff see the details they are allowed to see.

A low rating is alerted when the stars come; a comment added afterwards sends one more alert
saying only that there is one. A WeCom alert is an outbox row of channel ``wecom`` addressed to
the group chat's chatid; the WeCom sender sends rows of this kind with ``appchat/send`` through
the configured app (channels/wecom/sender.py), not through the customer service account.

Hooks:
- ``queue_handoff(s, shop_id, shop, conversation_id, route, now)`` inside the transaction that
  hands the chat over (bot/usecases/handoff.py ``hand_to_staff``, in the engine's turn): the
  alert is committed with the handoff or not at all. ``StaffAlerts.handoff`` queues one on its own;
- ``StaffAlerts.notify(event)``: a ``Publisher`` (core/ratings.py ``notify_staff``) taking the
  console event ``low_rating`` (a handoff's ``escalation`` event is not alerted again: its
  alert was queued with it).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import Clock
from core.config import AppConfig, ShopConfig
from core.db import Database
from core.i18n import texts
from core.messages import OutgoingMessage
from core.models import Booking, Conversation, OutboxMessage
from core.outbox import enqueue

KIND = "staff_alert"


def targets(shop: ShopConfig) -> list[tuple[str, str]]:
    """(channel, chat) pairs the shop's staff alerts go to; [] when none is configured."""
    alerts = shop.staff_alerts
    if alerts is None or not alerts.enabled:
        return []
    out: list[tuple[str, str]] = []
    bot = shop.channels.telegram
    if alerts.telegram is not None and bot is not None and bot.enabled:
        out.append(("telegram", alerts.telegram.chat_id))
    if alerts.wecom is not None:
        out.append(("wecom", alerts.wecom.chat_id))
    return out


def _lang(shop: ShopConfig) -> str:
    alerts = shop.staff_alerts
    return (alerts.language if alerts is not None and alerts.language else None) or shop.default_language


def handoff_message(shop: ShopConfig, conversation_id: int, route: str | None) -> OutgoingMessage:
    t = texts(_lang(shop))
    return OutgoingMessage(t.t("staff_alert.handoff", route=route or "front_desk", conversation=conversation_id))


def low_rating_message(shop: ShopConfig, stars: int, code: str, service_id: str, *, comment: bool) -> OutgoingMessage:
    t = texts(_lang(shop))
    service = shop.services[service_id].name.get(t.lang) if service_id in shop.services else service_id
    return OutgoingMessage(
        t.t(
            "staff_alert.low_rating",
            stars=stars,
            code=code,
            service=service,
            comment=t.t("staff_alert.with_comment") if comment else "",
        )
    )


def queue(
    s: AsyncSession, shop_id: str, shop: ShopConfig, message: OutgoingMessage, now: datetime, *, about: dict[str, Any]
) -> list[OutboxMessage]:
    """Add the alert for every configured target to the caller's transaction."""
    return [
        enqueue(
            s,
            shop_id=shop_id,
            channel=channel,
            external_id=chat,
            conversation_id=None,
            message=message,
            now=now,
            kind=KIND,
            extra={"alert": about},
        )
        for channel, chat in targets(shop)
    ]


async def queue_handoff(
    s: AsyncSession, shop_id: str, shop: ShopConfig, conversation_id: int, route: str | None, now: datetime
) -> list[OutboxMessage]:
    """The handoff alert, in the transaction that hands the chat over (nothing when not configured)."""
    if not targets(shop):
        return []
    return queue(
        s,
        shop_id,
        shop,
        handoff_message(shop, conversation_id, route),
        now,
        about={"type": "handoff", "conversation": conversation_id},
    )


class StaffAlerts:
    """Alerts in their own transaction (the hooks that run after the change committed).

    ``wake`` (set by the composition root): the delivery loop's wake-up, so an alert goes out at
    once instead of at the loop's next look."""

    def __init__(self, db: Database, config: AppConfig, clock: Clock) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.wake: Callable[[], None] | None = None

    def configured(self, shop_id: str) -> bool:
        shop = self.config.shop(shop_id)
        return shop is not None and bool(targets(shop))

    async def handoff(self, shop_id: str, conversation_id: int, route: str | None = None) -> int:
        """Alert the shop's staff that a chat waits for them; returns how many alerts were queued."""
        shop = self.config.shop(shop_id)
        if shop is None or not targets(shop):
            return 0
        async with self.db.transaction() as s:
            if route is None:
                route = await s.scalar(
                    select(Conversation.handoff_route).where(
                        Conversation.id == conversation_id, Conversation.shop_id == shop_id
                    )
                )
            rows = await queue_handoff(s, shop_id, shop, conversation_id, route, self.clock.now())
        self._woken(rows)
        return len(rows)

    async def low_rating(self, booking_id: int, stars: int, *, comment: bool) -> int:
        """Alert the staff of the booking's shop to a low rating (stars, booking code, service only)."""
        async with self.db.transaction() as s:
            booking = await s.get(Booking, booking_id)
            shop = self.config.shop(booking.shop_id) if booking is not None else None
            if booking is None or shop is None or not targets(shop):
                return 0
            message = low_rating_message(shop, stars, booking.code, booking.service_id, comment=comment)
            about = {"type": "low_rating", "booking": booking_id, "stars": stars}
            rows = queue(s, booking.shop_id, shop, message, self.clock.now(), about=about)
        self._woken(rows)
        return len(rows)

    async def notify(self, event: dict[str, Any]) -> None:
        """A console event that staff should also hear of on their channel: ``low_rating``
        (core/ratings.py); others are ignored (a handoff's alert was queued with the handoff)."""
        kind = event.get("type")
        if kind == "low_rating" and isinstance(event.get("booking"), int) and isinstance(event.get("stars"), int):
            await self.low_rating(event["booking"], event["stars"], comment=bool(event.get("comment")))

    def _woken(self, rows: list[OutboxMessage]) -> None:
        if rows and self.wake is not None:
            self.wake()
