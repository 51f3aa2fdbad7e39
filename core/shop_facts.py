"""Shop facts (address, phone, opening hours, prices) rendered into texts from config.yaml.

FAQ answers and other shop texts write ``{address}``, ``{phone}``, ``{hours}``, ``{name}`` or
``{price:<service or add-on id>}`` instead of copying the facts, so an answer and a booking
confirmation can never disagree: both read the one config. Unknown placeholders are left as
written (``faq check`` reports them); nothing here raises on odd text.
"""

from __future__ import annotations

import re

from core.config import WEEKDAYS, ShopConfig
from core.i18n import texts

PLACEHOLDER = re.compile(r"\{(address|phone|hours|name|price:[A-Za-z0-9_\-]+)\}")
FACT_NAMES = ("address", "phone", "hours", "name")


def fact(shop: ShopConfig, name: str, lang: str) -> str | None:
    """The value of one placeholder (``price:dog_bath_small``), or None when config has no such fact."""
    if name == "address":
        return shop.address.get(lang)
    if name == "phone":
        return shop.phone or ""
    if name == "name":
        return shop.name.get(lang)
    if name == "hours":
        return opening_hours_text(shop, lang)
    if name.startswith("price:"):
        item = name[6:]
        tx = texts(lang)
        if item in shop.services:
            return tx.format_price(shop.services[item].price, currency=shop.currency)
        if item in shop.addons:
            return tx.format_price(shop.addons[item].price, currency=shop.currency)
    return None


def render_facts(text: str, shop: ShopConfig, lang: str) -> str:
    """``text`` with every known placeholder replaced by the shop's fact in ``lang``."""

    def replace(match: re.Match[str]) -> str:
        value = fact(shop, match.group(1), lang)
        return match.group(0) if value is None else value

    return PLACEHOLDER.sub(replace, text)


def opening_hours_text(shop: ShopConfig, lang: str) -> str:
    """ "周一 10:00-20:00；周二 休息；..." / "Mon 10:00-20:00; Tue closed; ..." (days with equal hours grouped)."""
    tx = texts(lang)
    names = tx.list("format.weekdays")
    closed = "休息" if lang == "zh" else "closed"
    sep = "；" if lang == "zh" else "; "
    groups: list[tuple[list[str], str]] = []
    for index, key in enumerate(WEEKDAYS):
        ranges = shop.opening_hours.get(key, [])
        hours = ", ".join(str(r) for r in ranges) if ranges else closed
        if groups and groups[-1][1] == hours:
            groups[-1][0].append(names[index])
        else:
            groups.append(([names[index]], hours))
    parts = []
    for days, hours in groups:
        label = days[0] if len(days) == 1 else f"{days[0]}-{days[-1]}" if lang == "en" else f"{days[0]}至{days[-1]}"
        parts.append(f"{label} {hours}")
    return sep.join(parts)
