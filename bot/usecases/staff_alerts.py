"""Alerts to the shop's staff notification channel (core/staff_alerts.py) for what happens in chat.

A handoff's alert is queued by the handoff itself (bot/usecases/handoff.py ``hand_to_staff``, in
the engine turn's unit of work), so it exists exactly when the handoff does: a crash between the
commit and the console event loses nothing, and each handoff is alerted once, also with several
``serve`` processes. Low ratings reach the channel through core/ratings.py's ``notify_staff``
hook (``StaffAlerts.notify``).

``AlertingEvents`` is the console event bus the composition root builds: it used to queue the
handoff alert from the ``escalation`` event after the commit (the crash window issue 15 closed)
and now only publishes; it stays so bot/bootstrap.py needs no change, and can become a plain
``EventBus`` there.
"""

from __future__ import annotations

from bot.events import EventBus
from core.db import Database
from core.staff_alerts import StaffAlerts


class AlertingEvents(EventBus):
    """The console event bus, with the shop's staff alerts at hand (``alerts``) for callers that
    need them; handoffs are alerted in their own transaction, not from the event."""

    def __init__(self, db: Database, alerts: StaffAlerts) -> None:
        super().__init__(db)
        self.alerts = alerts
