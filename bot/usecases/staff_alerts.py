"""Alerts to the shop's staff notification channel (core/staff_alerts.py) for what happens in chat.

``AlertingEvents`` is the console event bus that also alerts the staff channel when the bot hands
a chat over (the engine publishes ``escalation`` once the turn committed): the composition root
builds it in place of ``EventBus``. Only the process that handled the turn publishes its event,
so each handoff is alerted once, also with several ``serve`` processes. Low ratings reach the
channel through core/ratings.py's ``notify_staff`` hook (``StaffAlerts.notify``).

An alert that fails to be queued is logged (without the event's contents) and never fails the
turn or the console event: the customer's chat and the console come first.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.events import EventBus
from core.db import Database
from core.staff_alerts import StaffAlerts

log = logging.getLogger(__name__)


class AlertingEvents(EventBus):
    """The console event bus; a chat handed to staff also alerts the shop's staff channel."""

    def __init__(self, db: Database, alerts: StaffAlerts) -> None:
        super().__init__(db)
        self.alerts = alerts

    async def publish(self, event: dict[str, Any]) -> None:
        await super().publish(event)
        if event.get("type") != "escalation":
            return
        try:
            await self.alerts.notify(event)
        except Exception:  # the handoff itself is done and shown in the console; the alert is extra
            log.exception("staff alert for a handoff at %s could not be queued", event.get("shop"))
