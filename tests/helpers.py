"""Helpers shared by the tests: local times, the database-wide invariant check, every stored row
as text (the privacy tests), the SQL statements sent (``statements``), and migrated template
databases (made once per process, copied per test instead of migrating each time)."""

from __future__ import annotations

import atexit
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from itertools import combinations
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alembic.util.exc import CommandError
from sqlalchemy import event, select

from bot.bootstrap import Services, bootstrap
from core.clock import FixedClock
from core.config import AppConfig
from core.db import Database
from core.i18n import texts
from core.migrate import upgrade
from core.models import ACTIVE_STATUSES, Base, Booking, BookingResource

SHANGHAI = ZoneInfo("Asia/Shanghai")
MON, TUE, WED, THU = (date(2026, 11, d) for d in (23, 24, 25, 26))


def at(day: date, hhmm: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


def hhmm(moment: datetime, tz: ZoneInfo = SHANGHAI) -> str:
    return moment.astimezone(tz).strftime("%H:%M")


async def overlaps_in_database(services: Services) -> list[str]:
    """Every pair of active bookings that collide on a staff member or a resource unit."""
    now = services.clock.now()
    problems = []
    async with services.db.reading() as s:
        rows = list(await s.scalars(select(Booking).where(Booking.status.in_(ACTIVE_STATUSES))))
        units = {(r.booking_id, r.resource_id): r.unit for r in await s.scalars(select(BookingResource))}
    live = [b for b in rows if b.hold_expires_at is None or b.hold_expires_at > now]
    for a, b in combinations(live, 2):
        if a.shop_id != b.shop_id or not (a.start_at < b.end_at and b.start_at < a.end_at):
            continue
        if a.staff_id is not None and a.staff_id == b.staff_id:
            problems.append(f"staff {a.staff_id}: {a.code} and {b.code}")
        for (booking_id, resource_id), unit in units.items():
            if booking_id == a.id and units.get((b.id, resource_id)) == unit:
                problems.append(f"{resource_id}#{unit}: {a.code} and {b.code}")
    return problems


async def everything_stored(services: Services) -> str:
    """Every row of every table, as text (to check that a deleted person's data is nowhere)."""
    parts: list[str] = []
    async with services.db.reading() as s:
        for table in Base.metadata.sorted_tables:
            for row in await s.execute(select(table)):
                parts.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    return "\n".join(parts)


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    """Every SQL statement the services send meanwhile (both engines), in order."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engines = {services.db.engine.sync_engine, services.db.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", note)


def shows(key: str, text: str, lang: str = "zh") -> bool:
    """Whether ``text`` contains the catalog text of ``key`` (core/locales) with any values filled
    in: tests name the locale key instead of copying its words, so rewording a text breaks no test."""
    template = str(texts(lang).entries[key])
    pattern = ".+?".join(re.escape(part) for part in re.split(r"\{[^{}]*\}", template))
    return re.search(pattern, text, re.S) is not None


# ---------------------------------------------------------------------------- template databases

_sqlite_templates: dict[str, Path] = {}


def config_key(config: AppConfig) -> str:
    """Templates are per config: the catalog rows a template holds come from it."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


async def migrate_and_sync(config: AppConfig, url: str) -> None:
    """What ``bootstrap`` does to an empty database (migrate to head, sync the catalog), then close."""
    try:
        svc = await bootstrap(config, clock=FixedClock(), database_url=url)
    except CommandError as exc:
        # Parallel branches add migrations whose chain the lead re-links at merge time; while the
        # tree has several heads, the template takes them all (tests/test_migrations.py guards the chain).
        if "Multiple head" not in str(exc):
            raise
        db = Database(url)
        try:
            await upgrade(db, "heads")
        finally:
            await db.dispose()
        svc = await bootstrap(config, clock=FixedClock(), database_url=url, migrate=False)
    await svc.close()


async def sqlite_template(config: AppConfig) -> Path:
    """A migrated, catalog-synced SQLite file for ``config``, made once per process."""
    key = config_key(config)
    found = _sqlite_templates.get(key)
    if found is not None and found.exists():
        return found
    directory = Path(tempfile.mkdtemp(prefix="chatbook-template-"))
    atexit.register(shutil.rmtree, directory, True)
    path = directory / "template.db"
    await migrate_and_sync(config, f"sqlite+aiosqlite:///{path}")
    _sqlite_templates[key] = path
    return path


def copy_sqlite(template: Path, target: Path) -> None:
    """A fresh database at ``target``: a copy of ``template`` (and its WAL, if one was left)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    for suffix in ("-wal", "-shm"):
        extra = Path(f"{template}{suffix}")
        if extra.exists():
            shutil.copyfile(extra, Path(f"{target}{suffix}"))
