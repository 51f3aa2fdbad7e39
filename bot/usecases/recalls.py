"""Automatic eye check-up recalls: the scheduler's daily run at each optician (bot/scheduler.py).

Once a day, from the shop's ``eye_recall.send_at`` (its wall clock) and before ``send_until``, each
person whose check-up comes due gets ONE reminder in their latest chat, with a "book" button
(the work and its rules: core/eye_records.py ``send_due_recalls``). Switched per shop by
``eye_recall.auto_send`` (on by default; only shops of kind ``optician`` have exams to recall).

Which process runs it does not matter: every ``serve`` process runs the job, and each exam's
reminder is sent once whoever comes first (the exam row is locked and its audit row checked in
the sending transaction); a restart on the same day runs it again and sends nothing twice. The
day each shop last ran is kept in memory only to skip the list query for the rest of the day.
At a pet shop the same run tells owners whose pet's vaccination runs out before a visit they
booked (core/vaccination_notices.py, ``vaccinations.expiry_notice_days``), once per booking.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from core.config import ShopConfig
from core.eye_records import RecallRun, send_due_recalls
from core.vaccination_notices import send_expiry_notices

if TYPE_CHECKING:
    from bot.bootstrap import Services

log = logging.getLogger(__name__)


def recalls_on(shop: ShopConfig) -> bool:
    """Does this shop send its check-up reminders by itself?"""
    return shop.kind == "optician" and shop.eye_recall.auto_send


def expiry_notices_on(shop: ShopConfig) -> bool:
    """Does this pet shop tell owners when a vaccination runs out before a booked visit?"""
    return shop.kind == "pet" and shop.vaccinations.expiry_notice_days is not None


class DailyRecalls:
    """The scheduler's job: ``tick`` as often as it likes, each shop runs once a day in its window."""

    def __init__(self) -> None:
        self.done: dict[str, date] = {}  # shop -> the local day it ran (this process)

    async def tick(self, services: Services) -> dict[str, RecallRun]:
        """Run the shops whose send time has come today and did not run yet; what each did (at a
        pet shop ``sent`` holds the bookings whose owner was told of a vaccination running out)."""
        now = services.clock.now()
        runs: dict[str, RecallRun] = {}
        for shop_id, shop in services.config.shops.items():
            if not (recalls_on(shop) or expiry_notices_on(shop)):
                continue
            local = now.astimezone(shop.tz)
            rules = shop.eye_recall  # its send window serves the pet shops' notices too
            if self.done.get(shop_id) == local.date() or not rules.send_at <= local.time() < rules.send_until:
                continue
            if expiry_notices_on(shop):
                told = await send_expiry_notices(services.db, services.clock, shop, shop_id)
                self.done[shop_id] = local.date()
                runs[shop_id] = RecallRun(told)
                if told:
                    services.delivery.wake()
                log.info("vaccination expiry notices %s: %d sent", shop_id, len(told))
                continue
            run = await send_due_recalls(services.db, services.clock, shop, shop_id)
            self.done[shop_id] = local.date()
            runs[shop_id] = run
            if run.sent:
                services.delivery.wake()
            left = {reason: len(ids) for reason, ids in run.left.items()}
            log.info("eye recalls %s: %d sent, left %s", shop_id, len(run.sent), left)  # counts only
        return runs
