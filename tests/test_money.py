"""Money as whole cents (core/money.py): exact from the config's decimal prices, and the catalog
the database mirrors carries the same cents."""

from __future__ import annotations

from decimal import Decimal

from core.catalog import catalog_rows
from core.config import AppConfig
from core.models import Addon, Service
from core.money import Money, cents


def test_prices_become_exact_cents() -> None:
    assert cents(Decimal("19.99")) == 1999  # 19.99 * 100 in floats is 1998.99...
    assert cents(Decimal("12.5")) == 1250 and cents(5) == 500 and cents(Decimal(0)) == 0
    assert cents(Decimal("12.345")) == 1234  # below a cent is cut, as the shop's tills do
    assert Money(1250).amount == Decimal("12.5") and Money(100) + Money(250) == Money(350)


def test_the_catalog_mirror_stores_each_price_in_cents(demo_config: AppConfig) -> None:
    rows = catalog_rows(demo_config)
    for row in rows:
        if isinstance(row, Service):
            assert row.price_cents == cents(demo_config.shops[row.shop_id].services[row.id].price)
        if isinstance(row, Addon):
            assert row.price_cents == cents(demo_config.shops[row.shop_id].addons[row.id].price)
    assert any(isinstance(r, Service) and r.price_cents > 0 for r in rows)
