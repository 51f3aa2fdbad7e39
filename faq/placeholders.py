"""Placeholders in FAQ answers and the shop facts they stand for.

Owns the placeholder syntax the loader accepts ({address}, {phone}, {hours}, {name},
{price:<service_or_addon_id>}: the ones core/shop_facts.py renders) and the `faq check --config`
checks: an answer must not hard-code a price or an address that config.yaml knows, and a
{price:ID} must name a service or add-on of that shop. Works on plain data (no config import)
so that `faq match` and the loader run on any FAQ directory without a config.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from faq.normalize import normalize

KNOWN: tuple[str, ...] = ("address", "phone", "hours", "name", "price")
_BRACED = re.compile(r"\{([^{}\n]{0,60})\}")
_VALID = re.compile(r"^(address|phone|hours|name)$|^price:([A-Za-z0-9_-]+)$")
# A money amount: ¥88 / ￥88 / CN¥88 / RMB 88 / 88元 / 88 块.
_MONEY = re.compile(
    r"(?:[¥￥]|CN¥|RMB\s?|CNY\s?)\s?(\d+(?:\.\d+)?)|(\d+(?:\.\d+)?)\s?(?:元|块)", re.IGNORECASE
)


def placeholder_errors(text: str) -> list[str]:
    """Why the `{...}` parts of an answer are not valid placeholders (empty when they are)."""
    problems: list[str] = []
    if "{" not in text:
        return problems
    for match in _BRACED.finditer(text):
        inner = match.group(1).strip()
        if not _VALID.match(inner):
            name = inner.split(":", 1)[0]
            hint = " (write {price:<service or add-on id>})" if name == "price" else ""
            problems.append(f"unknown placeholder {{{inner}}}{hint}; known: "
                            "{address}, {phone}, {hours}, {name}, {price:<id>}")
    return problems


def price_ids(text: str) -> list[str]:
    """The ids named by {price:ID} placeholders in `text`."""
    return [m.group(1).split(":", 1)[1].strip() for m in _BRACED.finditer(text)
            if m.group(1).strip().startswith("price:")]


@dataclass(frozen=True, slots=True)
class ShopFacts:
    """What config.yaml knows about one shop, as plain data."""

    addresses: tuple[str, ...] = ()
    phone: str | None = None
    prices: Mapping[str, Decimal] = field(default_factory=dict)  # service/add-on id -> price


def _address_parts(address: str) -> list[str]:
    # The whole address and its distinctive pieces ("88 Wanping South Road", "宛平南路88号").
    norm = normalize(address)
    parts = {norm}
    for piece in re.split(r"[,，、]", address):
        piece_norm = normalize(piece)
        if len(piece_norm.replace(" ", "")) >= 6 and any(ch.isdigit() for ch in piece_norm):
            parts.add(piece_norm)
    for found in re.findall(r"[\u4e00-\u9fff]{2,}(?:路|街|道|大道)\s?\d+\s?号", address):
        parts.add(normalize(found))
    return [p for p in parts if p]


def fact_problems(text: str, facts: ShopFacts) -> list[str]:
    """Why an answer copies facts config knows, or names an unknown price id."""
    problems: list[str] = []
    compact = normalize(text).replace(" ", "")
    for address in facts.addresses:
        if any(part.replace(" ", "") in compact for part in _address_parts(address)):
            problems.append("hard-codes the shop's address; write {address}")
            break
    if facts.phone:
        digits = re.sub(r"\D", "", facts.phone)
        if len(digits) >= 7 and digits[-8:] in re.sub(r"\D", "", text):
            problems.append("hard-codes the shop's phone number; write {phone}")
    known_prices: dict[Decimal, list[str]] = {}
    for item, price in facts.prices.items():
        if price > 0:
            known_prices.setdefault(price, []).append(item)
    for match in _MONEY.finditer(text):
        try:
            amount = Decimal(match.group(1) or match.group(2))
        except InvalidOperation:
            continue
        if amount in known_prices:
            ids = known_prices[amount]
            problems.append(f"hard-codes the price {match.group(0).strip()} that config knows "
                            f"({', '.join(ids)}); write {{price:{ids[0]}}}")
    for item in price_ids(text):
        if item not in facts.prices:
            problems.append(f"{{price:{item}}}: no service or add-on '{item}' in this shop's config")
    return problems


def facts_from_config(shop: object) -> ShopFacts:
    """ShopFacts from a core.config.ShopConfig (duck-typed so faq/ does not import core/)."""
    address = getattr(shop, "address", None)
    addresses: Iterable[str] = (getattr(address, "zh", ""), getattr(address, "en", "")) if address else ()
    prices: dict[str, Decimal] = {}
    for table in (getattr(shop, "services", {}) or {}, getattr(shop, "addons", {}) or {}):
        for item_id, item in table.items():
            prices[item_id] = Decimal(str(getattr(item, "price", 0)))
    return ShopFacts(tuple(a for a in addresses if a), getattr(shop, "phone", None), prices)
