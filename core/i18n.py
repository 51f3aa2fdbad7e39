"""Customer-facing text: one catalog per language (core/locales/zh.yaml, en.yaml), nothing else.

``texts(lang).t("booked.confirmed", code=..., ...)`` looks a key up and fills its
placeholders; ``format_when`` / ``format_date`` / ``format_price`` write times in the shop's
zone the way each language writes them. A missing key is a bug, so it raises.
"""

from __future__ import annotations

import string
from datetime import date, datetime
from decimal import Decimal
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

    def join(self, items: list[str]) -> str:
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

    def format_price(self, amount: Decimal | int | float) -> str:
        value = Decimal(str(amount))
        text = f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value)}"
        return self.t("format.price", amount=text)


@cache
def texts(lang: str) -> Texts:
    """The catalog for ``lang`` (anything but "en" falls back to zh, the shops' home language)."""
    chosen: Lang = "en" if lang == "en" else "zh"
    data = yaml.safe_load((_DIR / f"{chosen}.yaml").read_text(encoding="utf-8"))
    return Texts(chosen, _flatten(data))
