"""Is the shop open now, and when does it next open: from config (``opening_hours`` and
``closed_dates``) in the shop's own zone, DST-safe. Pure: no storage, no texts.

Used by the web widget's header (channels/web: "online" or "closed, we open at 09:00"); the
engine's "someone will reply after we open" (bot/engine/flows.py ``_eta``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.availability import local_intervals
from core.config import ShopConfig

HORIZON_DAYS = 14  # look this far ahead for the next opening (a longer closure: "closed", no time)


@dataclass(frozen=True)
class OpenState:
    """``open`` now; ``opens_at`` (UTC) the next opening when closed and one is within the horizon."""

    open: bool
    opens_at: datetime | None = None


def open_state(shop: ShopConfig, now: datetime) -> OpenState:
    """Whether ``shop`` is open at ``now`` (aware), and when it next opens when it is not."""
    today = now.astimezone(shop.tz).date()
    for offset in range(-1, HORIZON_DAYS + 1):  # yesterday too: a range may run to 24:00 across DST
        day = today + timedelta(days=offset)
        for span in local_intervals(day, shop.hours_on(day), shop.tz):
            if span.start <= now < span.end:
                return OpenState(True)
            if span.start > now:
                return OpenState(False, span.start)
    return OpenState(False)
