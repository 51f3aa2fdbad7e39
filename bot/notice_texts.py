"""The texts of service notices: reminders (confirmation, day before, same day), booking changes,
follow-ups, waitlist offers and the shop-change apology with its alternatives, with their buttons,
from the language catalogs; and the facts a WeChat template notice shows outside the 48-hour
window (``notice_facts``, channels/wechat_templates.py).

Pure: no database. The notifier (bot/notifier.py) sends them; the engine writes the shop-change
apology again when a customer asks. A wave of reminders composes thousands of them at once
(issue 10): the parts every notice of one visit time or one language shares (the local time in
words, the button labels) are worked out once and kept (``_visit_words``, ``_reminder_labels``);
``compose`` and ``notice_facts`` take any booking-like row (``NoticeBooking``), so the notifier
passes plain Core rows, not ORM objects.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from channels.wechat_templates import notice_values
from core.config import ShopConfig
from core.i18n import Texts, texts
from core.messages import Button, OutgoingMessage
from core.results import BookingView

NOTICES = (
    "declined",
    "cancelled",
    "follow_up",
    "rebook",
    "shop_change",
    "waitlist_offer",
)  # sent whatever the booking's state


class NoticeBooking(Protocol):
    """What a notice shows of a booking: an ORM ``Booking`` or a Core row with these columns."""

    @property
    def id(self) -> int: ...
    @property
    def code(self) -> str: ...
    @property
    def service_id(self) -> str: ...
    @property
    def staff_id(self) -> str | None: ...
    @property
    def start_at(self) -> datetime: ...


@lru_cache(maxsize=4096)
def _visit_words(lang: str, start: datetime, tz: ZoneInfo) -> tuple[str, str, str]:
    """A visit time as a notice says it: in words, as HH:MM, and ISO in the shop's zone."""
    local = start.astimezone(tz)
    return texts(lang).format_when(start, tz), local.strftime("%H:%M"), local.isoformat()


@lru_cache(maxsize=64)
def _reminder_labels(lang: str) -> tuple[str, str, str, str]:
    """Confirm / reschedule / cancel, and the words for "any staff member"."""
    t = texts(lang)
    return t.t("reminder.confirm_button"), t.t("btn.reschedule"), t.t("btn.cancel_booking"), t.t("reminder.staff_any")


def compose(kind: str, booking: NoticeBooking, shop: ShopConfig, pet_name: str | None, lang: str) -> OutgoingMessage:
    """The reminder text and buttons, from the language catalogs."""
    t: Texts = texts(lang)
    confirm, reschedule, cancel, staff_any = _reminder_labels(t.lang)
    service = shop.services[booking.service_id].name.get(t.lang) if booking.service_id in shop.services else ""
    staff = shop.staff[booking.staff_id].name.get(t.lang) if booking.staff_id in shop.staff else staff_any
    when, hhmm, _ = _visit_words(t.lang, booking.start_at, shop.tz)
    values = {
        "service": service,
        "pet": t.t("reminder.pet", pet=pet_name) if pet_name else "",
        "when": when,
        "time": hhmm,
        "staff": staff,
        "address": shop.address.get(t.lang),
        "code": booking.code,
    }
    if kind == "follow_up":
        service_cfg = shop.services[booking.service_id]
        tips = service_cfg.follow_up.get(t.lang) if service_cfg.follow_up else ""
        pet = pet_name or t.t("reminder.your_pet")
        text = t.t("reminder.follow_up_title", shop=shop.name.get(t.lang)) + "\n" + tips.replace("{pet}", pet)
        return OutgoingMessage(text, (Button(t.t("btn.book"), "m:book"),))
    if kind == "waitlist_offer":
        minutes = shop.booking.waitlist_offer_min
        text = t.t("waitlist.offer", service=service, pet=values["pet"], when=values["when"], minutes=minutes)
        return OutgoingMessage(
            text, (Button(t.t("waitlist.take"), f"wa:{booking.id}"), Button(t.t("waitlist.pass"), f"wn:{booking.id}"))
        )
    text = t.t(f"reminder.{kind}", **values)
    if kind in NOTICES:
        return OutgoingMessage(text, (Button(t.t("btn.book"), "m:book"),))
    buttons = (
        Button(confirm, f"rc:{booking.id}"),
        Button(reschedule, f"rr:{booking.id}"),
        Button(cancel, f"rx:{booking.id}"),
    )
    return OutgoingMessage(text, buttons)


def notice_facts(
    kind: str, booking: NoticeBooking, shop: ShopConfig, pet_name: str | None, lang: str
) -> dict[str, str]:
    """What a WeChat template notice of this reminder may show (stored in the outbox row as
    ``notice``): names in the customer's language, the visit in the shop's wall clock, the code,
    and a short status from the catalogs (WeChat's "phrase" fields take Chinese only: ``status_zh``)."""
    t = texts(lang)
    facts = notice_values(
        shop,
        lang=t.lang,
        service_id=booking.service_id,
        staff_id=booking.staff_id,
        start=booking.start_at,
        code=booking.code,
        pet_name=pet_name,
        status=t.t(f"notice_status.{kind}"),
    )
    facts.setdefault("staff", t.t("reminder.staff_any"))
    if t.lang != "zh":
        facts["status_zh"] = texts("zh").t(f"notice_status.{kind}")
    return facts


def compose_shop_change(
    booking: BookingView, shop: ShopConfig, pet_name: str | None, lang: str, options: list[tuple[datetime, str | None]]
) -> OutgoingMessage:
    """The apology with alternatives (each one tap away) when the shop has to move a booking."""
    t = texts(lang)
    away = shop.staff[booking.staff_id].name.get(t.lang) if booking.staff_id in shop.staff else ""
    goodwill = shop.goodwill.get(t.lang) + " " if shop.goodwill else ""
    values = {
        "staff": away,
        "service": shop.services[booking.service_id].name.get(t.lang),
        "pet": t.t("reminder.pet", pet=pet_name) if pet_name else "",
        "when": t.format_when(booking.start, shop.tz),
        "code": booking.code,
        "goodwill": goodwill,
    }
    buttons = [
        Button(
            t.t(
                "reminder.option",
                when=t.format_when(start, shop.tz),
                staff=shop.staff[sid].name.get(t.lang) if sid in shop.staff else "",
            ).strip(),
            f"sc:{booking.id}:{int(start.timestamp()) // 60}:{sid or ''}",
        )
        for start, sid in options
    ]
    buttons += [Button(t.t("btn.cancel_booking"), f"rx:{booking.id}"), Button(t.t("btn.human"), "m:human")]
    key = "reminder.shop_change" if options else "reminder.shop_change_none"
    return OutgoingMessage(t.t(key, **values), tuple(buttons))
