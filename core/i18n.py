"""Customer-facing text: one catalog per language (core/locales/zh.yaml, en.yaml), nothing else.

``texts(lang).t("booked.confirmed", code=..., ...)`` looks a key up and fills its
placeholders; ``format_when`` / ``format_date`` / ``format_price`` write times in the shop's
zone the way each language writes them. A missing key is a bug, so it raises.
``language_tag`` is the one mapping from a network's or browser's language tag to ours.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import yaml

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
_DIR = Path(__file__).with_name("locales")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


class Texts:
    """One language's catalog."""

    def __init__(self, lang: Lang, entries: dict[str, Any]) -> None:
        self.lang = lang
        self.entries = entries

    def t(self, key: str, **values: Any) -> str:
        template = self.entries[key]
        return str(template).format(**values) if values or "{" in str(template) else str(template)

    def list(self, key: str) -> list[str]:
        return list(self.entries[key])

    def join(self, items: Sequence[str]) -> str:
        return str(self.entries["format.list_sep"]).join(items)

    def format_date(self, day: date) -> str:
        return self.t(
            "format.date",
            weekday=self.list("format.weekdays")[day.weekday()],
            day=day.day,
            month=self.list("format.months")[day.month - 1],
        )

    def format_when(self, moment: datetime, tz: ZoneInfo) -> str:
        local = moment.astimezone(tz)
        return self.t(
            "format.when",
            weekday=self.list("format.weekdays")[local.weekday()],
            day=local.day,
            month=self.list("format.months")[local.month - 1],
            time=local.strftime("%H:%M"),
        )

    def format_price(self, amount: Decimal | int | float, currency: str | None = None) -> str:
        """A price: in ``currency`` (the shop's config ``currency``, e.g. "EUR") the way this
        language writes it; without a currency, the catalog's ``format.price`` (yuan)."""
        if currency is not None:
            return format_money(amount, currency, self.lang)
        value = Decimal(str(amount))
        text = f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value)}"
        return self.t("format.price", amount=text)


# Currency symbols as each language writes them (CLDR zh / en): a reader of English sees "CN¥"
# for yuan and "$" for US dollars, a reader of Chinese "¥" and "US$".
_SYMBOLS: dict[str, dict[str, str]] = {
    "CNY": {"zh": "¥", "en": "¥"},  # customers of a shop in China read ¥ in English too
    "USD": {"zh": "US$", "en": "$"},
    "EUR": {"zh": "€", "en": "€"},
    "GBP": {"zh": "£", "en": "£"},
    "JPY": {"zh": "JP¥", "en": "¥"},
    "HKD": {"zh": "HK$", "en": "HK$"},
    "TWD": {"zh": "NT$", "en": "NT$"},
    "MOP": {"zh": "MOP$", "en": "MOP$"},
    "SGD": {"zh": "SGD", "en": "SGD"},
    "AUD": {"zh": "AU$", "en": "A$"},
    "CAD": {"zh": "CA$", "en": "CA$"},
    "KRW": {"zh": "₩", "en": "₩"},
    "CHF": {"zh": "CHF ", "en": "CHF "},
}
_NO_MINOR_UNIT = {"JPY", "KRW", "TWD"}


def format_money(amount: Decimal | int | float, currency: str, lang: str) -> str:
    """``20`` EUR -> "€20"; ``1234.5`` USD -> "$1,234.50" (en) / "US$1,234.50" (zh); an
    unknown code is written after the amount ("7 XTS"). Whole amounts drop the cents."""
    code = currency.strip().upper()
    value = Decimal(str(amount))
    if code in _NO_MINOR_UNIT or value % 1 == 0:
        number = f"{value.quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"
    else:
        number = f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
    symbol = _SYMBOLS.get(code, {}).get("en" if lang == "en" else "zh")
    return f"{symbol}{number}" if symbol else f"{number} {code}"


def language_tag(tag: str | None) -> Lang | None:
    """Our language for a tag from a network or a browser ("zh-Hans-CN", "en-US", an
    Accept-Language header "en-GB,en;q=0.9"): "zh", "en", or None for any other or none."""
    if not tag:
        return None
    tag = tag.strip().lower()
    if tag.startswith("zh"):
        return "zh"
    if tag.startswith("en"):
        return "en"
    return None


@cache
def texts(lang: str) -> Texts:
    """The catalog for ``lang`` (anything but "en" falls back to zh, the shops' home language)."""
    chosen: Lang = "en" if lang == "en" else "zh"
    data = yaml.safe_load((_DIR / f"{chosen}.yaml").read_text(encoding="utf-8"))
    return Texts(chosen, _flatten(data))
