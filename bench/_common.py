"""Shared helpers for bench/availability.py and bench/confirmations.py.

A synthetic shop (10 staff, open 06:00-24:00 every day, five services, one shared resource),
a fixed clock, latency summaries, a small table printer, and the backends to run on: a SQLite
file in a temporary directory and, when tests.pgcluster can start one, a throwaway PostgreSQL.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.config import AppConfig  # noqa: E402
from tests.pgcluster import start_cluster  # noqa: E402

SHOP = "benchshop"
# Friday 20 November 2026, 16:00 UTC = Saturday 21 November 00:00 in Shanghai.
NOW = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
TODAY = date(2026, 11, 21)
DAYS = [TODAY + timedelta(days=k) for k in range(1, 31)]  # the 30 bookable days after today
STAFF = [f"s{i:02d}" for i in range(10)]
SENIORS = STAFF[:5]  # the only ones doing the 90-minute package
SHIFTS = {sid: ("06:00-22:00" if i % 2 == 0 else "08:00-24:00") for i, sid in enumerate(STAFF)}
# id: (minutes, resources); every staff member does all of them but "package".
SERVICES: dict[str, tuple[int, list[str]]] = {
    "quick": (15, []),
    "standard": (30, []),
    "long": (45, []),
    "bath": (60, ["tub"]),
    "package": (90, []),
}
BUFFER_MIN = 10
TUBS = 3
WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def synthetic_config() -> AppConfig:
    """One shop: 10 staff on 16-hour staggered shifts, 15-minute slot step, 10-minute buffer."""
    shop = {
        "name": "Bench shop",
        "timezone": "Asia/Shanghai",
        "address": "nowhere",
        "booking": {
            "slot_step_min": 15,
            "buffer_min": BUFFER_MIN,
            "lead_time_min": 60,
            "horizon_days": 30,
        },
        "opening_hours": {day: ["06:00-24:00"] for day in WEEK},
        "resources": {"tub": {"capacity": TUBS}},
        "services": {
            sid: {"name": sid, "duration_min": minutes, "price": 100, "resources": resources}
            for sid, (minutes, resources) in SERVICES.items()
        },
        "staff": {
            sid: {
                "name": sid,
                "role": "staff",
                "services": [s for s in SERVICES if s != "package" or sid in SENIORS],
                "shifts": {day: [SHIFTS[sid]] for day in WEEK},
            }
            for sid in STAFF
        },
    }
    return AppConfig.model_validate({"shops": {SHOP: shop}})


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def ms_summary(seconds: Sequence[float]) -> tuple[str, str]:
    """Median and p99 of durations in seconds, as millisecond strings."""
    return f"{statistics.median(seconds) * 1000:.2f}", f"{percentile(seconds, 99) * 1000:.2f}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True))))
    for row in cells:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )


async def backends() -> AsyncIterator[tuple[str, str]]:
    """(name, database URL): a SQLite file, then PostgreSQL when tests.pgcluster can start one."""
    workdir = tempfile.mkdtemp(prefix="chatbook-bench-")
    cluster = None
    try:
        yield "sqlite", f"sqlite+aiosqlite:///{workdir}/bench.db"
        cluster, reason = start_cluster()
        if cluster is None:
            print(f"\npostgresql: skipped ({reason})")
            return
        import asyncpg

        conn = await asyncpg.connect(cluster.admin_dsn())
        try:
            await conn.execute('CREATE DATABASE "chatbook_bench"')
            version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
        print(f"\n(PostgreSQL {version}: throwaway cluster on loopback, fsync=off)")
        yield "postgresql", cluster.url("chatbook_bench")
    finally:
        if cluster is not None:
            parent = os.path.dirname(cluster.directory or "")
            cluster.stop()
            # PgCluster.stop() removes the data directory only; its parent (log, socket) stays.
            if os.path.basename(parent).startswith("chatbook-pg-"):
                shutil.rmtree(parent, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
