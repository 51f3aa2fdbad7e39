"""Shared fixtures: the demo config, an injected clock, and real databases.

``db_url`` runs a test on SQLite and on PostgreSQL (a throwaway cluster started once per run;
the PostgreSQL variant skips with a one-line reason when no server can be started).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.bootstrap import Services, bootstrap
from core.clock import FixedClock
from core.config import AppConfig, load_config
from tests.pgcluster import PgCluster, start_cluster

# python-telegram-bot 22 warns about its RetryAfter type unless this is set; warnings are errors here.
os.environ.setdefault("PTB_TIMEDELTA", "1")
ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "config.yaml"
# Saturday 21 November 2026, 09:00 in Shanghai.
NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def demo_config() -> AppConfig:
    return load_config(CONFIG_PATH, environ={})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[tuple[PgCluster | None, str]]:
    cluster, reason = start_cluster()
    yield cluster, reason
    if cluster is not None:
        cluster.stop()


async def create_pg_database(cluster: PgCluster) -> str:
    import asyncpg

    name = f"chatbook_test_{next(_db_counter)}"
    conn = await asyncpg.connect(cluster.admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return cluster.url(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chatbook.db'}"
    cluster, reason = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip(reason)
    return await create_pg_database(cluster)


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'chatbook.db'}"


@pytest.fixture
async def services(demo_config: AppConfig, clock: FixedClock, db_url: str) -> AsyncIterator[Services]:
    svc = await bootstrap(demo_config, clock=clock, database_url=db_url)
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def sqlite_services(demo_config: AppConfig, clock: FixedClock, sqlite_url: str) -> AsyncIterator[Services]:
    svc = await bootstrap(demo_config, clock=clock, database_url=sqlite_url)
    try:
        yield svc
    finally:
        await svc.close()
