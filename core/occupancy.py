"""The no-double-booking guarantee, enforced by the database.

A booking claims one row per 5-minute cell it occupies: for its staff member (the service
plus the shop's buffer) and for one unit of each resource it needs (the service only). The
primary key (shop, kind, key, unit, cell) refuses a second claim on the same cell, so two
bookings can never overlap on one staff member or exceed a resource's capacity, whatever the
concurrency and however many server processes share the database. This works the same on
SQLite and PostgreSQL; no in-process lock is involved.

Why cells and not an exclusion constraint: PostgreSQL's EXCLUDE USING gist handles "no
overlap" but not "at most N at once", and SQLite has neither. Cells handle both with a plain
unique index everywhere. The cost is rows: a 90-minute bath with a 10-minute buffer claims 20
staff cells. Claims run in a SAVEPOINT so a refused claim can try the next staff member or
resource unit inside the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import GRID_MIN
from core.models import Occupancy

CELL = timedelta(minutes=GRID_MIN)
_CELL_SECONDS = GRID_MIN * 60
STAFF = "s"
RESOURCE = "r"


def cells(start: datetime, end: datetime) -> range:
    """Cell numbers covering [start, end): cell n is [n*5min, (n+1)*5min) since the epoch."""
    first = int(start.timestamp()) // _CELL_SECONDS
    last = -(-int(end.timestamp()) // _CELL_SECONDS)  # ceiling
    return range(first, last)


def on_grid(moment: datetime) -> bool:
    return int(moment.timestamp()) % _CELL_SECONDS == 0 and moment.microsecond == 0


async def claim(
    session: AsyncSession,
    *,
    shop_id: str,
    kind: str,
    key: str,
    unit: int,
    span: tuple[datetime, datetime],
    booking_id: int,
) -> bool:
    """Claim every cell of ``span``; False (and nothing claimed) if any is already taken."""
    rows = [
        {"shop_id": shop_id, "kind": kind, "key": key, "unit": unit, "cell": c, "booking_id": booking_id}
        for c in cells(*span)
    ]
    try:
        async with session.begin_nested():
            await session.execute(insert(Occupancy), rows)
    except IntegrityError:
        return False
    return True


async def release(session: AsyncSession, booking_ids: Iterable[int]) -> None:
    """Give back every cell the given bookings hold."""
    ids = list(booking_ids)
    if ids:
        await session.execute(delete(Occupancy).where(Occupancy.booking_id.in_(ids)))
