"""Database engine and transactions for SQLite (default) and PostgreSQL.

One AsyncSession per unit of work (they are not safe across tasks). On SQLite every
transaction starts with BEGIN IMMEDIATE: it takes the write lock before the first read, so a
read-then-write transaction waits for its turn (busy_timeout) instead of failing with
"database is locked" when it tries to upgrade. WAL mode lets readers outside transactions go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event, text
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Database:
    """Owns the engine and hands out transactional sessions."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database in ("", ":memory:"):
                raise ValueError("use a SQLite file, not :memory: (each connection would see its own)")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
        elif self.dialect == "postgresql":
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size * 2
            kwargs["pool_pre_ping"] = True
        else:
            kwargs["poolclass"] = NullPool
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        # Reads (availability, listings) use their own engine on SQLite: plain deferred
        # transactions, so they never queue behind writers for the write lock.
        self.read_engine: AsyncEngine = self.engine
        if self.dialect == "sqlite":
            _sqlite_transactions(self.engine, "BEGIN IMMEDIATE")
            self.read_engine = create_async_engine(self.url, **kwargs)
            _sqlite_transactions(self.read_engine, "BEGIN")
        # SQLite has one writer at a time. Queue this process's writers here, in order, instead
        # of letting them poll SQLite's busy handler (which sleeps up to 100 ms per retry);
        # other processes still wait through busy_timeout.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error.

        Never open a transaction while holding another on the same Database (on SQLite the
        second would wait for the first forever).
        """
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: a consistent snapshot that takes no write lock."""
        async with self._read_sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()



def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE/DELETE matched. Executing DML returns a CursorResult; the session's
    ``execute`` is typed as returning the base Result, which has no ``rowcount``."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def _sqlite_transactions(engine: AsyncEngine, begin: str) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite's own BEGIN handling is broken
        # for savepoints), then set the pragmas every connection needs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
