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

On that inline path SQLAlchemy's asyncio adapter is replaced by a thin one (``_InlineAdapted``,
``_InlineCursor``): each cursor call is a plain sqlite3 call, not a coroutine awaited through a
greenlet switch and a mutex (five per statement, most of a statement's cost here); SAVEPOINT,
RELEASE and ROLLBACK TO inside a write transaction go straight to sqlite3 too (they never wait:
the transaction holds the write lock). Only a call SQLite refuses as busy is awaited, on the
connection's thread. The SQL, the transactions and their order are unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque, namedtuple
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, cast

import aiosqlite
from sqlalchemy import bindparam, event, insert, text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection, AsyncAdapt_aiosqlite_cursor
from sqlalchemy.engine import CursorResult, Result, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary result codes)


def _row_type(names: list[str]) -> Any:
    """A named-tuple type for a prepared statement's rows (``row.column`` as on SQLAlchemy rows)."""
    make: Any = namedtuple
    return make("Row", names, rename=True)


class Prepared:
    """A Core statement of the hot path, built once (with ``bindparam`` values) and run by
    ``UnitOfWork.run``: on SQLite's inline connection it is compiled once and each run is one
    sqlite3 call with SQLAlchemy's own bind and result processors (no execution context, no
    cache-key walk, no result object: a few microseconds instead of ~0.1 ms); elsewhere it is
    the normal ``execute``. Only for statements whose SQL never varies (no expanding IN)."""

    __slots__ = ("_sqlite", "statement")

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._sqlite: tuple[str, list[tuple[str, Any, Any]], list[Any] | None, Any] | None = None

    def compiled(self, dialect: Any) -> tuple[str, list[tuple[str, Any, Any]], list[Any] | None, Any]:
        if self._sqlite is None:
            compiled: Any = self.statement.compile(dialect=dialect)
            defaults = compiled.construct_params(_check=False)
            processors = compiled._bind_processors
            binds = [(name, processors.get(name), defaults.get(name)) for name in compiled.positiontup or ()]
            columns = compiled._result_columns
            results = None
            row_type: Any = None
            if columns:
                results = [column[3]._cached_result_processor(dialect, None) for column in columns]
                names = [str(column[0]) for column in columns]
                row_type = _row_type(names)
            self._sqlite = (compiled.string, binds, results, row_type)
        return self._sqlite


class UnitOfWork:
    """One connection in one transaction, shared by every ``transaction()`` / ``reading()`` of
    the task that opened it (``Database.unit_of_work``)."""

    def __init__(self, db: Database, conn: AsyncConnection, task: asyncio.Task[Any] | None) -> None:
        self.db = db
        self.conn = conn
        self.task = task
        self.active = True
        self._after: list[Callable[[], Any]] = []
        self._depth = 0  # raw savepoints open (``savepoint`` on SQLite's inline connection)
        self.cache: dict[Any, Any] = {}  # what this work read or wrote, for its own later reads
        self.raw: sqlite3.Connection | None = None  # SQLite's inline connection, for ``run``
        if db.inline:
            self.raw = conn.sync_connection.connection.driver_connection._connection  # type: ignore[union-attr]  # aiosqlite is the driver here

    async def run(self, prepared: Prepared, params: dict[str, Any] | None = None) -> list[Any]:
        """A prepared statement in this unit of work; its rows (named tuples), [] for none."""
        if self.raw is None:
            result = await self.conn.execute(prepared.statement, params or {})
            return list(result) if result.returns_rows else []
        return self._run_raw(prepared, params or {})[0]

    async def run_count(self, prepared: Prepared, params: dict[str, Any] | None = None) -> int:
        """A prepared UPDATE/DELETE in this unit of work; how many rows it matched."""
        if self.raw is None:
            return rowcount(await self.conn.execute(prepared.statement, params or {}))
        return self._run_raw(prepared, params or {})[1]

    async def run_many(self, prepared: Prepared, rows: list[dict[str, Any]]) -> None:
        """A prepared INSERT/UPDATE (no RETURNING) once per parameter set, as one executemany."""
        if not rows:
            return
        if self.raw is None:
            await self.conn.execute(prepared.statement, rows)
            return
        sql, binds, _, _ = prepared.compiled(self.db.engine.sync_engine.dialect)
        args = [_bound(binds, row) for row in rows]
        self._note(sql, args, True)
        self.raw.executemany(sql, args)

    def _run_raw(self, prepared: Prepared, params: dict[str, Any]) -> tuple[list[Any], int]:
        assert self.raw is not None
        sql, binds, results, row_type = prepared.compiled(self.db.engine.sync_engine.dialect)
        args = _bound(binds, params)
        self._note(sql, args, False)
        cursor = self.raw.execute(sql, args)
        if results is None:
            return [], cursor.rowcount
        rows = [
            row_type._make([v if p is None else p(v) for p, v in zip(results, raw, strict=True)])
            for raw in cursor.fetchall()
        ]
        return rows, cursor.rowcount

    def _note(self, sql: str, args: Any, many: bool) -> None:
        """Statement listeners (tests and benchmarks count statements) still see these."""
        sync_engine = self.db.engine.sync_engine
        if sync_engine.dispatch.before_cursor_execute:
            for listener in sync_engine.dispatch.before_cursor_execute:
                listener(self.conn.sync_connection, None, sql, args, None, many)

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
        """A part of the work that rolls back alone when it raises (the rest goes on). On
        SQLite's inline connection: SAVEPOINT / RELEASE / ROLLBACK TO as plain sqlite3 calls
        (the unit holds the write lock, they never wait); for ``run`` statements inside it."""
        if self.raw is None:
            async with self.conn.begin_nested():
                yield
            return
        self._depth += 1
        name = f"uow_sp{self._depth}"
        self.raw.execute(f'SAVEPOINT "{name}"')
        try:
            yield
        except BaseException:
            self.raw.execute(f'ROLLBACK TO SAVEPOINT "{name}"')
            self.raw.execute(f'RELEASE SAVEPOINT "{name}"')
            raise
        else:
            self.raw.execute(f'RELEASE SAVEPOINT "{name}"')
        finally:
            self._depth -= 1

    async def attempt_many(self, prepared: Prepared, rows: list[dict[str, Any]]) -> bool:
        """``run_many`` in a savepoint of its own: False, and nothing written, when a constraint
        refused one of the rows (e.g. an occupancy cell somebody holds)."""
        if not rows:
            return True
        if self.raw is None:
            try:
                async with self.conn.begin_nested():
                    await self.conn.execute(prepared.statement, rows)
            except IntegrityError:
                return False
            return True
        sql, binds, _, _ = prepared.compiled(self.db.engine.sync_engine.dialect)
        args = [_bound(binds, row) for row in rows]
        self._note(sql, args, True)
        self.raw.execute('SAVEPOINT "uow_attempt"')
        try:
            self.raw.executemany(sql, args)
        except BaseException as exc:
            self.raw.execute('ROLLBACK TO SAVEPOINT "uow_attempt"')
            self.raw.execute('RELEASE SAVEPOINT "uow_attempt"')
            if isinstance(exc, sqlite3.IntegrityError):
                return False
            raise
        self.raw.execute('RELEASE SAVEPOINT "uow_attempt"')
        return True

    def _owned_here(self) -> bool:
        return self.active and self.task is asyncio.current_task()


def prepared_insert(table: Any, columns: Iterable[str], *, returning: Iterable[Any] = ()) -> Prepared:
    """``INSERT INTO table (columns) VALUES (:column, ...)``, prepared (see ``Prepared``)."""
    statement = insert(table).values({name: bindparam(name) for name in columns})
    returned = list(returning)
    return Prepared(statement.returning(*returned) if returned else statement)


def _bound(binds: list[tuple[str, Any, Any]], params: dict[str, Any]) -> tuple[Any, ...]:
    out = []
    for name, processor, default in binds:
        value = params.get(name, default)
        out.append(value if processor is None else processor(value))
    return tuple(out)


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
        self.inline = inline
        # SQLite writes (every transaction and unit of work: short) run inline, see the module
        # docstring; the write lock below keeps them one at a time.
        adapter: list[Any] = []  # the engine's DBAPI module, known once the engine exists
        self.engine: AsyncEngine = create_async_engine(
            self.url, **kwargs, **({"creator": _inline_sqlite(self.url.database or "", adapter)} if inline else {})
        )
        if inline:
            adapter.append(self.engine.sync_engine.dialect.dbapi)
            _raw_savepoints(self.engine)
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
        async with self._write_lock or nullcontext(), self._connection() as conn, conn.begin():
            uow = UnitOfWork(self, conn, asyncio.current_task())
            token = _current.set(uow)
            try:
                yield uow
            finally:
                uow.active = False
                _current.reset(token)
        for callback in uow._after:
            callback()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection of the write engine for one unit of work. On the inline SQLite path it
        is given back with a plain ``close()``: that is synchronous underneath (nothing can
        interrupt it), so it needs no task of its own to survive a cancellation, as
        ``AsyncConnection.__aexit__`` makes (two more event loop iterations per message)."""
        if not self.inline:
            async with self.engine.connect() as conn:
                yield conn
            return
        conn = await self.engine.connect()
        try:
            yield conn
        finally:
            await conn.close()

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
            session = AsyncSession(bind=uow.conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
            async with self._closing(session) as s, s.begin():
                yield s
            return
        if self._write_lock is None:
            async with self._sessions() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._closing(self._sessions()) as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: a consistent snapshot that takes no write lock (inside a
        unit of work: its connection, so the work's own changes are seen)."""
        uow = self.current()
        if uow is not None:
            session = AsyncSession(bind=uow.conn, join_transaction_mode="rollback_only", expire_on_commit=False)
            async with self._closing(session) as s:
                yield s
            return
        async with self._read_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def _closing(self, session: AsyncSession) -> AsyncIterator[AsyncSession]:
        """``async with session`` for the write engine. Inline SQLite: closed with a plain
        ``close()``, synchronous underneath (nothing can interrupt it), instead of the task
        of its own that ``AsyncSession.__aexit__`` starts to survive a cancellation (two more
        event loop iterations per block: several per chat turn)."""
        if not self.inline:
            async with session:
                yield session
            return
        try:
            yield session
        finally:
            await session.close()

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
            if not _busy(exc):
                raise
        return await self.patiently(fn, *args, **kwargs)

    async def patiently(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """``fn`` on the connection's thread, waiting up to the busy timeout for the lock."""
        return await super()._execute(_patiently, self._connection, fn, *args, **kwargs)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF in _SQLITE_BUSY


def _inline_call(conn: _InlineConnection, fn: Any, *args: Any) -> Any:
    """A sqlite3 call on this thread; when the database is busy (another process writes), the
    same call on the connection's thread, awaited (we are in SQLAlchemy's greenlet here)."""
    try:
        return fn(*args)
    except sqlite3.OperationalError as exc:
        if not _busy(exc):
            raise
    return await_(conn.patiently(fn, *args))


class _Ready:
    """An awaitable that is done at once. SQLAlchemy's ``AsyncConnection.execute`` insists that
    the driver awaited something (it checks for a greenlet switch); awaiting this costs one
    switch and no event loop round trip."""

    def __await__(self) -> Any:
        return iter(())


_READY = _Ready()


class _InlineCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor without the coroutines: sqlite3's cursor called directly."""

    __slots__ = ()
    _awaitable_cursor_close = False

    def __init__(self, adapt_connection: _InlineAdapted) -> None:
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        raw = adapt_connection._connection._connection
        if raw is None:
            raise sqlite3.OperationalError("Connection closed")
        self._cursor = cast(Any, raw.cursor())  # a sqlite3 cursor has every attribute used
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = deque()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        cursor: Any = self._cursor
        conn = cast(_InlineConnection, self._connection)
        if parameters is None:
            result = _inline_call(conn, cursor.execute, operation)
        else:
            result = _inline_call(conn, cursor.execute, operation, parameters)
        if cursor.description:
            self._rows = deque(_inline_call(conn, cursor.fetchall))
        await_(_READY)
        return result

    def executemany(self, operation: Any, seq_of_parameters: Any) -> Any:
        conn = cast(_InlineConnection, self._connection)
        result = _inline_call(conn, self._cursor.executemany, operation, seq_of_parameters)
        await_(_READY)
        return result

    def close(self) -> None:
        self._rows.clear()
        self._cursor.close()  # type: ignore[unused-coroutine]  # sqlite3's close is not a coroutine


class _InlineAdapted(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's aiosqlite connection adapter whose cursors and commits call sqlite3 directly."""

    __slots__ = ()
    _cursor_cls = _InlineCursor  # type: ignore[assignment]  # same interface, no coroutines

    def _raw(self) -> sqlite3.Connection:
        raw = self._connection._connection
        if raw is None:
            raise sqlite3.OperationalError("Connection closed")
        return cast(sqlite3.Connection, raw)

    def commit(self) -> None:
        if self._connection._connection:
            _inline_call(cast(_InlineConnection, self._connection), self._raw().commit)

    def rollback(self) -> None:
        if self._connection._connection:
            _inline_call(cast(_InlineConnection, self._connection), self._raw().rollback)


def _patiently(conn: sqlite3.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    try:
        return fn(*args, **kwargs)
    finally:
        conn.execute("PRAGMA busy_timeout=0")


def _inline_sqlite(path: str, adapter: list[Any]) -> Callable[[], Any]:
    """The write engine's ``creator``: an inline aiosqlite connection in the thin adapter (called
    in SQLAlchemy's greenlet, so the connection's start can be awaited)."""

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(path, timeout=0, check_same_thread=False, isolation_level=None)

    def creator() -> _InlineAdapted:
        conn = _InlineConnection(connector, 64)
        conn._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
        return _InlineAdapted(adapter[0], cast(Any, await_(conn)))

    return creator


def _raw_savepoints(engine: AsyncEngine) -> None:
    """SAVEPOINT / RELEASE / ROLLBACK TO on the inline engine as plain sqlite3 calls: inside a
    write transaction (BEGIN IMMEDIATE holds the lock) they never wait, and each was a whole
    statement execution through SQLAlchemy before (the most frequent statements of a turn)."""
    dialect = engine.sync_engine.dialect

    def raw(connection: Any) -> sqlite3.Connection:
        return cast(sqlite3.Connection, connection.connection.driver_connection._connection)

    def do_savepoint(connection: Any, name: str) -> None:
        raw(connection).execute(f'SAVEPOINT "{name}"')

    def do_release_savepoint(connection: Any, name: str) -> None:
        raw(connection).execute(f'RELEASE SAVEPOINT "{name}"')

    def do_rollback_to_savepoint(connection: Any, name: str) -> None:
        raw(connection).execute(f'ROLLBACK TO SAVEPOINT "{name}"')

    dialect.do_savepoint = do_savepoint  # type: ignore[method-assign]  # one sqlite3 call per savepoint
    dialect.do_release_savepoint = do_release_savepoint  # type: ignore[method-assign]  # one sqlite3 call per savepoint
    dialect.do_rollback_to_savepoint = do_rollback_to_savepoint  # type: ignore[method-assign]  # one sqlite3 call per savepoint


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
        if inline:  # one sqlite3 call (a busy database is waited for on the connection's thread)
            adapted = conn.connection.dbapi_connection
            _inline_call(adapted._connection, adapted._raw().execute, begin)
            return
        conn.exec_driver_sql(begin)
