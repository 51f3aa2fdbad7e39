"""Database engine, transactions and units of work for SQLite (default) and PostgreSQL.

One AsyncSession per block of work (they are not safe across tasks). On SQLite every write
transaction starts with BEGIN IMMEDIATE: it takes the write lock before the first read, so a
read-then-write transaction waits for its turn instead of failing with "database is locked"
when it tries to upgrade. WAL mode lets readers outside transactions go on.

Unit of work: ``async with db.unit_of_work() as uow:`` opens ONE connection and ONE transaction
for a whole piece of work (a chat turn). Inside it (in the same task) ``transaction()`` is a
SAVEPOINT on that connection (a failed booking operation rolls back only itself, IntegrityError
retries keep working) and ``reading()`` reads on it too (seeing the work's own changes); each
block still gets a fresh session, so nothing is cached across blocks, as outside. One commit at
the end; ``uow.after_commit`` callbacks (wake-ups, events) run only once it committed. Outside a
unit of work everything is one transaction per block, as before.

SQLite's driver path: aiosqlite runs every cursor call on its connection's thread; each call is
a round trip through the event loop and, under load, a wait for the GIL (about 60 per chat
turn). Write transactions and units of work run their statements on the event loop's own
thread instead (SQLite answers a chat turn's statements in well under a millisecond in all);
only a statement that finds the database locked by ANOTHER process (this process's writers
queue on ``_write_lock`` first) is retried on the connection's thread, where it may wait up to
the busy timeout without stopping the loop. ``reading()`` outside a unit of work stays on
aiosqlite's threads: a long report never stops the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, cast

import aiosqlite
from sqlalchemy import event, text
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary result codes)


class UnitOfWork:
    """One connection in one transaction, shared by every ``transaction()`` / ``reading()`` of
    the task that opened it (``Database.unit_of_work``)."""

    def __init__(self, db: Database, conn: AsyncConnection, task: asyncio.Task[Any] | None) -> None:
        self.db = db
        self.conn = conn
        self.task = task
        self.active = True
        self._after: list[Callable[[], Any]] = []

    def after_commit(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` once the work committed (never when it rolled back)."""
        self._after.append(callback)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session on the unit's transaction with no savepoint of its own: what it adds is
        flushed at the end of the block; an error in it fails the whole unit."""
        session = AsyncSession(bind=self.conn, join_transaction_mode="rollback_only", expire_on_commit=False)
        async with session, session.begin():
            yield session

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A part of the work that rolls back alone when it raises (the rest goes on)."""
        async with self.conn.begin_nested():
            yield

    def _owned_here(self) -> bool:
        return self.active and self.task is asyncio.current_task()


_current: ContextVar[UnitOfWork | None] = ContextVar("chatbook_unit_of_work", default=None)


class Database:
    """Owns the engine and hands out transactional sessions and units of work."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database in ("", ":memory:"):
                raise ValueError("use a SQLite file, not :memory: (each connection would see its own)")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        elif self.dialect == "postgresql":
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size * 2
            kwargs["pool_pre_ping"] = True
        else:
            kwargs["poolclass"] = NullPool
        inline = self.dialect == "sqlite" and self.url.get_driver_name() == "aiosqlite"
        # SQLite writes (every transaction and unit of work: short) run inline, see the module
        # docstring; the write lock below keeps them one at a time.
        self.engine: AsyncEngine = create_async_engine(
            self.url, **kwargs, **({"async_creator": _inline_sqlite(self.url.database or "")} if inline else {})
        )
        # Reads (availability, listings, reports) use their own engine on SQLite: plain deferred
        # transactions, so they never queue behind writers for the write lock; on aiosqlite's
        # threads, so a long read never stops the event loop.
        self.read_engine: AsyncEngine = self.engine
        if self.dialect == "sqlite":
            _sqlite_transactions(self.engine, "BEGIN IMMEDIATE", inline=inline)
            self.read_engine = create_async_engine(self.url, **kwargs)
            _sqlite_transactions(self.read_engine, "BEGIN", inline=False)
        # SQLite has one writer at a time. Queue this process's writers here, in order, instead
        # of letting them poll SQLite's busy handler (which sleeps up to 100 ms per retry);
        # other processes still wait through busy_timeout.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    # ------------------------------------------------------------------ units of work

    def current(self) -> UnitOfWork | None:
        """The unit of work this task has open on this database, if any."""
        uow = _current.get()
        return uow if uow is not None and uow.db is self and uow._owned_here() else None

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        """ONE transaction for everything the block does through this Database (see the module
        docstring); committed at the end, rolled back when the block raises. Inside one already,
        the same unit of work. Never hold one while waiting for something another task must
        write first (on SQLite it holds the write lock)."""
        outer = self.current()
        if outer is not None:
            yield outer
            return
        async with self._write_lock or nullcontext(), self.engine.connect() as conn, conn.begin():
            uow = UnitOfWork(self, conn, asyncio.current_task())
            token = _current.set(uow)
            try:
                yield uow
            finally:
                uow.active = False
                _current.reset(token)
        for callback in uow._after:
            callback()

    # ------------------------------------------------------------------ blocks

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error (inside
        a unit of work: a savepoint of it).

        Never open a transaction while holding another on the same Database outside a unit of
        work (on SQLite the second would wait for the first forever).
        """
        uow = self.current()
        if uow is not None:
            async with (
                AsyncSession(bind=uow.conn, join_transaction_mode="create_savepoint", expire_on_commit=False) as s,
                s.begin(),
            ):
                yield s
            return
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: a consistent snapshot that takes no write lock (inside a
        unit of work: its connection, so the work's own changes are seen)."""
        uow = self.current()
        if uow is not None:
            async with AsyncSession(bind=uow.conn, join_transaction_mode="rollback_only", expire_on_commit=False) as s:
                yield s
            return
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


# ---------------------------------------------------------------------- SQLite


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection, running each call on the calling (event loop) thread: no thread
    hop per cursor call. A call refused because another process holds the database lock is run
    again on the connection's own thread, with the busy timeout (the loop goes on meanwhile)."""

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _SQLITE_BUSY:
                raise
        return await super()._execute(_patiently, self._connection, fn, *args, **kwargs)


def _patiently(conn: sqlite3.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    try:
        return fn(*args, **kwargs)
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def _inline_sqlite(path: str) -> Callable[[], Any]:
    def connector() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)

    def creator() -> _InlineConnection:
        conn = _InlineConnection(connector, 64)
        conn._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
        return conn

    return creator


def _sqlite_transactions(engine: AsyncEngine, begin: str, *, inline: bool) -> None:
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
        # Inline connections never wait on the loop's thread: a busy database is waited for on
        # the connection's thread (_InlineConnection), with the full timeout.
        cursor.execute(f"PRAGMA busy_timeout={0 if inline else SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
