"""Shared fixtures: the demo config, an injected clock, and real databases.

``db_url`` runs a test on SQLite and on PostgreSQL (a throwaway cluster started once per run;
the PostgreSQL variant skips with a one-line reason when no server can be started).

A test gets an empty database, except one that uses ``services`` (``sqlite_services``): its
database is a copy of a template that ``bootstrap`` migrated and synced with the demo config once
per process (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), and its
services share one FAQ registry loaded once from the demo FAQ files (it hot-reloads on its own).
That is what ``bootstrap`` would have built on the empty database, without migrating per test.
Under pytest-xdist each worker has its own cluster, templates and database names.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.bootstrap import Services, bootstrap, load_faq_registry
from core.clock import FixedClock
from core.config import AppConfig, load_config
from faq import FaqRegistry
from tests.helpers import config_key, copy_sqlite, migrate_and_sync, sqlite_template
from tests.pgcluster import PgCluster, start_cluster

# python-telegram-bot 22 warns about its RetryAfter type unless this is set; warnings are errors here.
os.environ.setdefault("PTB_TIMEDELTA", "1")
ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "config.yaml"
# Saturday 21 November 2026, 09:00 in Shanghai.
NOW = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
_db_counter = itertools.count()
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")  # database names never collide across workers
_pg_templates: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="session")
def demo_config() -> AppConfig:
    return load_config(CONFIG_PATH, environ={})


@pytest.fixture(scope="session")
def demo_faq(demo_config: AppConfig) -> FaqRegistry | None:
    """The demo FAQ files, loaded once: parsing them is most of what a bootstrap costs."""
    return load_faq_registry(demo_config)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[tuple[PgCluster | None, str]]:
    cluster, reason = start_cluster()
    yield cluster, reason
    if cluster is not None:
        cluster.stop()


async def create_pg_database(cluster: PgCluster, template: str | None = None) -> str:
    """A new database (empty, or a copy of ``template``); its URL."""
    import asyncpg

    name = f"chatbook_test_{WORKER}_{next(_db_counter)}"
    conn = await asyncpg.connect(cluster.admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await conn.close()
    return cluster.url(name)


async def pg_template(cluster: PgCluster, config: AppConfig) -> str:
    """A database migrated and synced with ``config``, made once per process, to copy from."""
    key = (cluster.url(""), config_key(config))
    if key not in _pg_templates:
        url = await create_pg_database(cluster)
        await migrate_and_sync(config, url)
        _pg_templates[key] = url.rsplit("/", 1)[1]
    return _pg_templates[key]


async def _sqlite_database(request: pytest.FixtureRequest, path: Path, migrated: bool) -> str:
    if migrated:
        copy_sqlite(await sqlite_template(request.getfixturevalue("demo_config")), path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    migrated = "services" in request.fixturenames  # see the module docstring
    if request.param == "sqlite":
        return await _sqlite_database(request, tmp_path / "chatbook.db", migrated)
    cluster, reason = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip(reason)
    template = await pg_template(cluster, request.getfixturevalue("demo_config")) if migrated else None
    return await create_pg_database(cluster, template)


@pytest.fixture
async def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return await _sqlite_database(request, tmp_path / "chatbook.db", "sqlite_services" in request.fixturenames)


async def _services(config: AppConfig, clock: FixedClock, url: str, faq: FaqRegistry | None) -> Services:
    """``bootstrap`` on a copy of the template: already migrated and synced with ``config``."""
    return await bootstrap(config, clock=clock, database_url=url, migrate=False, sync=False, faq_registry=faq)


@pytest.fixture
async def services(
    demo_config: AppConfig, demo_faq: FaqRegistry | None, clock: FixedClock, db_url: str
) -> AsyncIterator[Services]:
    svc = await _services(demo_config, clock, db_url, demo_faq)
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def sqlite_services(
    demo_config: AppConfig, demo_faq: FaqRegistry | None, clock: FixedClock, sqlite_url: str
) -> AsyncIterator[Services]:
    svc = await _services(demo_config, clock, sqlite_url, demo_faq)
    try:
        yield svc
    finally:
        await svc.close()
