"""Money as a small type: a whole number of cents, made exactly from the config's prices.

Prices are written in config.yaml as decimals (``price: 12.5``, a ``Decimal``); the database,
bookings and totals keep integer cents (``price_cents``). ``Money.of`` is the one conversion
(cut to the cent, as ``int(price * 100)`` always did, but exact: no float in between);
``Money.amount`` is the decimal again for ``core.i18n.format_money``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal


@dataclass(frozen=True, order=True)
class Money:
    cents: int

    @classmethod
    def of(cls, amount: Decimal | int | str) -> Money:
        """A price as written in the config (12.5 -> 1250 cents)."""
        value = (Decimal(amount) * 100).to_integral_value(rounding=ROUND_DOWN)
        return cls(int(value))

    @property
    def amount(self) -> Decimal:
        """Back to a decimal amount (1250 cents -> 12.5)."""
        return Decimal(self.cents) / 100

    def __add__(self, other: Money) -> Money:
        return Money(self.cents + other.cents)


ZERO = Money(0)


def cents(amount: Decimal | int | str) -> int:
    """Cents of a config price: ``cents(Decimal("12.50")) == 1250``."""
    return Money.of(amount).cents
