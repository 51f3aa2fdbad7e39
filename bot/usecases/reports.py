"""The reports' date range rules, shared by the console's Reports page and ``chatbook report``:
the range runs forwards and holds at most ``core.reports.MAX_PERIODS`` periods. The figures
themselves (and all their SQL) are core/reports.py's."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from bot.usecases.errors import Refused
from core import reports

if TYPE_CHECKING:
    from bot.bootstrap import Services


def check_range(grain: reports.Grain, first: date, last: date) -> None:
    """Refused (field ``from``) when ``first`` is after ``last`` or the range is too long."""
    if first > last:
        raise Refused("from", "bad_range", "must not be after 'to'")
    if len(reports.periods(grain, first, last)) > reports.MAX_PERIODS:
        raise Refused("from", "range_too_long", f"too many {grain}s: at most {reports.MAX_PERIODS}")


async def figures(services: Services, shop_id: str, grain: reports.Grain, first: date, last: date) -> reports.Report:
    check_range(grain, first, last)
    return await reports.figures(services.db, shop_id, services.config.shops[shop_id], grain, first, last)


async def monthly(services: Services, shop_id: str) -> list[reports.MonthFigures]:
    return await reports.monthly(services.db, shop_id, services.config.shops[shop_id])
