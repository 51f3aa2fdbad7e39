"""WeChat template notices that follow WeChat's rules (pure functions, no network).

Outside the 48-hour customer service window an Official Account can only send template
messages. Since 2023-05-04 WeChat shows only a template's keyword fields: ``first`` and
``remark`` are dropped, every value is cut to its type's limit and line breaks are removed, and
templates must not carry marketing. So:

- Only service notices use templates: reminders, booking changes (confirmed, moved, declined,
  cancelled), shop-side changes and waitlist offers (``notice_kind``). Staff replies, shop
  news, re-booking nudges, follow-ups and chat replies never do: they wait for the customer's
  next message, go to another channel or are flagged for staff (the delivery loop's fallback).
- A template is chosen per kind (``channels.wechat.templates`` in config.yaml; the field
  types and sources are checked by ``chatbook config check``, see core/config.py). A legacy
  ``reminder_template_id`` + ``template_fields`` keeps working with first/remark left out.
- Each value is fitted to its type (``fit``): ``thing`` 20 characters, ``character_string``
  32, ``phrase`` 5 (Chinese only), ``name`` 10, ``number`` 32, ``phone_number`` 17,
  ``car_number`` 8, ``time`` as ``2026年3月27日 10:00``, ``date`` as ``2026年3月27日``. Text is
  cut on a character boundary (never inside a combining sequence or an emoji joined with ZWJ)
  and ends with an ellipsis when shortened.

Values come from the message text (``title`` = first line, ``body`` = the rest, ``text`` = all)
or from the facts the producer of the notice put into the outbox row (``notice_values``, stored
under ``details["notice"]``): service, time, date, code, shop, staff, address, pet, status, phone
(bot/notice_texts.py ``notice_facts`` fills them for every reminder and service notice; a "phrase"
field, Chinese only, shows ``status_zh`` for a customer who reads English).
A template whose field has no value is not sent (the notice falls back like any undeliverable one).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.config import ShopConfig, WeChatConfig, WeChatTemplateConfig, WeChatTemplateField, wechat_field_type

ELLIPSIS = "…"
LIMITS: dict[str, int] = {
    "thing": 20,
    "character_string": 32,
    "phrase": 5,
    "name": 10,
    "number": 32,
    "amount": 11,
    "phone_number": 17,
    "car_number": 8,
    "time": 20,
    "date": 16,
}
SERVICE_NOTICES = ("reminder", "booking_change", "shop_change", "waitlist_offer")
# Outbox rows: kind "reminder" (reminder_kind confirmation/day_before/same_day) and kind "notice"
# (reminder_kind below). Everything else (staff, message, rebook, follow_up, shop news) is not a service notice.
_NOTICE_KINDS = {
    "declined": "booking_change",
    "cancelled": "booking_change",
    "rescheduled": "booking_change",
    "approved": "booking_change",
    "confirmed": "booking_change",
    "shop_change": "shop_change",
    "waitlist_offer": "waitlist_offer",
}
_LEGACY_DROPPED = ("first", "remark")
_JOINERS = {"\u200d", "\ufe0f", "\ufe0e"}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NOT_CHARACTER_STRING = re.compile(r"[^0-9A-Za-z!-/:-@\[-`{-~]")
_NOT_DIGITS = re.compile(r"[^0-9.]")
_NOT_PHONE = re.compile(r"[^0-9+\-() ]")


@dataclass(frozen=True)
class TemplateMessage:
    """What ``message/template/send`` gets: the template and its keyword data."""

    template_id: str
    data: dict[str, dict[str, str]]


def notice_kind(outbox_kind: str, details: Mapping[str, Any] | None = None) -> str | None:
    """Which service notice an outbox row is, or None when it may not go out as a template."""
    reminder_kind = str((details or {}).get("reminder_kind", ""))
    if outbox_kind == "reminder":
        return "booking_change" if reminder_kind == "confirmation" else "reminder"
    if outbox_kind == "notice":
        return _NOTICE_KINDS.get(reminder_kind)
    if outbox_kind in SERVICE_NOTICES:  # producers may name the kind directly
        return outbox_kind
    return None


def notice_values(
    shop: ShopConfig,
    *,
    lang: str,
    service_id: str | None = None,
    staff_id: str | None = None,
    start: datetime | None = None,
    code: str | None = None,
    pet_name: str | None = None,
    status: str | None = None,
) -> dict[str, str]:
    """The facts a template may show, JSON-ready: put them in the outbox row as ``extra={"notice": ...}``."""
    values: dict[str, str] = {"shop": shop.name.get(lang), "address": shop.address.get(lang)}
    if shop.phone:
        values["phone"] = shop.phone
    if service_id and service_id in shop.services:
        values["service"] = shop.services[service_id].name.get(lang)
    if staff_id and staff_id in shop.staff:
        values["staff"] = shop.staff[staff_id].name.get(lang)
    if start is not None:
        values["time"] = start.astimezone(shop.tz).isoformat()
    if code:
        values["code"] = code
    if pet_name:
        values["pet"] = pet_name
    if status:
        values["status"] = status
    return values


# ---------------------------------------------------------------------------------------------- fitting


def _one_line(text: str) -> str:
    return " ".join(text.split())


def cut(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """At most ``limit`` characters; when shortened, cut between characters and end with ``ellipsis``."""
    if len(text) <= limit:
        return text
    keep = max(limit - len(ellipsis), 0)
    head = text[:keep]
    # Do not leave half a character: a combining mark, a variation selector or a ZWJ sequence.
    while head and (unicodedata.combining(text[len(head)]) or text[len(head)] in _JOINERS or head[-1] in _JOINERS):
        head = head[:-1]
    return head.rstrip() + ellipsis


def _wall_clock(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def fit(value: str, field_type: str) -> str:
    """A value as WeChat accepts it for ``field_type`` (one line, within the limit)."""
    text = _one_line(value)
    if field_type == "time":
        moment = _wall_clock(text)
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}" if moment else cut(text, LIMITS["time"])
    if field_type == "date":
        moment = _wall_clock(text)
        return f"{moment.year}年{moment.month}月{moment.day}日" if moment else cut(text, LIMITS["date"])
    if field_type == "phrase":  # Chinese characters only, no punctuation: cut without an ellipsis
        return "".join(_CJK.findall(text))[: LIMITS["phrase"]]
    if field_type == "character_string":
        return cut(_NOT_CHARACTER_STRING.sub("", text), LIMITS["character_string"], "...")
    if field_type == "number":
        return _NOT_DIGITS.sub("", text)[: LIMITS["number"]]
    if field_type == "phone_number":
        return _NOT_PHONE.sub("", text)[: LIMITS["phone_number"]]
    return cut(text, LIMITS.get(field_type, LIMITS["thing"]))


def rule_problem(value: str, field_type: str) -> str | None:
    """Why WeChat would refuse ``value`` for ``field_type`` (None when it is acceptable)."""
    if not value:
        return "empty"
    if "\n" in value or "\r" in value:
        return "line break"
    limit = LIMITS.get(field_type, LIMITS["thing"])
    if len(value) > limit:
        return f"over {limit} characters"
    if field_type == "phrase" and len(_CJK.findall(value)) != len(value):
        return "a phrase is Chinese characters only"
    if field_type == "character_string" and _NOT_CHARACTER_STRING.search(value):
        return "a character_string is letters, digits and ASCII symbols only"
    if field_type == "time" and not re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}|\d{2}:\d{2}", value):
        return "a time reads like 2026年3月27日 10:00"
    if field_type == "date" and not re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日", value):
        return "a date reads like 2026年3月27日"
    return None


# ---------------------------------------------------------------------------------------------- templates


def template_for(cfg: WeChatConfig, kind: str) -> WeChatTemplateConfig | None:
    """The template configured for a service notice kind (legacy: the one reminder template)."""
    if kind not in SERVICE_NOTICES:
        return None
    if cfg.templates:
        chosen: WeChatTemplateConfig | None = dict(cfg.templates).get(kind)  # type: ignore[call-overload]  # kind in SERVICE_NOTICES
        return chosen
    if not cfg.reminder_template_id:
        return None
    fields = {
        name: WeChatTemplateField(value=source, type=wechat_field_type(name) or "thing")  # type: ignore[arg-type]  # a WECHAT_FIELD_TYPES name
        for name, source in cfg.template_fields.items()
        if name not in _LEGACY_DROPPED and source in ("title", "body", "text")
    }
    if not fields:
        return None
    return WeChatTemplateConfig.model_construct(template_id=cfg.reminder_template_id, fields=fields)


def _source(source: str, text: str, facts: Mapping[str, Any], field_type: str = "thing") -> str:
    title, _, rest = text.strip().partition("\n")
    parts = {"title": title, "body": rest.strip() or title, "text": text}
    if source in parts:
        return parts[source]
    if source == "date":
        return str(facts.get("date") or facts.get("time") or "")
    if field_type == "phrase" and facts.get(f"{source}_zh"):  # a phrase is Chinese only, whoever reads it
        return str(facts[f"{source}_zh"])
    return str(facts.get(source) or "")


def template_message(
    cfg: WeChatConfig, outbox_kind: str, details: Mapping[str, Any] | None, text: str
) -> TemplateMessage | None:
    """The template message for a notice, or None: not a service notice, no template, or a value missing."""
    kind = notice_kind(outbox_kind, details)
    if kind is None:
        return None
    template = template_for(cfg, kind)
    if template is None:
        return None
    facts = (details or {}).get("notice") or {}
    if not isinstance(facts, Mapping):
        facts = {}
    data: dict[str, dict[str, str]] = {}
    for name, spec in template.fields.items():
        field_type = spec.type or wechat_field_type(name) or "thing"
        value = fit(_source(spec.value, text, facts, field_type), field_type)
        if rule_problem(value, field_type) is not None:
            return None
        data[name] = {"value": value}
    return TemplateMessage(template.template_id, data)


__all__ = [
    "LIMITS",
    "SERVICE_NOTICES",
    "TemplateMessage",
    "cut",
    "fit",
    "notice_kind",
    "notice_values",
    "rule_problem",
    "template_for",
    "template_message",
]
