"""Prices in the shop's currency, written the way the customer's language writes them (CLDR
symbols: a Chinese reader sees ¥ and US$, an English reader $ (and ¥ for the shops' own yuan,
as customers of a shop in China read it), old calls unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.i18n import format_money, texts


@pytest.mark.parametrize(
    ("amount", "currency", "zh", "en"),
    [
        (20, "EUR", "€20", "€20"),
        (20, "CNY", "¥20", "¥20"),
        (Decimal("1234.5"), "USD", "US$1,234.50", "$1,234.50"),
        (Decimal("0.05"), "GBP", "£0.05", "£0.05"),
        (Decimal("1500.4"), "JPY", "JP¥1,500", "¥1,500"),  # no minor unit
        (88, "HKD", "HK$88", "HK$88"),
        (7, "XTS", "7 XTS", "7 XTS"),  # a currency we have no symbol for: its code
        (20, "eur", "€20", "€20"),
    ],
)
def test_prices_use_the_shop_currency_in_the_customer_language(
    amount: Decimal | int, currency: str, zh: str, en: str
) -> None:
    assert texts("zh").format_price(amount, currency) == zh
    assert texts("en").format_price(amount, currency=currency) == en
    assert format_money(amount, currency, "en") == en


def test_a_eur_shop_never_shows_yuan() -> None:
    for lang in ("zh", "en"):
        assert "¥" not in texts(lang).format_price(Decimal("20.00"), "EUR")


def test_the_old_call_is_unchanged() -> None:
    assert texts("zh").format_price(20) == "¥20"
    assert texts("en").format_price(Decimal("20.5")) == "¥20.5"
