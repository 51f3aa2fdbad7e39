"""The texts of service notices: reminders (confirmation, day before, same day), booking changes,
follow-ups, waitlist offers and the shop-change apology with its alternatives, with their buttons,
from the language catalogs; and the facts a WeChat template notice shows outside the 48-hour
window (``notice_facts``, channels/wechat_templates.py).

Pure: no database. The notifier (bot/notifier.py) sends them; the engine writes the shop-change
apology again when a customer asks.
"""

from __future__ import annotations

from datetime import datetime

from channels.wechat_templates import notice_values
from core.config import ShopConfig
from core.i18n import Texts, texts
from core.messages import Button, OutgoingMessage
from core.models import Booking
from core.results import BookingView

NOTICES = (
    "declined",
    "cancelled",
    "follow_up",
    "rebook",
    "shop_change",
    "waitlist_offer",
)  # sent whatever the booking's state


def compose(kind: str, booking: Booking, shop: ShopConfig, pet_name: str | None, lang: str) -> OutgoingMessage:
    """The reminder text and buttons, from the language catalogs."""
    t: Texts = texts(lang)
    service = shop.services[booking.service_id].name.get(t.lang) if booking.service_id in shop.services else ""
    staff = (
        shop.staff[booking.staff_id].name.get(t.lang) if booking.staff_id in shop.staff else t.t("reminder.staff_any")
    )
    values = {
        "service": service,
        "pet": t.t("reminder.pet", pet=pet_name) if pet_name else "",
        "when": t.format_when(booking.start_at, shop.tz),
        "time": booking.start_at.astimezone(shop.tz).strftime("%H:%M"),
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
        Button(t.t("reminder.confirm_button"), f"rc:{booking.id}"),
        Button(t.t("btn.reschedule"), f"rr:{booking.id}"),
        Button(t.t("btn.cancel_booking"), f"rx:{booking.id}"),
    )
    return OutgoingMessage(text, buttons)


def notice_facts(kind: str, booking: Booking, shop: ShopConfig, pet_name: str | None, lang: str) -> dict[str, str]:
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
